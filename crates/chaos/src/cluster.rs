//! The cluster under test: a private `redis-server` (AOF, `appendfsync always`), Central and the
//! stores as separate processes of the binary on fixed ports (so a restarted node keeps its
//! address), each with its own SQLite file; and the faults that can be done to it.
//!
//! Secured (the default), every node verifies bearer tokens with the run's public key and
//! connects to Redis as its own ACL user (given in `STOCKMESH_REDIS`, never on the command line);
//! the Redis keeps its users in an ACL file across restarts, and the suite speaks to it as an
//! administrator. Every HTTP request goes through [`ChaosCluster::request`] with its caller.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, RequestBuilder};
use stockmesh_bus::broker::{Broker, Outgoing};
use stockmesh_bus::redis_server::{Persistence, RedisProcess};
use stockmesh_bus::{RedisBroker, RedisConfig, topology};
use stockmesh_process::{Launcher, NodeProcess, free_port};
use tempfile::TempDir;
use tokio::sync::Mutex;

pub use super::access::store_id;
use super::access::{Caller, KID, Secured};
use super::schedule::Fault;

/// What a poison entry carries: it can never be decoded.
pub const POISON: &str = "{chaos: this entry is not an event";

/// The running cluster.
pub struct ChaosCluster {
    dir: TempDir,
    /// The private Redis; killed and restarted on its port and data by [`Fault::RedisCrash`].
    redis: Mutex<RedisProcess>,
    /// A client of the broker, for injecting entries and reading group state.
    pub broker: Arc<dyn Broker>,
    central: Mutex<NodeProcess>,
    stores: Vec<Mutex<NodeProcess>>,
    /// Central's URL (fixed for the run).
    pub central_url: String,
    /// Each store's URL, `store-1` first (fixed for the run).
    pub store_urls: Vec<String>,
    /// HTTP client for everything (requests are made with [`request`](Self::request)).
    http: reqwest::Client,
    /// Keys, tokens and Redis users; `None` when the run is not secured (`--no-auth`).
    pub secured: Option<Secured>,
}

