//! Store discovery: stores register themselves in the broker with their first heartbeat; Central
//! adds each one it has not seen to its database and to the streams its consumer reads. A store
//! new to Central's *database* is asked for a snapshot, so a Central that lost its database
//! rebuilds its view from the stores' truth.

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
}

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

    /// One look at the registry; returns how many stores were new to this process.
    pub async fn try_once(&self) -> anyhow::Result<usize> {
        let mut stores = self.broker.stores().await?;
        stores.extend(self.declared.iter().cloned());
        let known = self.streams.snapshot();
        let mut added = 0;
        for store in stores {
            if !known.contains(&topology::events_stream(&store)) {
                self.register(&store).await?;
                added += 1;
            }
        }
        Ok(added)
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
