//! The Redis Streams adapter, for one server or a Redis Cluster.
//!
//! - [`link`]: connections (one server or a cluster) and where keys live.
//! - [`parse`]: raw stream replies into deliveries.
//!
//! On a cluster no command spans two hash slots: a publish is pipelined per slot, a read of
//! streams of several slots becomes one read per slot (run concurrently), and a store's keys
//! share its partition's slot (see [`crate::topology::cluster_key`]), so its dead letters are
//! written atomically with their ack. The names callers pass and get back never change; only the
//! keys do.
//!
//! Redis versions: `XAUTOCLAIM` and exclusive ranges need 6.2; `XINFO GROUPS` reports `lag`
//! from 7.0 (on 6.2 lag is unknown).

mod link;
mod parse;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;
use stockmesh_core::StoreId;

use self::link::{Conn, Link, unavailable_or_refused};
use super::{Broker, BrokerError, DEFAULT_MAX_ENTRY_BYTES, Delivery, GroupInfo, Outgoing};
use crate::topology;

/// `url` (or a comma-separated list of them) with each password replaced by `***`, for logs and
/// output.
pub fn redact_url(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(redact_one).collect::<Vec<_>>().join(",");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{user}@{host}{path}")
}

/// How to reach Redis.
#[derive(Clone)]
pub struct RedisConfig {
    /// e.g. `redis://127.0.0.1:6379` (`rediss://` and ACL users in the URL work as usual). For
    /// a cluster, the seed nodes' URLs separated by commas.
    pub url: String,
    /// Whether `url` names the seeds of a Redis Cluster.
    pub cluster: bool,
    /// How long a non-blocking command may take before the call fails and is retried.
    pub response_timeout: Duration,
    /// Deliveries with more `data` than this come without it
    /// ([`Missing::TooLarge`](super::Missing::TooLarge)).
    pub max_entry_bytes: usize,
    /// For `rediss://`: the CA to trust instead of the system's, and a client certificate.
    pub tls: RedisTls,
}

/// TLS material for `rediss://` URLs (PEM bytes). Empty: the system's roots, no client
/// certificate.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// The CA certificate(s) that sign the server's certificate.
    pub ca: Option<Vec<u8>>,
    /// A client certificate and its private key, for servers that require one.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

impl RedisTls {
    /// The material in these files: the CA certificate(s) (PEM) to trust, and a client
    /// certificate (PEM) with its private key (PEM, owner-only).
    pub fn from_files(
        ca: Option<&Path>,
        client: Option<(&Path, &Path)>,
    ) -> Result<Self, stockmesh_process::FileError> {
        use stockmesh_process::private::{read, read_secret};
        Ok(Self {
            ca: ca.map(read).transpose()?,
            client: match client {
                Some((cert, key)) => Some((read(cert)?, read_secret(key)?.into_bytes())),
                None => None,
            },
        })
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("cluster", &self.cluster)
            .field("response_timeout", &self.response_timeout)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisConfig {
    /// Defaults for one server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster: false,
            response_timeout: Duration::from_secs(2),
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            tls: RedisTls::default(),
        }
    }

    /// Defaults for the Redis Cluster whose seed nodes are `seeds` (URLs separated by commas).
    pub fn cluster(seeds: impl Into<String>) -> Self {
        Self {
            cluster: true,
            ..Self::new(seeds)
        }
    }
}

/// A broker over Redis Streams, on one server or a Redis Cluster.
pub struct RedisBroker {
    link: Link,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("url", &redact_url(&self.config.url))
            .field("cluster", &self.config.cluster)
            .finish()
    }
}

/// Milliseconds of `d` for a Redis argument, at least `floor`.
fn millis(d: Duration, floor: u64) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(floor)
}

