//! # stockmesh-testkit
//!
//! Helpers for tests that drive real services over real HTTP: each service listens on port 0 of
//! 127.0.0.1 with its own fresh SQLite file in a temporary directory.
//!
//! ## Layout
//! - [`http`]: a small typed HTTP client ([`Api`]) with helpers for the calls tests make.
//! - [`redis`]: [`RedisServer`]: a private `redis-server` on a free port that can be killed
//!   and restarted.
//! - [`store`]: [`spawn_store`] / [`TestStore`]: a Store node on port 0, restartable on its file.

pub mod http;
pub mod redis;
pub mod store;

pub use http::Api;
pub use redis::{Persistence, RedisServer};
pub use store::{TestStore, spawn_store};
