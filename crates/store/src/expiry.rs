//! The store's own clock ends reservations: a worker that, every tick, expires each open
//! reservation whose time ran out (`reservation::expire_due`). It runs whether or not the store
//! is connected, so an offline store still frees its shelf; the `RESERVATION_ENDED` events wait in
//! the outbox and reach Central when the store returns.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::StoreError;
use crate::repository as repo;
use crate::reservation::expire_due;
use crate::service::StoreService;

/// How many reservations one transaction expires at most.
const BATCH: i64 = 500;

/// Expires due reservations every `tick` until `stop`.
#[derive(Debug, Clone)]
pub struct Expiry {
    service: Arc<StoreService>,
    tick: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Nothing was due.
    Idle,
    /// This many reservations expired.
    Expired(usize),
}

impl Expiry {
    /// A worker over `service`'s store, looking every `tick`.
    pub fn new(service: Arc<StoreService>, tick: Duration) -> Self {
        Self { service, tick }
    }

    /// One pass: a cheap look on the reader first, a write transaction only when something is due.
    pub async fn try_once(&self) -> Result<Pass, StoreError> {
        let now = stockmesh_core::now();
        let db = self.service.database();
        if repo::due_reservations(&db.reader, now, 1).await?.is_empty() {
            return Ok(Pass::Idle);
        }
        let mut tx = db.writer.begin().await?;
        let expired = expire_due(&self.service, &mut tx, now, BATCH).await?;
        tx.commit().await?;
        self.service.outbox_signal().notify();
        Ok(Pass::Expired(expired))
    }

    /// Runs passes until `stop`; a full batch is followed at once by another.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let wait = match self.try_once().await {
                Ok(Pass::Expired(n)) if i64::try_from(n).unwrap_or(0) >= BATCH => Duration::ZERO,
                Ok(Pass::Expired(n)) => {
                    tracing::debug!(expired = n, "reservations expired by the store's clock");
                    self.tick
                }
                Ok(Pass::Idle) => self.tick,
                Err(error) => {
                    tracing::warn!(%error, "cannot expire reservations now; retrying");
                    self.tick * 10
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
