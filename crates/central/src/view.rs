//! Applies the stores' events to Central's view: item states by version, purchase replies to
//! their purchases. One transaction per batch, inbox included, in a few multi-row statements;
//! waiting purchase requests are woken after the commit.

use std::sync::Arc;

use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use stockmesh_bus::{Database, Handler, HandlerError, Inbox};

use stockmesh_core::{Envelope, Event, EventId, ItemState, ProductId, StoreId};

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

/// The item state an event carries, if any.
fn item_state(event: &Event) -> Option<&ItemState> {
    match event {
        Event::InventoryItemCreated(state) | Event::InventoryItemUpdated(state) => Some(state),
        Event::RemotePurchaseConfirmed(reply) => Some(&reply.item),
        Event::RemotePurchaseRejected(reply) => reply.item.as_ref(),
        Event::InventoryItemRemotePurchase(_) | Event::SnapshotRequested(_) => None,
    }
}

#[async_trait]
impl Handler for ViewUpdater {
    /// Applies a batch in one transaction with a handful of statements: the inbox for every
    /// event at once, the newest state of each item at once, then each purchase reply.
    async fn handle(&self, events: &[Envelope]) -> Result<(), HandlerError> {
        if let Some(command) = events.iter().find(|e| {
            matches!(
                e.event,
                Event::InventoryItemRemotePurchase(_) | Event::SnapshotRequested(_)
            )
        }) {
            return Err(HandlerError::Permanent(format!(
                "{} is a command for stores, not an event for Central",
                command.event.type_name()
            )));
        }
        let now = stockmesh_core::now();
        let mut tx = self.db.writer.begin().await?;
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        let mut fresh = Inbox::record_many(&mut tx, &ids, now.timestamp_millis()).await?;
        // Each event once (a batch may hold an entry and its re-delivered copy).
        let applied: Vec<&Envelope> = events.iter().filter(|e| fresh.remove(&e.id)).collect();

        let mut stores: Vec<&StoreId> = Vec::new();
        let mut newest: HashMap<(&StoreId, &ProductId), &ItemState> = HashMap::new();
        for envelope in &applied {
            if !stores.contains(&&envelope.store_id) {
                stores.push(&envelope.store_id);
            }
            if let Some(state) = item_state(&envelope.event) {
                let slot = newest
                    .entry((&envelope.store_id, &state.product_id))
                    .or_insert(state);
                if state.version > slot.version {
                    *slot = state;
                }
            }
        }
        for store in stores {
            repo::touch_store(&mut tx, store, now).await?;
        }
        let states: Vec<(&StoreId, &ItemState)> = newest
            .into_iter()
            .map(|((store, _), state)| (store, state))
            .collect();
        repo::apply_items(&mut tx, &states, now).await?;

        let mut resolved = Vec::new();
        for envelope in &applied {
            let (purchase, status, reason, item) = match &envelope.event {
                Event::RemotePurchaseConfirmed(reply) => (
                    reply.purchase_id,
                    PurchaseStatus::Confirmed,
                    None,
                    Some(&reply.item),
                ),
                Event::RemotePurchaseRejected(reply) => (
                    reply.purchase_id,
                    PurchaseStatus::Rejected,
                    Some(reply.reason),
                    reply.item.as_ref(),
                ),
                _ => continue,
            };
            if repo::resolve_purchase(&mut tx, purchase, status, reason, item, now).await? {
                tracing::debug!(
                    %purchase,
                    status = status.as_str(),
                    correlation_id = ?envelope.correlation_id,
                    "remote purchase answered by the store"
                );
                resolved.push(purchase);
            }
        }
        tx.commit().await?;
        for purchase in resolved {
            self.waiters.wake(purchase);
        }

        let applied_at = chrono::Utc::now();
        let applied_ids: HashSet<EventId> = applied.iter().map(|e| e.id).collect();
        for envelope in events {
            let kind = envelope.event.type_name();
            let outcome = if applied_ids.contains(&envelope.id) {
                let lag = (applied_at - envelope.occurred_at)
                    .num_microseconds()
                    .unwrap_or(0);
                metrics::histogram!("stockmesh_propagation_seconds", "node" => self.node.clone(), "type" => kind)
                    .record(lag.max(0) as f64 / 1e6);
                "applied"
            } else {
                "duplicate"
            };
            metrics::counter!("stockmesh_events_consumed_total", "node" => self.node.clone(), "type" => kind, "outcome" => outcome)
                .increment(1);
        }
        Ok(())
    }
}
