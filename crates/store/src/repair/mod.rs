//! The store's half of self-healing (DESIGN §9).
//!
//! - [`Summarizer`]: what the heartbeat advertises: the watermark and item count (one row kept by
//!   triggers) and, once the store is quiet (the watermark unchanged since the last beat), the
//!   digest of every `(product, version)`, computed in pages inside one read transaction and
//!   cached until the next change.
//! - [`request_resync`]: Central asked for the items changed after an instant (a replay) or for
//!   every item (a snapshot); the request is recorded in the command's transaction, and dropped
//!   when the resynchronisation in progress already covers it, so the work happens once.
//! - [`Resync`]: the worker that sends a resynchronisation in pages, each in its own short
//!   transaction, pausing while the outbox is backed up: memory and transaction time stay
//!   bounded whatever the inventory's size, and sales go on between pages.

pub(crate) mod repository;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AnyConnection;
use stockmesh_bus::{Advertise, Database, Outbox};
use stockmesh_core::summary::Digest;
use stockmesh_core::{CorrelationId, Event, StateSummary, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::error::StoreError;
use crate::service::StoreService;

/// Items per digest page.
const DIGEST_PAGE: i64 = 5_000;

/// Reads the figures a heartbeat advertises.
#[derive(Debug)]
pub struct Summarizer {
    db: Database,
    /// The watermark seen at the last beat, and the digest computed at it, if any.
    last: Mutex<Option<(u64, Option<u64>)>>,
}

impl Summarizer {
    /// A summarizer over the store's database.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            last: Mutex::new(None),
        }
    }

    /// The summary now: the digest only when the watermark has not moved since the last call.
    pub async fn read(&self) -> Result<StateSummary, sqlx::Error> {
        let mut conn = self.db.reader.acquire().await?;
        let (items, changes) = repository::summary(&mut conn).await?;
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        let digest = match last {
            Some((seen, Some(digest))) if seen == changes => Some(digest),
            Some((seen, None)) if seen == changes => {
                drop(conn);
                self.digest_at(changes).await?
            }
            _ => None,
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((changes, digest));
        Ok(StateSummary {
            changes,
            items,
            digest,
        })
    }

    /// The digest of every item, if the watermark is still `changes` (one read transaction, so
    /// the pages and the watermark are one snapshot).
    async fn digest_at(&self, changes: u64) -> Result<Option<u64>, sqlx::Error> {
        let mut tx = self.db.reader.begin().await?;
        let (_, now) = repository::summary(&mut tx).await?;
        if now != changes {
            return Ok(None);
        }
        let mut digest = Digest::default();
        let mut after = String::new();
        loop {
            let page = repository::versions_after(&mut tx, &after, DIGEST_PAGE).await?;
            for (product, version) in &page {
                digest.add(product, version.unsigned_abs());
            }
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) == DIGEST_PAGE;
            match page.into_iter().last() {
                Some((product, _)) if full => after = product,
                _ => break,
            }
        }
        Ok(Some(digest.value()))
    }
}

#[async_trait]
impl Advertise for Summarizer {
    async fn summary(&self) -> Option<StateSummary> {
        match self.read().await {
            Ok(summary) => Some(summary),
            Err(error) => {
                tracing::warn!(%error, "cannot read the store's summary");
                None
            }
        }
    }
}

/// Records Central's request to resend the items changed after `changed_after` (all when
/// `None`), inside the command's transaction. Returns whether it started a resynchronisation
/// (`false`: the one in progress covers it).
pub(crate) async fn request_resync(
    conn: &mut AnyConnection,
    changed_after: Option<Timestamp>,
    correlation: Option<&CorrelationId>,
) -> Result<bool, StoreError> {
    let after = changed_after.map(|t| t.timestamp_millis());
    if let Some(running) = repository::resync_job(conn).await? {
        let covered = match (running.changed_after, after) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(running), Some(asked)) => running <= asked,
        };
        if covered {
            return Ok(false);
        }
    }
    repository::start_resync(conn, after, correlation, stockmesh_core::now()).await?;
    Ok(true)
}

/// What one step of the resynchronisation worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncOutcome {
    /// Nothing to send.
    Idle,
    /// The outbox is backed up; the next page waits.
    Paused,
    /// Sent a page of this many items; more may follow.
    Sent(usize),
    /// Sent the last page (this many items); the resynchronisation is over.
    Finished(usize),
}

/// Sends the resynchronisation in progress, a page per transaction.
#[derive(Debug, Clone)]
pub struct Resync {
    service: Arc<StoreService>,
    /// Items per page (and per transaction).
    page: i64,
    /// Pause while more outbox rows than this wait: pages must not outrun the relay, or the
    /// stream's cap could trim entries before Central reads them.
    max_backlog: i64,
    /// How often to look for work when idle.
    poll: Duration,
}

impl Resync {
    /// The worker of `service`'s store.
    pub fn new(service: Arc<StoreService>) -> Self {
        Self {
            service,
            page: 1_000,
            max_backlog: 20_000,
            poll: Duration::from_millis(200),
        }
    }

    /// Sends one page, if there is one and the outbox has room.
    pub async fn try_once(&self) -> Result<ResyncOutcome, StoreError> {
        let db = self.service.database();
        // Idle costs one single-row read.
        if repository::resync_job(&mut *db.reader.acquire().await?)
            .await?
            .is_none()
        {
            return Ok(ResyncOutcome::Idle);
        }
        if Outbox::backlog(&db.reader).await?.pending > self.max_backlog {
            return Ok(ResyncOutcome::Paused);
        }
        let mut tx = db.writer.begin().await?;
        // Read again in the writer's transaction: a new request may have replaced the job.
        let Some(job) = repository::resync_job(&mut tx).await? else {
            return Ok(ResyncOutcome::Idle);
        };
        let cursor = job.cursor.as_ref().map(|(at, p)| (*at, p.as_str()));
        let items =
            repository::items_changed_after(&mut tx, job.changed_after, cursor, self.page).await?;
        let count = items.len();
        let last = items
            .last()
            .map(|s| (s.updated_at.timestamp_millis(), s.product_id.to_string()));
        for state in items {
            self.service
                .emit(
                    &mut tx,
                    Event::InventoryItemUpdated(state),
                    job.correlation_id.clone(),
                )
                .await?;
        }
        let finished = i64::try_from(count).unwrap_or(i64::MAX) < self.page;
        match (&last, finished) {
            (Some((at, product)), false) => {
                repository::advance_resync(&mut tx, (*at, product), self.page).await?;
            }
            _ => repository::finish_resync(&mut tx).await?,
        }
        tx.commit().await?;
        self.service.outbox_signal().notify();
        metrics::counter!("stockmesh_resync_items_sent_total", "node" => self.service.id().to_string())
            .increment(count as u64);
        if finished {
            tracing::info!(
                store = %self.service.id(),
                items = job.sent + i64::try_from(count).unwrap_or(0),
                replay = job.changed_after.is_some(),
                "resynchronisation sent"
            );
            return Ok(ResyncOutcome::Finished(count));
        }
        Ok(ResyncOutcome::Sent(count))
    }

    /// Works until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            let pause = match self.try_once().await {
                Ok(ResyncOutcome::Sent(_)) => Duration::ZERO,
                Ok(ResyncOutcome::Paused) => Duration::from_millis(20),
                Ok(ResyncOutcome::Idle | ResyncOutcome::Finished(_)) => self.poll,
                Err(error) => {
                    tracing::warn!(%error, "resynchronisation step failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
