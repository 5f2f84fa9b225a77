//! # stockmesh-bus
//!
//! Everything that moves events between stores and Central, and the SQLite plumbing that makes
//! the moves safe. Redis is spoken only here.
//!
//! ## Layout
//! - [`broker`]: the broker port ([`Broker`]) and its adapters: Redis Streams and in-process.
//! - [`db`]: opens a service's SQLite database (WAL, durability, one writer) and migrates it.
//! - [`outbox`]: the transactional outbox table: append in the change's transaction, read and
//!   mark by the relay.
//! - [`inbox`]: the `processed_events` table that makes consumers idempotent.
//! - [`relay`]: publishes the outbox to the broker, in order, with back-off.
//! - [`consumer`]: reads a consumer group, applies through a [`consumer::Handler`], acks after
//!   the commit, reclaims, dead-letters.
//! - [`heartbeat`]: a store's liveness key.
//! - [`local`]: the broker of a local cluster when none is named (Redis on 6379, else a private
//!   `redis-server`, else in-process).
//! - [`probe`]: raw SQLite and broker rates, for benchmarks.
//! - [`redis_server`]: a private `redis-server` child process: free port, kill -9, restart on its
//!   data (for `stockmesh up`, tests, chaos and bench).
//! - [`redis_cluster`]: a private local Redis Cluster of such servers (tests, chaos, bench).
//! - [`acl`]: least-privilege Redis users, as `ACL SETUSER` lines.
//! - [`faults`]: data losses inflicted on purpose (`FLUSHALL`, a stream's newest entries).
//! - [`gauges`]: outbox and consumer-group gauges, refreshed at scrape time.
//! - [`backoff`]: jittered exponential back-off.
//! - [`connectivity`]: a node's connected/disconnected switch, watched by every worker.
//! - [`settings`]: rules that span several settings, checked at start ([`ConfigError`]).
//! - [`topology`]: stream and key names (hash-tagged by store), and their place on a Redis
//!   Cluster.
//! - [`writer`]: group commit: one writer task gathers concurrent writes into one transaction,
//!   each behind a savepoint it rolls back to if it fails, answered once the transaction is
//!   durable.

pub mod acl;
pub mod backoff;
pub mod broker;
pub mod connectivity;
pub mod consumer;
pub mod db;
pub mod faults;
pub mod gauges;
pub mod heartbeat;
pub mod inbox;
pub mod local;
pub mod outbox;
pub mod pg_admin;
pub mod pg_notify;
pub mod probe;
pub mod redis_cluster;
pub mod redis_server;
pub mod relay;
pub mod settings;
pub mod sql;
pub mod topology;
pub mod writer;

pub use broker::{
    Broker, BrokerError, Delivery, MemoryBroker, Missing, RedisBroker, RedisConfig, RedisTls,
};
pub use connectivity::{Connectivity, LinkState};
pub use consumer::{ConsumeOutcome, Consumer, ConsumerConfig, Handler, HandlerError, StreamSet};
pub use db::{Database, DbConfig, Durability, Engine, Schema, redacted};
pub use heartbeat::{Advertise, Heartbeat, HeartbeatConfig};
pub use inbox::Inbox;
pub use outbox::{Outbox, OutboxRow, OutboxSignal};
pub use relay::{Relay, RelayConfig, RelayError, RelayOutcome};
pub use settings::ConfigError;
pub use writer::{GroupCommit, GroupWriter, Leading, Mark, WriteError};
