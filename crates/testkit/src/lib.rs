//! # stockmesh-testkit
//!
//! Helpers for tests that drive real services over real HTTP: each service listens on port 0 of
//! 127.0.0.1 with its own fresh SQLite file in a temporary directory.
//!
//! ## Layout
//! - [`http`]: a small typed HTTP client ([`Api`]) with helpers for the calls tests make.
//! - [`store`]: [`spawn_store`] / [`TestStore`]: a Store node on port 0, restartable on its file.

pub mod http;
pub mod store;

pub use http::Api;
pub use store::{TestStore, spawn_store};
