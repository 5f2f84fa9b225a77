//! The broker port: what stockmesh needs from a log-based message broker, and two adapters.
//!
//! - [`RedisBroker`]: Redis Streams (≥ 6.2; 7.0+ also drops trimmed entries from pending lists
//!   during `XAUTOCLAIM` and reports consumer-group lag), on one server or a Redis Cluster.
//!   Production.
//! - [`MemoryBroker`]: the same semantics in process, for `stockmesh up` without Redis and for
//!   fast tests.
//!
//! The semantics both pin (see the contract tests): entries are appended in order; a consumer
//! group hands each new entry to one consumer and keeps it *pending* until acked; a consumer can
//! re-read its own pending entries (each re-read counts as a delivery); entries idle too long in
//! another consumer's hands can be claimed; an entry trimmed from the stream while pending comes
//! back without data and must simply be acked. An entry whose `data` is missing, or larger than
//! the broker's entry size cap, comes back without data and says why ([`Missing`]); the payload
//! of an oversized entry is measured and dropped at once, never copied or decoded.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use stockmesh_core::StoreId;

pub use self::memory::MemoryBroker;
pub use self::redis::{RedisBroker, RedisConfig, RedisTls, redact_url};

/// Why a broker call failed. [`is_retryable`](Self::is_retryable) tells a passing failure from
/// one that no retry can mend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// The broker could not be reached or did not answer in time. Retryable.
    #[error("broker unreachable: {0}")]
    Unavailable(String),
    /// The broker answered a command with an error, e.g. `NOGROUP` after it restarted empty
    /// (workers recreate what is missing and retry). Retryable.
    #[error("broker refused the command: {0}")]
    Refused(String),
    /// The broker answered something this adapter does not understand. Retryable (a reply
    /// mangled in transit, or a failover in progress).
    #[error("unexpected broker reply: {0}")]
    Protocol(String),
    /// The broker's configuration is unusable (e.g. a malformed URL). Not retryable.
    #[error("invalid broker configuration: {0}")]
    InvalidConfig(String),
}

impl BrokerError {
    /// Whether trying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, BrokerError::InvalidConfig(_))
    }
}

/// One entry to append.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The `type` field (the event type).
    pub event_type: &'a str,
    /// The `data` field (the JSON envelope).
    pub data: &'a str,
}

/// The largest `data` a consumer accepts by default: 1 MiB. Events are a few hundred bytes.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// Why a delivery carries no `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Trimmed from the stream while pending: the broker handed back its id alone. Nothing to
    /// process; ack it.
    Trimmed,
    /// The entry exists but has no `data` field: not an event of ours. Dead-letter it.
    NoDataField,
    /// `data` is larger than the broker's entry size cap; it was dropped unread. Dead-letter it.
    TooLarge {
        /// The size of `data`, in bytes.
        bytes: usize,
        /// The cap, in bytes.
        limit: usize,
    },
}

/// One entry handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream it was read from.
    pub stream: String,
    /// The entry id (e.g. `1700000000000-0`).
    pub id: String,
    /// The `type` field, if present.
    pub event_type: Option<String>,
    /// The `data` field; `None` when the entry was trimmed away while pending, lacks it, or
    /// holds more than the cap (see `missing`).
    pub data: Option<Vec<u8>>,
    /// Why `data` is `None` (`None` when it is there).
    pub missing: Option<Missing>,
    /// How many times the group has delivered it, this time included.
    pub deliveries: u64,
}

impl Delivery {
    /// This delivery with its `data` dropped when it holds more than `limit` bytes.
    pub fn capped(mut self, limit: usize) -> Self {
        if let Some(bytes) = self.data.as_ref().map(Vec::len)
            && bytes > limit
        {
            self.data = None;
            self.missing = Some(Missing::TooLarge { bytes, limit });
        }
        self
    }
}

/// A consumer group's view of a stream, for metrics and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupInfo {
    /// Entries in the stream.
    pub length: u64,
    /// Entries delivered but not acked.
    pub pending: u64,
    /// Entries not yet delivered to the group (`None` when the broker cannot tell).
    pub lag: Option<u64>,
    /// Milliseconds since the oldest entry not yet acked by the group was added, if any.
    pub oldest_unacked_age_ms: Option<u64>,
}

