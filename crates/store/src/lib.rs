//! # stockmesh-store
//!
//! The Store service: a store owns its stock, sells from it with or without a network, and tells
//! Central about every change through its outbox.
//!
//! ## Layout
//! - [`repository`]: all SQL on the store's tables (items, movements, decisions).
//! - [`service`]: the store's operations; each change is one write of the group commit
//!   (`stockmesh_bus::writer`) holding the item, its version bump, a movement row and the outbox
//!   row of its event, answered once durable.
//! - [`error`]: what can go wrong, as a type.
//! - [`adjustment`]: batch adjustments with reasons, all or nothing, compare-and-set by version.
//! - [`commands`]: the consumer handler of Central's commands: routes each to its flow.
//! - `decided`: the store's half of every store-decided flow: decide each request once, refuse
//!   it past its deadline, write decision, effect and reply in one transaction.
//! - `remote_purchase`: the remote purchase's decision (the first store-decided flow).
//! - [`repair`]: self-healing: the summary the heartbeat advertises, and resynchronisations
//!   (replay or snapshot) sent in pages.
//! - `reservation`: holds, commits, releases and expiries of reservations (store-decided).
//! - [`transfer`]: the sending store's shipment and the receiving store's receipt of transfers.
//! - [`expiry`]: the worker that expires reservations by the store's own clock.
//! - [`api`]: the HTTP routes (thin handlers: extract, call the service, map the result).
//! - [`node`]: starts and stops a whole store (database, HTTP server, background workers).

pub mod adjustment;
pub mod api;
pub mod commands;
mod decided;
pub mod error;
pub mod expiry;
pub mod node;
mod remote_purchase;
pub mod repair;
pub mod repository;
mod reservation;
pub mod service;
pub mod transfer;

pub use error::StoreError;
pub use node::{StoreConfig, StoreNode};
pub use service::StoreService;

/// The store's own migrations (numbered from 100; the bus's come first). A store keeps its stock
/// in an embedded SQLite file: it has no PostgreSQL dialect.
pub static MIGRATIONS: stockmesh_bus::Schema = stockmesh_bus::Schema::sqlite(&SQLITE_MIGRATIONS);

/// The store's migrations in SQLite's dialect.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Fills an empty store's database at `db` with `count` synthetic items (`sku-00000000`, …) in
/// one transaction of set-based SQL: a big catalogue for benchmarks in seconds, through the real
/// schema and its triggers.
pub async fn fill_catalogue(db: &stockmesh_bus::Database, count: u64) -> sqlx::Result<()> {
    let mut tx = db.writer.begin().await?;
    repository::fill_catalogue(&mut tx, count, stockmesh_core::now()).await?;
    tx.commit().await
}
