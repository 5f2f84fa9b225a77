//! # stockmesh-central
//!
//! Central: the chain's stock as customers see it online, and remote purchases that the owning
//! store decides, so nothing is ever oversold.
//!
//! ## Layout
//! - [`repository`]: all SQL on Central's tables (stores, the view, purchases).
//! - [`purchase`]: a remote purchase record and the idempotency key.
//! - [`service`]: queries on the view, and the remote purchase flow.
//! - [`view`]: applies the stores' events (by version) and purchase replies.
//! - [`waiters`]: purchase requests waiting for the store's answer.
//! - [`liveness`]: whether a store is online (its heartbeat's age).
//! - [`discovery`]: finds stores in the broker's registry; asks new ones for a snapshot.
//! - [`error`]: what can go wrong, as a type.
//! - [`api`]: the HTTP routes.
//! - [`node`]: starts and stops Central.

pub mod api;
pub mod discovery;
pub mod error;
pub mod liveness;
pub mod node;
pub mod purchase;
pub mod repository;
pub mod service;
pub mod view;
pub mod waiters;

pub use error::CentralError;
pub use node::{CentralConfig, CentralNode};
pub use service::CentralService;

/// Central's own migrations (numbered from 100; the bus's come first).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
