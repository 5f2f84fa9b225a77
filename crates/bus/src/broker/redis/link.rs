//! How commands reach Redis, and where keys live: one server, or a Redis Cluster.
//!
//! - One server: commands share one multiplexed [`ConnectionManager`] (reconnecting by itself);
//!   keys are the names stockmesh uses.
//! - A cluster: commands share one multiplexed [`ClusterConnection`] (one connection per node,
//!   routed by the key's hash slot, following `MOVED`/`ASK` and refreshing the slot map by
//!   itself); keys are placed by [`topology::cluster_key`] so that a store's keys share its
//!   partition's slot.
//!
//! Blocking reads (`XREADGROUP … BLOCK`) would stall every command queued behind them on a
//! multiplexed connection, so each concurrent blocking read takes a connection of its own from
//! a small pool (on a cluster, a cluster connection of its own).

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo, RedisError, RedisResult, Value};

use super::{RedisConfig, redact_url};
use crate::broker::BrokerError;
use crate::topology;

/// A connection of either kind; cheap to clone (multiplexed).
#[derive(Clone)]
pub(super) enum Conn {
    /// To one server.
    Single(ConnectionManager),
    /// To a cluster.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Runs one command.
    pub(super) async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> RedisResult<T> {
        match self {
            Conn::Single(conn) => cmd.query_async(conn).await,
            Conn::Cluster(conn) => cmd.query_async(conn).await,
        }
    }

    /// Runs a pipeline (on a cluster, every key of it must share one slot).
    pub(super) async fn pipe(&mut self, pipe: &redis::Pipeline) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(conn) => pipe.query_async(conn).await,
            Conn::Cluster(conn) => pipe.query_async(conn).await,
        }
    }
}

/// The way to Redis: clients, the shared command connection, and the pool for blocking reads.
pub(super) struct Link {
    target: Target,
    commands: Conn,
    /// Idle connections for blocking reads, one per concurrent reader.
    blocking: Mutex<Vec<Conn>>,
    response_timeout: Duration,
}

enum Target {
    Single(redis::Client),
    /// The seed URLs and the TLS material, to build clients with other timeouts.
    Cluster {
        seeds: Vec<String>,
        tls: Option<redis::TlsCertificates>,
    },
}

/// How long connecting to one node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Maps a Redis error to a broker error: transport trouble is `Unavailable`, an answer is
/// `Refused` (both retryable).
pub(super) fn unavailable_or_refused(error: RedisError) -> BrokerError {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        BrokerError::Unavailable(error.to_string())
    } else {
        BrokerError::Refused(error.to_string())
    }
}

/// Every connection to Redis sends at once (`TCP_NODELAY`): a command written while an
/// earlier one's reply is outstanding (the multiplexed connection, pipelines split over
/// segments) would otherwise wait for that reply's acknowledgement under Nagle's algorithm,
/// up to the peer's delayed-ACK timeout.
fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

fn tls_certificates(config: &RedisConfig) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: config
            .tls
            .client
            .clone()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert,
                client_key: key,
            }),
        root_cert: config.tls.ca.clone(),
    }
}

fn invalid(url: &str, error: impl std::fmt::Display) -> BrokerError {
    BrokerError::InvalidConfig(format!("invalid Redis URL {:?}: {error}", redact_url(url)))
}

/// A cluster client for `seeds` whose calls may take `timeout` each.
fn cluster_client(
    seeds: &[String],
    tls: Option<&redis::TlsCertificates>,
    timeout: Duration,
) -> Result<ClusterClient, BrokerError> {
    let mut builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
        .connection_timeout(CONNECT_TIMEOUT)
        .tcp_settings(tcp_settings())
        .response_timeout(timeout)
        // Room for one redirection or reconnection after a failover within a call.
        .overall_response_timeout(Some(timeout * 2))
        .retries(3)
        .min_retry_wait(50)
        .max_retry_wait(500);
    if let Some(tls) = tls {
        builder = builder.certs(tls.clone());
    }
    builder.build().map_err(|e| invalid(&seeds.join(","), e))
}