/// What stockmesh needs from a broker.
#[async_trait]
pub trait Broker: Send + Sync + std::fmt::Debug {
    /// Appends `entries` in order (pipelined), trimming each stream to about `max_len` entries.
    /// On error, any prefix of the batch may have been appended.
    async fn publish(&self, entries: &[Outgoing<'_>], max_len: u64) -> Result<(), BrokerError>;

    /// Creates consumer group `group` on `stream` (and the stream) if missing. The group starts
    /// at the beginning of the stream, so nothing published before it existed is missed.
    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BrokerError>;

    /// New entries of `streams` for `consumer`, at most `count` per stream, waiting up to
    /// `block` for the first. Each becomes pending for `consumer`.
    async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        streams: &[String],
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, BrokerError>;

    /// `consumer`'s own pending entries of `stream` after entry id `after` (`"0"` for all),
    /// oldest first, at most `count`; delivery counts included.
    async fn read_pending(
        &self,
        group: &str,
        consumer: &str,
        stream: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<Delivery>, BrokerError>;

    /// Moves to `consumer` the pending entries of `stream` idle for at least `min_idle` in any
    /// consumer's hands (at most `count`); returns how many moved. They are then read with
    /// [`read_pending`](Self::read_pending).
    async fn claim_idle(
        &self,
        group: &str,
        consumer: &str,
        stream: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, BrokerError>;

    /// Acknowledges entries: they leave the pending list for good.
    async fn ack(&self, group: &str, stream: &str, ids: &[String]) -> Result<(), BrokerError>;

    /// Copies `entry` with `reason` to the stream's dead-letter stream, then acks it.
    async fn dead_letter(
        &self,
        group: &str,
        entry: &Delivery,
        reason: &str,
    ) -> Result<(), BrokerError>;

    /// Records `store`'s heartbeat (`at` in unix ms) that expires after `ttl`, and registers
    /// the store so Central can discover it.
    async fn beat(&self, store: &StoreId, at: i64, ttl: Duration) -> Result<(), BrokerError>;

    /// Withdraws `store`'s heartbeat at once (the store disconnects).
    async fn withdraw(&self, store: &StoreId) -> Result<(), BrokerError>;

    /// Advertises `store`'s state summary (JSON text; see `stockmesh_core::summary`), expiring
    /// after `ttl` like its heartbeat.
    async fn advertise(
        &self,
        store: &StoreId,
        summary: &str,
        ttl: Duration,
    ) -> Result<(), BrokerError>;

    /// `store`'s advertised state summary, if it has a live one.
    async fn advertisement(&self, store: &StoreId) -> Result<Option<String>, BrokerError>;

    /// `store`'s last heartbeat (unix ms), if it has a live one.
    async fn last_beat(&self, store: &StoreId) -> Result<Option<i64>, BrokerError>;

    /// Every store that ever registered.
    async fn stores(&self) -> Result<Vec<StoreId>, BrokerError>;

    /// Claims the `central` consumer group for the Central database `database` (its identity)
    /// for `ttl`: done (`None`) when no live claim names another database, renewing this
    /// database's; otherwise the identity the live claim names. Replicas on one database share
    /// the claim; a Central on another database must not join while it lives.
    async fn claim_central(
        &self,
        database: &str,
        ttl: Duration,
    ) -> Result<Option<String>, BrokerError>;

    /// Gives up `database`'s claim at once, if it still holds it (the last replica stops).
    async fn release_central(&self, database: &str) -> Result<(), BrokerError>;

    /// The group's view of the stream.
    async fn group_info(&self, stream: &str, group: &str) -> Result<GroupInfo, BrokerError>;

    /// Entries of `stream` (all of them, for checks and dead-letter inspection).
    async fn entries(&self, stream: &str) -> Result<Vec<Delivery>, BrokerError>;

    /// Whether the broker answers.
    async fn ping(&self) -> Result<(), BrokerError>;

    /// The shard `stream` lives on. Streams of one shard are read together by one blocking
    /// [`read_new`](Self::read_new); a consumer of many streams runs one read per shard at a
    /// time, so that a quiet shard never delays a busy one. One server is one shard; a Redis
    /// Cluster has one per hash slot.
    fn shard_of(&self, stream: &str) -> u16 {
        let _ = stream;
        0
    }

    /// A short name for logs (`redis` or `in-process`).
    fn kind(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bad_configuration_is_not_worth_retrying() {
        assert!(BrokerError::Unavailable("down".into()).is_retryable());
        assert!(BrokerError::Refused("NOGROUP".into()).is_retryable());
        assert!(BrokerError::Protocol("odd".into()).is_retryable());
        assert!(!BrokerError::InvalidConfig("bad url".into()).is_retryable());
    }

    #[test]
    fn a_malformed_url_is_an_invalid_configuration() {
        let error = RedisBroker::new(RedisConfig::new("not a url")).expect_err("refused");
        assert!(!error.is_retryable(), "{error}");
    }
}
