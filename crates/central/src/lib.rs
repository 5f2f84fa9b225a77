//! # stockmesh-central
//!
//! Central: the chain's stock as customers see it online, and remote purchases that the owning
//! store decides, so nothing is ever oversold.
//!
//! ## Layout
//! - `repository`: all SQL on the view's tables (stores and their items).
//! - `decided`: Central's half of every store-decided flow: record the request and its command
//!   in one transaction, replay under an `Idempotency-Key`, wait with a limit, wake on the reply.
//! - [`purchase`]: the remote purchase (the first store-decided flow): its record, its answer,
//!   its SQL, the resolution of the store's replies.
//! - [`reservation`]: reservations (holds decided by the store, commits and releases as
//!   requests of their own, expiries by the store's clock), their SQL and routes.
//! - [`transfer`]: transfers between stores: a saga of two store steps (ship, receive), its SQL
//!   and routes.
//! - [`service`]: queries on the view, and Central's checks before a purchase reaches a store.
//! - `view`: the consumer handler of the stores' events: item states by version, replies to
//!   their flows.
//! - [`feed`]: the change feed of `GET /events` (server-sent events): what the view applied,
//!   purchases resolved, stores online/offline; a bounded window for resumption, bounded
//!   per-client queues.
//! - [`liveness`]: whether a store is online (its heartbeat's age).
//! - [`repair`]: anti-entropy: compares each store's advertised watermark and digest with the
//!   view and asks for a replay or a paged snapshot when Central is behind or differs.
//! - [`discovery`]: finds stores in the broker's registry; asks new ones for a snapshot.
//! - [`error`]: what can go wrong, as a type.
//! - [`api`]: the HTTP routes.
//! - [`node`]: starts and stops Central.

pub mod api;
pub mod claim;
mod decided;
pub mod discovery;
pub mod error;
pub mod feed;
pub mod leader;
pub mod liveness;
pub mod node;
pub mod purchase;
pub mod repair;
mod repository;
pub mod reservation;
pub mod service;
mod touches;
pub mod transfer;
pub mod trust;
mod view;

pub use error::CentralError;
pub use node::{CentralConfig, CentralNode};
pub use service::CentralService;

/// Central's own migrations (numbered from 100; the bus's come first), in SQLite's dialect and in
/// PostgreSQL's.
pub static MIGRATIONS: stockmesh_bus::Schema = stockmesh_bus::Schema {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: Some(&POSTGRES_MIGRATIONS),
};

/// Central's migrations in SQLite's dialect.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Central's migrations in PostgreSQL's dialect (same versions, same tables).
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations_pg");

/// Loads item states into Central's view at `db` as if their stores had sent them: each store is
/// registered, and a state applies only over an older version. For bulk imports and benchmarks.
pub async fn import_view(
    db: &stockmesh_bus::Database,
    states: &[(&stockmesh_core::StoreId, &stockmesh_core::ItemState)],
) -> sqlx::Result<()> {
    let now = stockmesh_core::now();
    let mut tx = db.writer.begin().await?;
    let mut stores: Vec<&stockmesh_core::StoreId> = states.iter().map(|(s, _)| *s).collect();
    stores.sort();
    stores.dedup();
    for store in stores {
        repository::touch_store(&mut tx, store, now).await?;
    }
    repository::apply_items(&mut tx, states, now).await?;
    tx.commit().await
}

/// Fills an empty view at `db` with `stores` stores (`store-000`, …) of `per_store` synthetic
/// items (`sku-00000000`, …) each, in one transaction of set-based SQL: a big catalogue for
/// benchmarks in seconds, through the real schema and its triggers.
pub async fn fill_catalogue(
    db: &stockmesh_bus::Database,
    stores: u32,
    per_store: u64,
) -> sqlx::Result<()> {
    let mut tx = db.writer.begin().await?;
    repository::fill_catalogue(&mut tx, stores, per_store, stockmesh_core::now()).await?;
    tx.commit().await
}
