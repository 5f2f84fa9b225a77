//! Applies the stores' events to Central's view: item states by version, purchase replies to
//! their purchases. One transaction per batch, inbox included; waiting purchase requests are
//! woken after the commit.

use std::sync::Arc;

use async_trait::async_trait;
use stockmesh_bus::{Database, Handler, HandlerError, Inbox};
use stockmesh_core::{Envelope, Event, StoreId};

use crate::purchase::PurchaseStatus;
use crate::repository as repo;
use crate::waiters::Waiters;

/// The consumer handler of every store's events stream.
#[derive(Debug, Clone)]
pub struct ViewUpdater {
    node: String,
    db: Database,
    waiters: Arc<Waiters>,
}

impl ViewUpdater {
    /// Applies events to `db` and wakes `waiters`; `node` labels its metrics.
    pub fn new(node: impl Into<String>, db: Database, waiters: Arc<Waiters>) -> Self {
        Self {
            node: node.into(),
            db,
            waiters,
        }
    }
}

#[async_trait]
impl Handler for ViewUpdater {
    async fn handle(&self, events: &[Envelope]) -> Result<(), HandlerError> {
        let now = stockmesh_core::now();
        let mut tx = self.db.writer.begin().await?;
        let mut resolved = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut touched: Vec<&StoreId> = Vec::new();
        for envelope in events {
            let kind = envelope.event.type_name();
            if !Inbox::record(&mut tx, envelope.id, now.timestamp_millis()).await? {
                outcomes.push((kind, "duplicate", envelope));
                continue;
            }
            let store = &envelope.store_id;
            if !touched.contains(&store) {
                repo::touch_store(&mut tx, store, now).await?;
                touched.push(store);
            }
            match &envelope.event {
                Event::InventoryItemCreated(state) | Event::InventoryItemUpdated(state) => {
                    repo::apply_item(&mut tx, store, state, now).await?;
                }
                Event::RemotePurchaseConfirmed(reply) => {
                    repo::apply_item(&mut tx, store, &reply.item, now).await?;
                    let status = PurchaseStatus::Confirmed;
                    if repo::resolve_purchase(
                        &mut tx,
                        reply.purchase_id,
                        status,
                        None,
                        Some(&reply.item),
                        now,
                    )
                    .await?
                    {
                        tracing::debug!(
                            purchase = %reply.purchase_id,
                            correlation_id = ?envelope.correlation_id,
                            "remote purchase confirmed by the store"
                        );
                        resolved.push(reply.purchase_id);
                    }
                }
                Event::RemotePurchaseRejected(reply) => {
                    if let Some(item) = &reply.item {
                        repo::apply_item(&mut tx, store, item, now).await?;
                    }
                    let status = PurchaseStatus::Rejected;
                    if repo::resolve_purchase(
                        &mut tx,
                        reply.purchase_id,
                        status,
                        Some(reply.reason),
                        reply.item.as_ref(),
                        now,
                    )
                    .await?
                    {
                        tracing::debug!(
                            purchase = %reply.purchase_id,
                            reason = reply.reason.as_str(),
                            correlation_id = ?envelope.correlation_id,
                            "remote purchase rejected by the store"
                        );
                        resolved.push(reply.purchase_id);
                    }
                }
                Event::InventoryItemRemotePurchase(_) | Event::SnapshotRequested(_) => {
                    return Err(HandlerError::Permanent(format!(
                        "{kind} is a command for stores, not an event for Central"
                    )));
                }
            }
            outcomes.push((kind, "applied", envelope));
        }
        tx.commit().await?;
        for purchase in resolved {
            self.waiters.wake(purchase);
        }
        let applied_at = chrono::Utc::now();
        for (kind, outcome, envelope) in outcomes {
            metrics::counter!("stockmesh_events_consumed_total", "node" => self.node.clone(), "type" => kind, "outcome" => outcome)
                .increment(1);
            if outcome == "applied" {
                let lag = (applied_at - envelope.occurred_at)
                    .num_microseconds()
                    .unwrap_or(0);
                metrics::histogram!("stockmesh_propagation_seconds", "node" => self.node.clone(), "type" => kind)
                    .record(lag.max(0) as f64 / 1e6);
            }
        }
        Ok(())
    }
}
