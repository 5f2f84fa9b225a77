//! The Redis Streams adapter.
//!
//! Commands share one multiplexed connection ([`ConnectionManager`], reconnecting by itself).
//! Blocking reads (`XREADGROUP … BLOCK`) would stall every command queued behind them on that
//! connection, so each concurrent blocking read takes a connection of its own from a small pool.
//!
//! Redis versions: `XAUTOCLAIM` and exclusive ranges need 6.2; `XINFO GROUPS` reports `lag`
//! from 7.0 (on 6.2 lag is unknown).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};
use stockmesh_core::StoreId;

use super::{Broker, BrokerError, DEFAULT_MAX_ENTRY_BYTES, Delivery, GroupInfo, Outgoing};
use crate::topology;

/// `url` with its password (if any) replaced by `***`, for logs and output.
pub fn redact_url(url: &str) -> String {
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
    /// e.g. `redis://127.0.0.1:6379` (`rediss://` and ACL users in the URL work as usual).
    pub url: String,
    /// How long a non-blocking command may take before the call fails and is retried.
    pub response_timeout: Duration,
    /// Deliveries with more `data` than this come without it ([`Missing::TooLarge`]).
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
            .field("response_timeout", &self.response_timeout)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            response_timeout: Duration::from_secs(2),
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            tls: RedisTls::default(),
        }
    }
}

/// A broker over Redis Streams.
pub struct RedisBroker {
    client: redis::Client,
    config: RedisConfig,
    commands: ConnectionManager,
    /// Idle connections for blocking reads, one per concurrent reader.
    blocking: Mutex<Vec<ConnectionManager>>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("url", &self.config.url)
            .finish()
    }
}