impl RedisBroker {
    /// A broker for `config` (one server, or the cluster of `config.cluster`). Connects
    /// lazily: a Redis that is down now is not an error (stores must start and sell without
    /// it); calls fail until it is back. For a cluster, call it within a Tokio runtime (the
    /// cluster connection's task starts here).
    pub fn new(config: RedisConfig) -> Result<Self, BrokerError> {
        let link = Link::open(&config)?;
        Ok(Self { link, config })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, BrokerError> {
        self.link
            .commands()
            .query(cmd)
            .await
            .map_err(unavailable_or_refused)
    }

    async fn query_pipe(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>, BrokerError> {
        self.link
            .commands()
            .pipe(pipe)
            .await
            .map_err(unavailable_or_refused)
    }

    /// Runs `commands` (each with the name whose shard it goes to) as one pipeline per shard,
    /// in the order of each shard's first command. Order within a shard is kept.
    async fn pipelined(&self, commands: Vec<(&str, redis::Cmd)>) -> Result<(), BrokerError> {
        let mut order: Vec<u16> = Vec::new();
        let mut pipes: HashMap<u16, redis::Pipeline> = HashMap::new();
        for (name, cmd) in commands {
            let shard = self.link.shard(name);
            let pipe = pipes.entry(shard).or_insert_with(|| {
                order.push(shard);
                redis::pipe()
            });
            pipe.add_command(cmd).ignore();
        }
        for shard in order {
            if let Some(pipe) = pipes.get(&shard) {
                self.query_pipe(pipe).await?;
            }
        }
        Ok(())
    }

    /// One blocking `XREADGROUP` over `streams` (names, all of one shard).
    async fn read_shard(
        &self,
        mut conn: Conn,
        group: &str,
        consumer: &str,
        streams: &[&str],
        count: usize,
        block: Duration,
    ) -> (Conn, Result<Vec<Delivery>, BrokerError>) {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(millis(block, 1))
            .arg("STREAMS");
        // Replies name keys; callers get back the names they asked for.
        let mut names: HashMap<String, &str> = HashMap::with_capacity(streams.len());
        for stream in streams {
            let key = self.link.key(stream).into_owned();
            cmd.arg(&key);
            names.insert(key, stream);
        }
        for _ in streams {
            cmd.arg(">");
        }
        let reply = match conn.query::<Value>(&cmd).await {
            Ok(value) => value,
            Err(e) => return (conn, Err(unavailable_or_refused(e))),
        };
        let read = parse::read_reply(reply, self.config.max_entry_bytes, |_| 1).map(|mut got| {
            for delivery in &mut got {
                if let Some(name) = names.get(&delivery.stream) {
                    delivery.stream = (*name).to_owned();
                }
            }
            got
        });
        (conn, read)
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, entries: &[Outgoing<'_>], max_len: u64) -> Result<(), BrokerError> {
        let commands = entries
            .iter()
            .map(|entry| {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(self.link.key(entry.stream).as_ref())
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(max_len)
                    .arg("*")
                    .arg("type")
                    .arg(entry.event_type)
                    .arg("data")
                    .arg(entry.data);
                (entry.stream, cmd)
            })
            .collect();
        self.pipelined(commands).await
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BrokerError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(self.link.key(stream).as_ref())
            .arg(group)
            .arg("0")
            .arg("MKSTREAM");
        match self.link.commands().query::<()>(&cmd).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(unavailable_or_refused(e)),
        }
    }

    async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        streams: &[String],
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, BrokerError> {
        if streams.is_empty() {
            tokio::time::sleep(block).await;
            return Ok(Vec::new());
        }
        let mut shards: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
        for stream in streams {
            shards
                .entry(self.link.shard(stream))
                .or_default()
                .push(stream);
        }
        // One read per shard, all at once; each returns when its shard has entries or the
        // block time passes, and none is abandoned (an abandoned blocked read could still hand
        // entries to this consumer, to sit unread in its pending list).
        let mut reads = Vec::with_capacity(shards.len());
        for names in shards.values() {
            let conn = self.link.take_blocking(block)?;
            reads.push(self.read_shard(conn, group, consumer, names, count, block));
        }
        let mut deliveries = Vec::new();
        let mut failure = None;
        for (conn, read) in futures_util::future::join_all(reads).await {
            match read {
                Ok(got) => {
                    // A connection that carried an oversized entry keeps a read buffer of its
                    // size; let it go instead of pooling it.
                    let oversized = got
                        .iter()
                        .any(|d| matches!(d.missing, Some(super::Missing::TooLarge { .. })));
                    if !oversized {
                        self.link.give_back(conn);
                    }
                    deliveries.extend(got);
                }
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            // Entries other shards delivered are pending for this consumer: hand them over.
            Some(e) if deliveries.is_empty() => Err(e),
            _ => Ok(deliveries),
        }
    }

    async fn read_pending(
        &self,
        group: &str,
        consumer: &str,
        stream: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<Delivery>, BrokerError> {
        let key = self.link.key(stream);
        let mut pipe = redis::pipe();
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(key.as_ref())
            .arg(after);
        // The history read above already counted this delivery; read the counts after it.
        let start = if after == "0" || after == "0-0" {
            "-".to_owned()
        } else {
            format!("({after}")
        };
        pipe.cmd("XPENDING")
            .arg(key.as_ref())
            .arg(group)
            .arg(start)
            .arg("+")
            .arg(count)
            .arg(consumer);
        let replies = self.query_pipe(&pipe).await?;
        let Ok([read, pending]) = <[Value; 2]>::try_from(replies) else {
            return Err(BrokerError::Protocol(
                "pipeline reply of the wrong size".into(),
            ));
        };
        let counts = parse::pending_counts(&pending)?;
        let mut got = parse::read_reply(read, self.config.max_entry_bytes, |id| {
            counts.get(id).copied().unwrap_or(1)
        })?;
        for delivery in &mut got {
            stream.clone_into(&mut delivery.stream);
        }
        Ok(got)
    }

    async fn claim_idle(
        &self,
        group: &str,
        consumer: &str,
        stream: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, BrokerError> {
        let key = self.link.key(stream);
        let mut cursor = "0-0".to_owned();
        let mut moved = 0;
        loop {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(key.as_ref())
                .arg(group)
                .arg(consumer)
                .arg(millis(min_idle, 0))
                .arg(&cursor)
                .arg("COUNT")
                .arg(count)
                // JUSTID leaves the delivery count alone; the read that follows counts it.
                .arg("JUSTID");
            let reply: Value = self.query(&cmd).await?;
            let (next, claimed) = parse::autoclaim_reply(&reply)?;
            moved += claimed;
            if next == "0-0" || moved >= count {
                return Ok(moved);
            }
            cursor = next;
        }
    }

    async fn ack(&self, group: &str, stream: &str, ids: &[String]) -> Result<(), BrokerError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(self.link.key(stream).as_ref()).arg(group).arg(ids);
        self.query::<i64>(&cmd).await.map(drop)
    }

    async fn dead_letter(
        &self,
        group: &str,
        entry: &Delivery,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let dead = topology::dead_letter_stream(&entry.stream);
        let mut copy = redis::cmd("XADD");
        copy.arg(self.link.key(&dead).as_ref())
            .arg("*")
            .arg("type")
            .arg(entry.event_type.as_deref().unwrap_or(""))
            .arg("data")
            .arg(entry.data.as_deref().unwrap_or_default())
            .arg("reason")
            .arg(reason)
            .arg("source_id")
            .arg(&entry.id)
            .arg("group")
            .arg(group)
            .arg("deliveries")
            .arg(entry.deliveries);
        let mut ack = redis::cmd("XACK");
        ack.arg(self.link.key(&entry.stream).as_ref())
            .arg(group)
            .arg(&entry.id);
        if self.link.shard(&dead) == self.link.shard(&entry.stream) {
            // Both keys share the stream's hash tag: one transaction, legal on a cluster too.
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.add_command(copy).ignore();
            pipe.add_command(ack).ignore();
            return self.query_pipe(&pipe).await.map(drop);
        }
        // A stream without a hash tag on a cluster: copy first, then ack. A failure in between
        // leaves the entry pending, to be dead-lettered again (a duplicate copy, never a loss).
        self.query::<Value>(&copy).await?;
        self.query::<i64>(&ack).await.map(drop)
    }

    async fn beat(&self, store: &StoreId, at: i64, ttl: Duration) -> Result<(), BrokerError> {
        let heartbeat = topology::heartbeat_key(store);
        let mut set = redis::cmd("SET");
        set.arg(self.link.key(&heartbeat).as_ref())
            .arg(at)
            .arg("PX")
            .arg(millis(ttl, 1));
        let mut register = redis::cmd("SADD");
        register
            .arg(self.link.key(topology::STORE_REGISTRY).as_ref())
            .arg(store.as_str());
        self.pipelined(vec![
            (heartbeat.as_str(), set),
            (topology::STORE_REGISTRY, register),
        ])
        .await
    }

    async fn claim_central(
        &self,
        database: &str,
        ttl: Duration,
    ) -> Result<Option<String>, BrokerError> {
        let key = self.link.key(topology::CENTRAL_DATABASE);
        let set = |condition: &str| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key.as_ref())
                .arg(database)
                .arg(condition)
                .arg("PX")
                .arg(millis(ttl, 1));
            cmd
        };
        // Free (or expired): ours. Else ours already: renewed. Else another database's.
        for _ in 0..2 {
            if self.query::<Option<String>>(&set("NX")).await?.is_some() {
                return Ok(None);
            }
            let mut get = redis::cmd("GET");
            get.arg(key.as_ref());
            match self.query::<Option<String>>(&get).await? {
                Some(holder) if holder == database => {
                    self.query::<Option<String>>(&set("XX")).await?;
                    return Ok(None);
                }
                Some(holder) => return Ok(Some(holder)),
                // It expired between the two commands: try again.
                None => {}
            }
        }
        Ok(None)
    }

    async fn release_central(&self, database: &str) -> Result<(), BrokerError> {
        let key = self.link.key(topology::CENTRAL_DATABASE);
        let mut get = redis::cmd("GET");
        get.arg(key.as_ref());
        if self.query::<Option<String>>(&get).await?.as_deref() == Some(database) {
            let mut del = redis::cmd("DEL");
            del.arg(key.as_ref());
            self.query::<i64>(&del).await?;
        }
        Ok(())
    }

    async fn withdraw(&self, store: &StoreId) -> Result<(), BrokerError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.link.key(&topology::heartbeat_key(store)).as_ref());
        self.query::<i64>(&cmd).await.map(drop)
    }

