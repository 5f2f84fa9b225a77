//! # stockmesh-testkit
//!
//! Helpers for tests that drive real services over real HTTP: each service listens on port 0 of
//! 127.0.0.1 with its own fresh SQLite file in a temporary directory.
//!
//! ## Layout
//! - [`cluster`]: [`TestCluster`]: Central and N stores over a private Redis or the
//!   in-process broker, in this process.
//! - [`demo`]: the original specification's demo as one reusable scenario.
//! - [`http`]: a small typed HTTP client ([`Api`]) with helpers for the calls tests make.
//! - [`metrics`]: reading samples out of `GET /metrics`.
//! - [`openapi`]: each node's spec beside its access table, and the check that they agree.
//! - [`postgres`]: [`PgDatabase`]: a fresh PostgreSQL database per test, dropped after it.
//! - [`process`]: [`process::NodeProcess`]: a node as a separate OS process of the real binary.
//! - [`redis`]: [`RedisServer`]: a private `redis-server` on a free port that can be killed
//!   and restarted; [`RedisClusterServer`]: a private three-master Redis Cluster.
//! - [`sse`]: a minimal server-sent events client.
//! - [`store`]: [`spawn_store`] / [`TestStore`]: a Store node on port 0, restartable on its file.

pub mod cluster;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod sse;
pub mod store;

pub use cluster::{BrokerKind, CentralBackup, TestCluster, central_on_postgres, eventually};
pub use http::Api;
pub use postgres::PgDatabase;
pub use redis::{Persistence, RedisClusterServer, RedisServer};
pub use store::{TestStore, spawn_store};

/// Installs a test log subscriber once, filtered by `RUST_LOG` (nothing when unset).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