fn unavailable_or_refused(error: RedisError) -> BrokerError {
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

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

impl RedisBroker {
    /// A broker for `config.url`. Connects lazily: a Redis that is down now is not an error
    /// (stores must start and sell without it); calls fail until it is back.
    pub fn new(config: RedisConfig) -> Result<Self, BrokerError> {
        let opened = if config.url.starts_with("rediss://") {
            // rustls needs one process-wide crypto provider; a second install is a no-op error.
            let _ = rustls::crypto::ring::default_provider().install_default();
            redis::Client::build_with_tls(
                config.url.as_str(),
                redis::TlsCertificates {
                    client_tls: config.tls.client.clone().map(|(cert, key)| {
                        redis::ClientTlsConfig {
                            client_cert: cert,
                            client_key: key,
                        }
                    }),
                    root_cert: config.tls.ca.clone(),
                },
            )
        } else {
            redis::Client::open(config.url.as_str())
        };
        let client = opened.map_err(|e| {
            BrokerError::InvalidConfig(format!(
                "invalid Redis URL {:?}: {e}",
                redact_url(&config.url)
            ))
        })?;
        let commands = ConnectionManager::new_lazy_with_config(
            client.clone(),
            manager_config(config.response_timeout),
        )
        .map_err(unavailable_or_refused)?;
        Ok(Self {
            client,
            config,
            commands,
            blocking: Mutex::new(Vec::new()),
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, BrokerError> {
        cmd.query_async(&mut self.commands.clone())
            .await
            .map_err(unavailable_or_refused)
    }

    async fn query_pipe(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>, BrokerError> {
        pipe.query_async(&mut self.commands.clone())
            .await
            .map_err(unavailable_or_refused)
    }

    fn take_blocking(&self, block: Duration) -> Result<ConnectionManager, BrokerError> {
        let pooled = self
            .blocking
            .lock()
            .map_err(|_| BrokerError::Protocol("connection pool poisoned".into()))?
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => ConnectionManager::new_lazy_with_config(
                self.client.clone(),
                manager_config(block + self.config.response_timeout),
            )
            .map_err(unavailable_or_refused),
        }
    }

    fn give_back(&self, conn: ConnectionManager) {
        if let Ok(mut pool) = self.blocking.lock() {
            pool.push(conn);
        }
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, entries: &[Outgoing<'_>], max_len: u64) -> Result<(), BrokerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for entry in entries {
            pipe.cmd("XADD")
                .arg(entry.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(max_len)
                .arg("*")
                .arg("type")
                .arg(entry.event_type)
                .arg("data")
                .arg(entry.data);
        }
        self.query_pipe(&pipe).await.map(drop)
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BrokerError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM");
        match cmd.query_async::<()>(&mut self.commands.clone()).await {
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
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg("STREAMS");
        for stream in streams {
            cmd.arg(stream);
        }
        for _ in streams {
            cmd.arg(">");
        }
        let mut conn = self.take_blocking(block)?;
        let reply = cmd.query_async::<Value>(&mut conn).await;
        match reply {
            Ok(value) => {
                let deliveries = parse::read_reply(value, self.config.max_entry_bytes, |_| 1)?;
                // A connection that carried an oversized entry keeps a read buffer of its size;
                // let it go instead of pooling it.
                let oversized = deliveries
                    .iter()
                    .any(|d| matches!(d.missing, Some(super::Missing::TooLarge { .. })));
                if !oversized {
                    self.give_back(conn);
                }
                Ok(deliveries)
            }
            Err(e) => Err(unavailable_or_refused(e)),
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
        let mut pipe = redis::pipe();
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(stream)
            .arg(after);
        // The history read above already counted this delivery; read the counts after it.
        let start = if after == "0" || after == "0-0" {
            "-".to_owned()
        } else {
            format!("({after}")
        };
        pipe.cmd("XPENDING")
            .arg(stream)
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
        parse::read_reply(read, self.config.max_entry_bytes, |id| {
            counts.get(id).copied().unwrap_or(1)
        })
    }

    async fn claim_idle(
        &self,
        group: &str,
        consumer: &str,
        stream: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, BrokerError> {
        let mut cursor = "0-0".to_owned();
        let mut moved = 0;
        loop {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(stream)
                .arg(group)
                .arg(consumer)
                .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
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
        cmd.arg(stream).arg(group).arg(ids);
        self.query::<i64>(&cmd).await.map(drop)
    }

    async fn dead_letter(
        &self,
        group: &str,
        entry: &Delivery,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let mut pipe = redis::pipe();
        // Both keys share the stream's hash tag, so the transaction is legal in a cluster too.
        pipe.atomic();
        pipe.cmd("XADD")
            .arg(topology::dead_letter_stream(&entry.stream))
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
            .arg(entry.deliveries)
            .ignore();
        pipe.cmd("XACK")
            .arg(&entry.stream)
            .arg(group)
            .arg(&entry.id)
            .ignore();
        self.query_pipe(&pipe).await.map(drop)
    }

    async fn beat(&self, store: &StoreId, at: i64, ttl: Duration) -> Result<(), BrokerError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(topology::heartbeat_key(store))
            .arg(at)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .ignore();
        pipe.cmd("SADD")
            .arg(topology::STORE_REGISTRY)
            .arg(store.as_str())
            .ignore();
        self.query_pipe(&pipe).await.map(drop)
    }

    async fn withdraw(&self, store: &StoreId) -> Result<(), BrokerError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(topology::heartbeat_key(store));
        self.query::<i64>(&cmd).await.map(drop)
    }

    async fn advertise(
        &self,
        store: &StoreId,
        summary: &str,
        ttl: Duration,
    ) -> Result<(), BrokerError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(topology::summary_key(store))
            .arg(summary)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        self.query::<()>(&cmd).await
    }

    async fn advertisement(&self, store: &StoreId) -> Result<Option<String>, BrokerError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(topology::summary_key(store));
        self.query(&cmd).await
    }

    async fn last_beat(&self, store: &StoreId) -> Result<Option<i64>, BrokerError> {
        let key = topology::heartbeat_key(store);
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
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
        cmd.arg(topology::STORE_REGISTRY);
        let names: Vec<String> = self.query(&cmd).await?;
        let mut stores: Vec<StoreId> = names
            .into_iter()
            .filter_map(|n| StoreId::parse(n).ok())
            .collect();
        stores.sort();
        Ok(stores)
    }

    async fn group_info(&self, stream: &str, group: &str) -> Result<GroupInfo, BrokerError> {
        let mut len = redis::cmd("XLEN");
        len.arg(stream);
        let length = self.query::<u64>(&len).await?;
        let mut groups = redis::cmd("XINFO");
        groups.arg("GROUPS").arg(stream);
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
        pending.arg(stream).arg(group);
        let pending: Value = self.query(&pending).await?;
        let (pending_count, oldest_pending) = parse::pending_summary(&pending);
        let lag = info.lag;
        // The oldest entry the group has not acked: the oldest pending one, or else the first
        // entry after the last delivered one when the group lags.
        let mut oldest_id = oldest_pending;
        if oldest_id.is_none() && lag != Some(0) {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(stream)
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
        cmd.arg(stream).arg("-").arg("+");
        let reply: Value = self.query(&cmd).await?;
        parse::read_entries(reply, stream, self.config.max_entry_bytes, |_| 0)
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// Parsing of raw stream replies (RESP2 arrays; RESP3 maps are accepted too).
mod parse {
    use std::collections::HashMap;

    use redis::Value;

    use super::{BrokerError, Delivery};
    use crate::broker::Missing;

    fn protocol(what: &str) -> BrokerError {
        BrokerError::Protocol(what.to_owned())
    }

    pub fn bytes(value: &Value) -> Option<Vec<u8>> {
        match value {
            Value::BulkString(b) => Some(b.clone()),
            Value::SimpleString(s) => Some(s.clone().into_bytes()),
            Value::Int(i) => Some(i.to_string().into_bytes()),
            _ => None,
        }
    }

    pub fn text(value: &Value) -> Option<String> {
        bytes(value).and_then(|b| String::from_utf8(b).ok())
    }

    pub fn int(value: &Value) -> Option<i64> {
        match value {
            Value::Int(i) => Some(*i),
            other => text(other).and_then(|t| t.parse().ok()),
        }
    }

    /// Elements of an array, or the flattened pairs of a map.
    fn items(value: &Value) -> Option<Vec<&Value>> {
        match value {
            Value::Array(items) | Value::Set(items) => Some(items.iter().collect()),
            Value::Map(pairs) => Some(pairs.iter().flat_map(|(k, v)| [k, v]).collect()),
            _ => None,
        }
    }

    /// The milliseconds part of an entry id.
    pub fn id_millis(id: &str) -> Option<i64> {
        id.split('-').next()?.parse().ok()
    }

    /// Elements of an owned array, or the flattened pairs of an owned map.
    fn into_items(value: Value) -> Option<Vec<Value>> {
        match value {
            Value::Array(items) | Value::Set(items) => Some(items),
            Value::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
            _ => None,
        }
    }

    /// `[[stream, [[id, fields|nil], …]], …]` (XREADGROUP) into deliveries. The reply is taken
    /// by value so that each `data` is moved out of it, never copied.
    pub fn read_reply(
        value: Value,
        max_data: usize,
        count_of: impl Fn(&str) -> u64,
    ) -> Result<Vec<Delivery>, BrokerError> {
        if matches!(value, Value::Nil) {
            return Ok(Vec::new());
        }
        // RESP2 gives [[name, entries], …]; RESP3 a map flattened to [name, entries, …].
        let pairs: Vec<(Value, Value)> = match value {
            Value::Map(pairs) => pairs,
            other => into_items(other)
                .ok_or_else(|| protocol("XREADGROUP reply is not a list"))?
                .into_iter()
                .filter_map(|s| {
                    let mut parts = into_items(s)?.into_iter();
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(name), Some(entries), None) => Some((name, entries)),
                        _ => None,
                    }
                })
                .collect(),
        };
        let mut out = Vec::new();
        for (name, entries) in pairs {
            let stream = text(&name).ok_or_else(|| protocol("stream name is not text"))?;
            out.extend(read_entries(entries, &stream, max_data, &count_of)?);
        }
        Ok(out)
    }

    /// `[[id, [field, value, …] | nil], …]` into deliveries of `stream`. A `data` longer than
    /// `max_data` is measured and dropped on the spot ([`Missing::TooLarge`]).
    pub fn read_entries(
        value: Value,
        stream: &str,
        max_data: usize,
        count_of: impl Fn(&str) -> u64,
    ) -> Result<Vec<Delivery>, BrokerError> {
        if matches!(value, Value::Nil) {
            return Ok(Vec::new());
        }
        let entries = into_items(value).ok_or_else(|| protocol("entries are not a list"))?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut parts = into_items(entry)
                .ok_or_else(|| protocol("entry is not a list"))?
                .into_iter();
            let (Some(id), Some(fields), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(protocol("entry is not [id, fields]"));
            };
            let id = text(&id).ok_or_else(|| protocol("entry id is not text"))?;
            let mut event_type = None;
            let mut data = None;
            // Redis answers nil fields for an entry trimmed away while pending.
            let mut missing = Some(Missing::Trimmed);
            if let Some(fields) = into_items(fields) {
                missing = Some(Missing::NoDataField);
                let mut fields = fields.into_iter();
                while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
                    match text(&k).as_deref() {
                        Some("type") => event_type = text(&v),
                        Some("data") => match v {
                            Value::BulkString(b) if b.len() > max_data => {
                                missing = Some(Missing::TooLarge {
                                    bytes: b.len(),
                                    limit: max_data,
                                });
                                data = None;
                            }
                            Value::BulkString(b) => {
                                missing = None;
                                data = Some(b);
                            }
                            other => {
                                data = bytes(&other);
                                missing = data.is_none().then_some(Missing::NoDataField);
                            }
                        },
                        _ => {}
                    }
                }
            }
            let deliveries = count_of(&id);
            out.push(Delivery {
                stream: stream.to_owned(),
                id,
                event_type,
                data,
                missing,
                deliveries,
            });
        }
        Ok(out)
    }

    /// Extended XPENDING `[[id, consumer, idle, count], …]` into id → count.
    pub fn pending_counts(value: &Value) -> Result<HashMap<String, u64>, BrokerError> {
        let mut counts = HashMap::new();
        for row in items(value).unwrap_or_default() {
            if let Some([id, _, _, count]) = items(row).as_deref() {
                let id = text(id).ok_or_else(|| protocol("pending id is not text"))?;
                counts.insert(id, int(count).unwrap_or(1).unsigned_abs());
            }
        }
        Ok(counts)
    }

    /// Summary XPENDING `[count, min-id, max-id, consumers]` into (count, min-id).
    pub fn pending_summary(value: &Value) -> (u64, Option<String>) {
        match items(value).as_deref() {
            Some([count, min, ..]) => (int(count).unwrap_or(0).unsigned_abs(), text(min)),
            _ => (0, None),
        }
    }

    /// XAUTOCLAIM `[cursor, [ids…], [deleted…]?]` into (cursor, how many left the list for us).
    pub fn autoclaim_reply(value: &Value) -> Result<(String, usize), BrokerError> {
        let parts = items(value).ok_or_else(|| protocol("XAUTOCLAIM reply is not a list"))?;
        let cursor = parts
            .first()
            .and_then(|c| text(c))
            .ok_or_else(|| protocol("XAUTOCLAIM cursor missing"))?;
        let claimed = parts.get(1).and_then(|c| items(c)).map_or(0, |c| c.len());
        let deleted = parts.get(2).and_then(|d| items(d)).map_or(0, |d| d.len());
        Ok((cursor, claimed + deleted))
    }

    /// What XINFO GROUPS says of one group.
    pub struct GroupEntry {
        pub last_delivered: String,
        pub lag: Option<u64>,
    }

    /// Finds `group` in an XINFO GROUPS reply.
    pub fn group_entry(value: &Value, group: &str) -> Option<GroupEntry> {
        for entry in items(value)? {
            let fields = items(entry)?;
            let mut map = HashMap::new();
            for pair in fields.chunks(2) {
                if let [k, v] = pair {
                    map.insert(text(k)?, *v);
                }
            }
            if map.get("name").and_then(|v| text(v)).as_deref() == Some(group) {
                return Some(GroupEntry {
                    last_delivered: map
                        .get("last-delivered-id")
                        .and_then(|v| text(v))
                        .unwrap_or_else(|| "0-0".into()),
                    lag: map.get("lag").and_then(|v| int(v)).map(i64::unsigned_abs),
                });
            }
        }
        None
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