    async fn advertise(
        &self,
        store: &StoreId,
        summary: &str,
        ttl: Duration,
    ) -> Result<(), BrokerError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.link.key(&topology::summary_key(store)).as_ref())
            .arg(summary)
            .arg("PX")
            .arg(millis(ttl, 1));
        self.query::<()>(&cmd).await
    }

    async fn advertisement(&self, store: &StoreId) -> Result<Option<String>, BrokerError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.link.key(&topology::summary_key(store)).as_ref());
        self.query(&cmd).await
    }

    async fn last_beat(&self, store: &StoreId) -> Result<Option<i64>, BrokerError> {
        let name = topology::heartbeat_key(store);
        let key = self.link.key(&name);
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(key.as_ref())
            .cmd("PTTL")
            .arg(key.as_ref());
        let values = self.query_pipe(&pipe).await?;
        let (value, ttl): (Option<String>, i64) =
            redis::FromRedisValue::from_redis_value(Value::Array(values))
                .map_err(|e| BrokerError::Protocol(e.to_string()))?;
        // A store always beats with an expiry; a heartbeat without one was not written by it.
        if value.is_some() && ttl == -1 {
            metrics::counter!("stockmesh_untrusted_total", "kind" => "heartbeat_no_expiry")
                .increment(1);
            tracing::warn!(%store, "ignoring a heartbeat without expiry");
            return Ok(None);
        }
        Ok(value.and_then(|v| v.parse().ok()))
    }

    async fn stores(&self) -> Result<Vec<StoreId>, BrokerError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.link.key(topology::STORE_REGISTRY).as_ref());
        let names: Vec<String> = self.query(&cmd).await?;
        let mut stores: Vec<StoreId> = names
            .into_iter()
            .filter_map(|n| StoreId::parse(n).ok())
            .collect();
        stores.sort();
        Ok(stores)
    }

    async fn group_info(&self, stream: &str, group: &str) -> Result<GroupInfo, BrokerError> {
        let key = self.link.key(stream);
        let mut len = redis::cmd("XLEN");
        len.arg(key.as_ref());
        let length = self.query::<u64>(&len).await?;
        let mut groups = redis::cmd("XINFO");
        groups.arg("GROUPS").arg(key.as_ref());
        let groups: Value = match self.query(&groups).await {
            Ok(groups) => groups,
            // No such stream: nothing to report.
            Err(BrokerError::Refused(_)) => return Ok(GroupInfo::default()),
            Err(e) => return Err(e),
        };
        let Some(info) = parse::group_entry(&groups, group) else {
            return Ok(GroupInfo {
                length,
                ..GroupInfo::default()
            });
        };
        let mut pending = redis::cmd("XPENDING");
        pending.arg(key.as_ref()).arg(group);
        let pending: Value = self.query(&pending).await?;
        let (pending_count, oldest_pending) = parse::pending_summary(&pending);
        let lag = info.lag;
        // The oldest entry the group has not acked: the oldest pending one, or else the first
        // entry after the last delivered one when the group lags.
        let mut oldest_id = oldest_pending;
        if oldest_id.is_none() && lag != Some(0) {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(key.as_ref())
                .arg(format!("({}", info.last_delivered))
                .arg("+")
                .arg("COUNT")
                .arg(1);
            let next: Value = self.query(&cmd).await?;
            oldest_id = parse::read_entries(next, stream, self.config.max_entry_bytes, |_| 0)?
                .into_iter()
                .next()
                .map(|d| d.id);
        }
        let now = stockmesh_core::now().timestamp_millis();
        let oldest_unacked_age_ms = oldest_id
            .as_deref()
            .and_then(parse::id_millis)
            .map(|ms| (now - ms).max(0).unsigned_abs());
        Ok(GroupInfo {
            length,
            pending: pending_count,
            lag,
            oldest_unacked_age_ms,
        })
    }

    async fn entries(&self, stream: &str) -> Result<Vec<Delivery>, BrokerError> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.link.key(stream).as_ref()).arg("-").arg("+");
        let reply: Value = self.query(&cmd).await?;
        parse::read_entries(reply, stream, self.config.max_entry_bytes, |_| 0)
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    fn shard_of(&self, stream: &str) -> u16 {
        self.link.shard(stream)
    }

    fn kind(&self) -> &'static str {
        if self.link.is_cluster() {
            "redis-cluster"
        } else {
            "redis"
        }
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("rediss://store-1:s3cret@redis.example:6380/0"),
            "rediss://store-1:***@redis.example:6380/0"
        );
        assert_eq!(
            redact_url("redis://:s3cret@127.0.0.1"),
            "redis://:***@127.0.0.1"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        let error = RedisBroker::new(RedisConfig::new("redis://u:s3cret@host:notaport"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(!format!("{:?}", RedisConfig::new("redis://u:s3cret@h")).contains("s3cret"));
    }
}
