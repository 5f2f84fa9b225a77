//! Provisioned stores only. A store exists for Central when an admin provisions it (`POST
//! /stores`, `--stores`), which records it in Central's database and adds its events stream to
//! the consumer at once. Ids that appear in the broker's registry (stores announce themselves
//! there with their first heartbeat) but were never provisioned are ignored, counted in
//! `stockmesh_untrusted_total{kind="unknown_store"}` and logged once each: never turned into
//! streams. The periodic look picks up stores another Central replica provisioned.
//!
//! A store new to Central's *database* is asked for a snapshot, so a Central that lost its
//! database rebuilds its view from the stores' truth.

use std::sync::Arc;
use std::time::Duration;

use stockmesh_bus::{Broker, Database, Outbox, OutboxSignal, StreamSet, topology};
use stockmesh_core::{Envelope, Event, StoreId, event::SnapshotRequest};
use tokio_util::sync::CancellationToken;

use crate::repository as repo;

/// Finds stores and keeps the consumer's stream set complete.
#[derive(Debug, Clone)]
pub struct Discovery {
    db: Database,
    broker: Arc<dyn Broker>,
    streams: StreamSet,
    signal: OutboxSignal,
    declared: Vec<StoreId>,
    interval: Duration,
    logged: Arc<std::sync::Mutex<std::collections::HashSet<StoreId>>>,
}

/// At most this many unknown ids are remembered as logged (each is still counted).
const LOGGED_UNKNOWN: usize = 1000;

impl Discovery {
    /// Discovery over `broker`'s registry plus the `declared` stores.
    pub fn new(
        db: Database,
        broker: Arc<dyn Broker>,
        streams: StreamSet,
        signal: OutboxSignal,
        declared: Vec<StoreId>,
        interval: Duration,
    ) -> Self {
        Self {
            db,
            broker,
            streams,
            signal,
            declared,
            interval,
            logged: Arc::default(),
        }
    }

    /// Registers a store with Central: returns whether it was new to the database.
    pub async fn register(&self, store: &StoreId) -> anyhow::Result<bool> {
        let mut tx = self.db.writer.begin().await?;
        let new = repo::insert_store(&mut tx, store, stockmesh_core::now()).await?;
        if new {
            let request = Envelope::new(
                store.clone(),
                Event::SnapshotRequested(SnapshotRequest::default()),
                None,
            );
            Outbox::append(&mut tx, &topology::commands_stream(store), &request).await?;
        }
        tx.commit().await?;
        if new {
            self.signal.notify();
            tracing::info!(%store, "new store registered; snapshot requested");
        }
        self.streams.add(topology::events_stream(store));
        Ok(new)
    }

    /// One look: adds the streams of stores provisioned (by another replica) since the last
    /// look, and counts the registry's unprovisioned ids. Returns how many streams were added.
    pub async fn try_once(&self) -> anyhow::Result<usize> {
        let mut added = 0;
        let provisioned: Vec<StoreId> = repo::list_stores(&self.db.reader)
            .await?
            .into_iter()
            .map(|row| row.store_id)
            .chain(self.declared.iter().cloned())
            .collect();
        for store in &provisioned {
            if self.streams.add(topology::events_stream(store)) {
                added += 1;
            }
        }
        for store in self.broker.stores().await? {
            if !provisioned.contains(&store) {
                self.unknown(&store);
            }
        }
        Ok(added)
    }

    /// Counts an id seen in the registry that no admin provisioned; logs it once.
    fn unknown(&self, store: &StoreId) {
        metrics::counter!("stockmesh_untrusted_total", "kind" => "unknown_store").increment(1);
        let Ok(mut logged) = self.logged.lock() else {
            return;
        };
        if logged.len() < LOGGED_UNKNOWN && logged.insert(store.clone()) {
            tracing::warn!(%store, "ignoring an unprovisioned store id in the registry (provision it with POST /stores)");
        }
    }

    /// Looks every interval until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            if let Err(error) = self.try_once().await {
                tracing::debug!(error = %format!("{error:#}"), "store discovery failed; retrying");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