impl ChaosCluster {
    /// Starts Redis, then Central and `stores` stores with `launcher`; with tokens and Redis
    /// ACL users when `secure`.
    pub async fn start(launcher: &Launcher, stores: usize, secure: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let redis_dir = dir.path().join("redis");
        std::fs::create_dir_all(&redis_dir)?;
        let secured = secure
            .then(|| Secured::create(&dir.path().join("keys"), stores))
            .transpose()?;
        let redis = match &secured {
            Some(secured) => {
                RedisProcess::start_with_users(
                    &redis_dir,
                    Persistence::AofAlways,
                    &secured.admin,
                    &secured.node_users(),
                )
                .await?
            }
            None => RedisProcess::start(&redis_dir, Persistence::AofAlways).await?,
        };
        let url = redis.url();
        // Each node's Redis URL: its own user's when secured.
        let redis_of = |node: usize| match &secured {
            Some(secured) => secured.node_users()[node].url(&redis.address()),
            None => url.clone(),
        };
        let key = secured
            .as_ref()
            .map(|s| format!("{KID}={}", s.public_key.display()));
        let common = |args: &mut Vec<String>| {
            if let Some(key) = &key {
                args.extend(["--auth-public-key".to_owned(), key.clone()]);
            }
            args.extend(
                [
                    "--heartbeat-interval",
                    "100ms",
                    "--heartbeat-timeout",
                    "1s",
                    "--claim-idle",
                    "1s",
                ]
                .map(String::from),
            );
        };
        let central_port = free_port()?;
        let mut args: Vec<String> = [
            "central",
            "--listen",
            &format!("127.0.0.1:{central_port}"),
            "--db",
            &dir.path().join("central.db").display().to_string(),
            // Short, so that purchases caught by a crash answer 202 and must resolve later.
            "--purchase-wait",
            "300ms",
            "--purchase-deadline",
            "10s",
            // Self-healing quickly enough for a bounded run.
            "--resend-after",
            "1s",
            "--repair-interval",
            "200ms",
            "--repair-grace",
            "1s",
            "--stores",
            &(1..=stores)
                .map(|i| format!("store-{i}"))
                .collect::<Vec<_>>()
                .join(","),
        ]
        .map(String::from)
        .to_vec();
        common(&mut args);
        let central = spawn(launcher, &args, &redis_of(0)).await?;
        let mut nodes = Vec::new();
        for i in 1..=stores {
            let port = free_port()?;
            let mut args: Vec<String> = [
                "store",
                "--id",
                &format!("store-{i}"),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--db",
                &dir.path()
                    .join(format!("store-{i}.db"))
                    .display()
                    .to_string(),
            ]
            .map(String::from)
            .to_vec();
            common(&mut args);
            nodes.push(spawn(launcher, &args, &redis_of(i)).await?);
        }
        let cluster = Self {
            broker: Arc::new(RedisBroker::new(RedisConfig::new(url))?),
            central_url: central.url().to_owned(),
            store_urls: nodes.iter().map(|n| n.url().to_owned()).collect(),
            central: Mutex::new(central),
            stores: nodes.into_iter().map(Mutex::new).collect(),
            redis: Mutex::new(redis),
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()?,
            secured,
        };
        cluster.wait_all_online(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// Waits until Central lists every store online.
    pub async fn wait_all_online(&self, limit: Duration) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        loop {
            let online = async {
                let stores: serde_json::Value = self
                    .request(
                        Caller::Viewer,
                        Method::GET,
                        &format!("{}/stores", self.central_url),
                    )
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let list = stores.as_array()?;
                Some(list.len() == self.stores.len() && list.iter().all(|s| s["online"] == true))
            };
            if online.await == Some(true) {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "stores not all online after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A request by `caller`, with its bearer token when the run is secured.
    pub fn request(&self, caller: Caller, method: Method, url: &str) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.secured {
            Some(secured) => builder.bearer_auth(secured.tokens.of(caller)),
            None => builder,
        }
    }

    /// `POST url` by store `store`'s staff, which must succeed.
    async fn post(&self, store: usize, url: String) -> anyhow::Result<()> {
        self.request(Caller::Store(store), Method::POST, &url)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Injects `fault`, and heals it (restart, reconnect) before returning. Injections that go
    /// through the broker are retried for a few seconds: the broker may be restarting.
    pub async fn inject(&self, fault: &Fault) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            match self.try_inject(fault).await {
                Err(error) if attempt < 20 && fault.through_broker() => {
                    attempt += 1;
                    tracing::debug!(%error, "fault injection retried");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                result => return result,
            }
        }
    }

    async fn try_inject(&self, fault: &Fault) -> anyhow::Result<()> {
        match fault {
            Fault::RedisCrash { down } => {
                self.redis.lock().await.kill();
                tokio::time::sleep(*down).await;
                self.ensure_redis().await?;
            }
            Fault::StoreCrash { store, down } => {
                let mut node = self.stores[store - 1].lock().await;
                node.kill().await;
                tokio::time::sleep(*down).await;
                node.restart().await?;
            }
            Fault::CentralCrash { down } => {
                let mut node = self.central.lock().await;
                node.kill().await;
                tokio::time::sleep(*down).await;
                node.restart().await?;
            }
            Fault::Disconnect { store, span } => {
                let url = &self.store_urls[store - 1];
                self.post(*store, format!("{url}/disconnected")).await?;
                tokio::time::sleep(*span).await;
                self.post(*store, format!("{url}/connected")).await?;
            }
            Fault::Duplicates { store } => {
                let id = store_id(*store);
                for stream in [topology::events_stream(&id), topology::commands_stream(&id)] {
                    let entries = self.broker.entries(&stream).await?;
                    let tail = entries.len().saturating_sub(20);
                    self.republish(&stream, &entries[tail..]).await?;
                }
            }
            Fault::LateEvents { store } => {
                let stream = topology::events_stream(&store_id(*store));
                let entries = self.broker.entries(&stream).await?;
                let head = entries.len().min(20);
                self.republish(&stream, &entries[..head]).await?;
            }
            Fault::Poison { store } => {
                let stream = topology::events_stream(&store_id(*store));
                let poison = Outgoing {
                    stream: &stream,
                    event_type: "INVENTORY_ITEM_UPDATED",
                    data: POISON,
                };
                self.broker.publish(&[poison], u64::MAX / 2).await?;
            }
        }
        Ok(())
    }

    async fn republish(
        &self,
        stream: &str,
        entries: &[stockmesh_bus::Delivery],
    ) -> anyhow::Result<()> {
        let datas: Vec<(String, String)> = entries
            .iter()
            .filter_map(|e| {
                let data = String::from_utf8(e.data.clone()?).ok()?;
                (data != POISON).then(|| (e.event_type.clone().unwrap_or_default(), data))
            })
            .collect();
        let outgoing: Vec<Outgoing<'_>> = datas
            .iter()
            .map(|(t, d)| Outgoing {
                stream,
                event_type: t,
                data: d,
            })
            .collect();
        self.broker.publish(&outgoing, u64::MAX / 2).await?;
        Ok(())
    }

    async fn ensure_redis(&self) -> anyhow::Result<()> {
        let mut redis = self.redis.lock().await;
        if !redis.is_running() {
            redis.restart().await?;
        }
        Ok(())
    }

    /// Heals everything: Redis and every node running, every store connected, all online.
    pub async fn heal(&self) -> anyhow::Result<()> {
        self.ensure_redis().await?;
        for node in std::iter::once(&self.central).chain(&self.stores) {
            let mut node = node.lock().await;
            if !node.is_running() {
                node.restart().await?;
            }
        }
        for (i, url) in self.store_urls.iter().enumerate() {
            self.post(i + 1, format!("{url}/connected")).await?;
        }
        self.wait_all_online(Duration::from_secs(30)).await
    }

    /// Kills Central (its database stays).
    pub async fn stop_central(&self) {
        self.central.lock().await.kill().await;
    }

    /// Starts Central again on its database (and port).
    pub async fn start_central(&self) -> anyhow::Result<()> {
        self.central.lock().await.restart().await?;
        Ok(())
    }

    /// The private Redis's URL (the administrator's when secured; never print it).
    pub async fn redis_url(&self) -> String {
        self.redis.lock().await.url()
    }

    /// The private Redis's `host:port`, without credentials.
    pub async fn redis_address(&self) -> String {
        self.redis.lock().await.address()
    }

    fn copy_database(&self, from: &str, to: &str) -> anyhow::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let source = self.dir.path().join(format!("{from}{suffix}"));
            let target = self.dir.path().join(format!("{to}{suffix}"));
            if target.exists() {
                std::fs::remove_file(&target)?;
            }
            if source.exists() {
                std::fs::copy(&source, &target)?;
            }
        }
        Ok(())
    }

    /// Copies Central's database aside (Central is killed for the copy, then started again).
    pub async fn backup_central(&self) -> anyhow::Result<()> {
        let mut central = self.central.lock().await;
        central.kill().await;
        self.copy_database("central.db", "central-backup.db")?;
        central.restart().await?;
        Ok(())
    }

    /// Replaces Central's database by the copy [`backup_central`](Self::backup_central) took:
    /// an older copy of itself, as a restore from last night's backup would.
    pub async fn restore_central(&self) -> anyhow::Result<()> {
        let mut central = self.central.lock().await;
        central.kill().await;
        self.copy_database("central-backup.db", "central.db")?;
        central.restart().await?;
        Ok(())
    }

    /// Waits until every store's relay has published and stamped its outbox.
    pub async fn outboxes_drained(&self, limit: Duration) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        for url in &self.store_urls {
            loop {
                let status: serde_json::Value = self
                    .request(Caller::Viewer, Method::GET, &format!("{url}/status"))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                if status["outboxPending"] == 0 {
                    break;
                }
                anyhow::ensure!(started.elapsed() < limit, "outboxes not drained");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Stops every process.
    pub async fn stop(&self) {
        for node in std::iter::once(&self.central).chain(&self.stores) {
            node.lock().await.kill().await;
        }
        self.redis.lock().await.kill();
    }
}

/// Starts a node with `args`, its Redis URL (a secret when it names a user) in its environment.
async fn spawn(launcher: &Launcher, args: &[String], redis: &str) -> anyhow::Result<NodeProcess> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(launcher
        .spawn_with_env(&args, &[("STOCKMESH_REDIS", redis)])
        .await?)
}