fn cluster_conn(client: &ClusterClient, timeout: Duration) -> Conn {
    let config = redis::cluster::ClusterConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(timeout);
    Conn::Cluster(client.get_pending_async_connection_with_config(config))
}

impl Link {
    /// Opens the way to `config`'s Redis. Connects lazily: a Redis that is down now is not an
    /// error (stores must start and sell without it); calls fail until it is back.
    pub(super) fn open(config: &RedisConfig) -> Result<Self, BrokerError> {
        let secure = |url: &str| url.starts_with("rediss://");
        if config.cluster {
            let seeds: Vec<String> = config
                .url
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if seeds.is_empty() {
                return Err(BrokerError::InvalidConfig(
                    "--redis-cluster needs at least one seed URL".into(),
                ));
            }
            let tls = match seeds.iter().filter(|s| secure(s)).count() {
                0 => None,
                n if n == seeds.len() => {
                    // rustls needs one process-wide crypto provider; a second install is a no-op.
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    Some(tls_certificates(config))
                }
                _ => {
                    return Err(BrokerError::InvalidConfig(
                        "--redis-cluster seeds mix redis:// and rediss://; use one scheme".into(),
                    ));
                }
            };
            let client = cluster_client(&seeds, tls.as_ref(), config.response_timeout)?;
            let commands = cluster_conn(&client, config.response_timeout);
            return Ok(Self {
                target: Target::Cluster { seeds, tls },
                commands,
                blocking: Mutex::new(Vec::new()),
                response_timeout: config.response_timeout,
            });
        }
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(&config.url, e))?
            .set_tcp_settings(tcp_settings());
        let opened = if secure(&config.url) {
            let _ = rustls::crypto::ring::default_provider().install_default();
            redis::Client::build_with_tls(info, tls_certificates(config))
        } else {
            redis::Client::open(info)
        };
        let client = opened.map_err(|e| invalid(&config.url, e))?;
        let commands = ConnectionManager::new_lazy_with_config(
            client.clone(),
            manager_config(config.response_timeout),
        )
        .map_err(unavailable_or_refused)?;
        Ok(Self {
            target: Target::Single(client),
            commands: Conn::Single(commands),
            blocking: Mutex::new(Vec::new()),
            response_timeout: config.response_timeout,
        })
    }

    /// Whether this is a cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }

    /// The key that holds `name`.
    pub(super) fn key<'a>(&self, name: &'a str) -> Cow<'a, str> {
        if self.is_cluster() {
            Cow::Owned(topology::cluster_key(name))
        } else {
            Cow::Borrowed(name)
        }
    }

    /// The shard of `name`: names of one shard may share a command. One server has one shard;
    /// a cluster has one per hash slot.
    pub(super) fn shard(&self, name: &str) -> u16 {
        if self.is_cluster() {
            topology::hash_slot(&self.key(name))
        } else {
            0
        }
    }

    /// The shared connection for non-blocking commands.
    pub(super) fn commands(&self) -> Conn {
        self.commands.clone()
    }

    /// A connection for one blocking read of up to `block`.
    pub(super) fn take_blocking(&self, block: Duration) -> Result<Conn, BrokerError> {
        let pooled = self
            .blocking
            .lock()
            .map_err(|_| BrokerError::Protocol("connection pool poisoned".into()))?
            .pop();
        if let Some(conn) = pooled {
            return Ok(conn);
        }
        let timeout = block + self.response_timeout;
        match &self.target {
            Target::Single(client) => {
                ConnectionManager::new_lazy_with_config(client.clone(), manager_config(timeout))
                    .map(Conn::Single)
                    .map_err(unavailable_or_refused)
            }
            Target::Cluster { seeds, tls } => {
                let client = cluster_client(seeds, tls.as_ref(), timeout)?;
                Ok(cluster_conn(&client, timeout))
            }
        }
    }

    /// Returns a blocking connection to the pool.
    pub(super) fn give_back(&self, conn: Conn) {
        if let Ok(mut pool) = self.blocking.lock() {
            pool.push(conn);
        }
    }
}
