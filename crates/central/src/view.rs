//! Central's consumer handler of every store's events stream. Inside the consumer's transaction
//! (inbox already recorded) it applies item states to the view by version, in a few multi-row
//! statements, and hands store replies to the flows they resolve; after the commit it wakes the
//! requests those replies decided and publishes what the transaction applied to the change feed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::AnyConnection;
use stockmesh_bus::{Handler, HandlerError};
use stockmesh_core::{Envelope, Event, ItemState, ProductId, RequestId, StoreId, Timestamp};

use crate::decided::Coordinator;
use crate::feed::{Change, Feed};
use crate::purchase;
use crate::repository as repo;
use crate::reservation;
use crate::touches::Touches;
use crate::transfer;

/// Applies the stores' events to the view and resolves the requests they answer.
#[derive(Debug, Clone)]
pub(crate) struct ViewUpdater {
    coordinator: Coordinator,
    feed: Feed,
    /// This replica's consumer name when replicas may share the database (PostgreSQL): the
    /// changes it applies are told to the others' feeds ([`crate::feed::shared`]).
    shared_as: Option<String>,
    /// The stores whose `last_event_at` was written lately (skipped until it is due again).
    touches: Arc<Touches>,
}

impl ViewUpdater {
    /// An updater that wakes requests through `coordinator` and publishes to `feed`; on a
    /// shared database, it tells the other replicas as `shared_as`.
    pub fn new(coordinator: Coordinator, feed: Feed, shared_as: Option<String>) -> Self {
        Self {
            coordinator,
            feed,
            shared_as,
            touches: Arc::default(),
        }
    }
}

/// What one batch's transaction did, for after its commit.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The requests decided by this batch.
    decided: Vec<RequestId>,
    /// What the feed announces: items applied, requests resolved.
    changes: Vec<Change>,
    /// The stores whose `last_event_at` this batch wrote.
    touched: Vec<StoreId>,
    /// When the batch began, which is when its touches count from.
    begun: Instant,
}

/// The item state an event carries, if any.
fn item_state(event: &Event) -> Option<&ItemState> {
    match event {
        Event::InventoryItemCreated(state) | Event::InventoryItemUpdated(state) => Some(state),
        Event::RemotePurchaseConfirmed(reply) => Some(&reply.item),
        Event::RemotePurchaseRejected(reply) => reply.item.as_ref(),
        Event::ReservationHeld(reply) => Some(&reply.item),
        Event::ReservationRejected(reply) => reply.item.as_ref(),
        Event::ReservationEnded(ended) => Some(&ended.item),
        Event::TransferShipped(reply) => Some(&reply.item),
        Event::TransferRejected(reply) => reply.item.as_ref(),
        Event::TransferReceived(reply) => Some(&reply.item),
        Event::ReservationActionRejected(_)
        | Event::TransferArrived(_)
        | Event::TransferShipRequested(_)
        | Event::TransferReceiveRequested(_)
        | Event::InventoryItemRemotePurchase(_)
        | Event::SnapshotRequested(_)
        | Event::ReservationRequested(_)
        | Event::ReservationActionRequested(_) => None,
    }
}

/// Applies the newest state each event carries for each (store, product), touching each store
/// that is due ([`Touches`]); returns the changes and the stores touched.
async fn apply_states(
    tx: &mut AnyConnection,
    events: &[&Envelope],
    now: Timestamp,
    touches: &Touches,
    begun: Instant,
) -> sqlx::Result<(Vec<Change>, Vec<StoreId>)> {
    let mut stores: Vec<&StoreId> = Vec::new();
    let mut newest: HashMap<(&StoreId, &ProductId), &ItemState> = HashMap::new();
    for envelope in events {
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
    let mut touched = Vec::new();
    for store in stores {
        if touches.due(store, begun) {
            repo::touch_store(tx, store, now).await?;
            touched.push(store.clone());
        }
    }
    let mut states: Vec<(&StoreId, &ItemState)> = Vec::with_capacity(newest.len());
    for ((store, product), state) in newest {
        let incoming = u64::try_from(i64::from(state.version)).unwrap_or(u64::MAX);
        // Only a version past the step can be implausible: look the current one up for those.
        if !crate::trust::plausible_version(None, incoming, None) {
            let current = repo::find_item(&mut *tx, store, product)
                .await?
                .and_then(|item| u64::try_from(i64::from(item.version)).ok());
            if !crate::trust::plausible_version(current, incoming, None) {
                crate::trust::untrusted(
                    "version_beyond",
                    store,
                    &format!("{product} version {incoming}, Central holds {current:?}"),
                );
                continue;
            }
        }
        states.push((store, state));
    }
    let applied = repo::apply_items(tx, &states, now).await?;
    // Only what the view took is announced: an older or untrusted version changed nothing.
    let changes = states
        .into_iter()
        .filter(|(store, state)| {
            applied
                .iter()
                .any(|(s, p)| s == store.as_str() && p == state.product_id.as_str())
        })
        .map(|(store, state)| Change::item(store, state))
        .collect();
    Ok((changes, touched))
}

#[async_trait]
impl Handler for ViewUpdater {
    /// The requests decided by this batch and the changes it applied.
    type Committed = Applied;

    async fn apply(
        &self,
        tx: &mut AnyConnection,
        fresh: &[&Envelope],
    ) -> Result<Applied, HandlerError> {
        if let Some(command) = fresh.iter().find(|e| {
            matches!(
                e.event,
                Event::InventoryItemRemotePurchase(_)
                    | Event::SnapshotRequested(_)
                    | Event::ReservationRequested(_)
                    | Event::ReservationActionRequested(_)
                    | Event::TransferShipRequested(_)
                    | Event::TransferReceiveRequested(_)
            )
        }) {
            return Err(HandlerError::Permanent(format!(
                "{} is a command for stores, not an event for Central",
                command.event.type_name()
            )));
        }
        let now = stockmesh_core::now();
        let begun = Instant::now();
        let (mut changes, touched) = apply_states(tx, fresh, now, &self.touches, begun).await?;
        let mut decided = purchase::resolve_replies(tx, fresh, now).await?;
        decided.extend(reservation::resolve_replies(tx, fresh, now).await?);
        decided.extend(transfer::resolve_replies(tx, fresh, now).await?);
        changes.extend(crate::feed::resolved::changes(fresh, &decided));
        self.coordinator.announce(tx, &decided).await?;
        if let Some(me) = &self.shared_as {
            crate::feed::shared::tell(tx, me, &changes).await?;
        }
        Ok(Applied {
            decided,
            changes,
            touched,
            begun,
        })
    }

    async fn after_commit(&self, applied: Applied) {
        self.touches.record(applied.touched, applied.begun);
        self.coordinator.wake(applied.decided);
        self.feed.publish(applied.changes);
    }
}

#[cfg(test)]
mod tests {
    //! Central's batched apply: duplicates within a batch count once, an older version never
    //! regresses the view, a reply resolves its purchase once.

    use std::time::Duration;

    use stockmesh_bus::consumer::apply_batch;
    use stockmesh_bus::{Database, DbConfig, OutboxSignal};
    use stockmesh_core::{
        Envelope, Event, ItemState, ProductId, Quantity, RemotePurchaseConfirmed, StoreId, Version,
    };

    use super::*;

    fn state(product: &str, quantity: i64, version: u64) -> ItemState {
        let mut v = Version::FIRST;
        for _ in 1..version {
            v = v.next();
        }
        ItemState {
            product_id: ProductId::parse(product).expect("valid"),
            quantity: Quantity::new(quantity).expect("valid"),
            reserved: Quantity::ZERO,
            version: v,
            updated_at: stockmesh_core::now(),
        }
    }

    #[tokio::test]
    async fn a_batch_applies_the_newest_state_once_whatever_its_order_and_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(
            &DbConfig::new(dir.path().join("c.db").display().to_string()),
            &crate::MIGRATIONS,
        )
        .await
        .expect("db");
        let view = ViewUpdater::new(
            Coordinator::new(db.clone(), OutboxSignal::default(), Duration::from_secs(1)),
            Feed::default(),
            None,
        );
        let handle =
            async |events: &[Envelope]| apply_batch(&db, &view, "central-test", events).await;
        let store = StoreId::parse("s1").expect("valid");
        let update =
            |s: ItemState| Envelope::new(store.clone(), Event::InventoryItemUpdated(s), None);

        let v3 = update(state("p", 7, 3));
        let batch = vec![
            update(state("p", 10, 2)),
            v3.clone(),
            v3.clone(),
            update(state("p", 99, 1)),
            update(state("q", 4, 1)),
        ];
        handle(&batch).await.expect("applied");
        let p = repo::find_item(&db.reader, &store, &ProductId::parse("p").expect("valid"))
            .await
            .expect("query")
            .expect("item");
        assert_eq!((p.quantity.get(), p.version.get()), (7, 3));

        // A later batch with an older version and a repeat of an applied event changes nothing.
        handle(&[update(state("p", 1, 2)), v3])
            .await
            .expect("applied");
        let p = repo::find_item(&db.reader, &store, &ProductId::parse("p").expect("valid"))
            .await
            .expect("query")
            .expect("item");
        assert_eq!((p.quantity.get(), p.version.get()), (7, 3));
        let slice = repo::list_items(
            &db.reader,
            Some(&store),
            None,
            &stockmesh_core::Seek::Page(stockmesh_core::Page {
                number: 0,
                size: 10,
            }),
        )
        .await
        .expect("list");
        assert_eq!((slice.items.len(), slice.total), (2, 2));

        // A reply for a purchase Central does not know still updates the item, by version.
        let reply = Envelope::new(
            store.clone(),
            Event::RemotePurchaseConfirmed(RemotePurchaseConfirmed {
                purchase_id: stockmesh_core::PurchaseId::new(),
                quantity: stockmesh_core::PurchaseQuantity::new(2).expect("valid"),
                item: state("p", 5, 4),
            }),
            None,
        );
        handle(&[reply]).await.expect("applied");
        let p = repo::find_item(&db.reader, &store, &ProductId::parse("p").expect("valid"))
            .await
            .expect("query")
            .expect("item");
        assert_eq!((p.quantity.get(), p.version.get()), (5, 4));
    }

    async fn central_db(dir: &tempfile::TempDir) -> Database {
        Database::open(
            &DbConfig::new(dir.path().join("c.db").display().to_string()),
            &crate::MIGRATIONS,
        )
        .await
        .expect("db")
    }

    fn updater(db: &Database, touch_every: Duration) -> ViewUpdater {
        ViewUpdater {
            touches: Arc::new(Touches::every(touch_every)),
            ..ViewUpdater::new(
                Coordinator::new(db.clone(), OutboxSignal::default(), Duration::from_secs(1)),
                Feed::default(),
                None,
            )
        }
    }

    /// An update of product `p` at `store`, at `version`.
    fn update_of(store: &StoreId, version: u64) -> Envelope {
        Envelope::new(
            store.clone(),
            Event::InventoryItemUpdated(state("p", 1, version)),
            None,
        )
    }

    async fn last_event_at(db: &Database, store: &StoreId) -> Option<stockmesh_core::Timestamp> {
        repo::list_stores(&db.reader)
            .await
            .expect("stores")
            .into_iter()
            .find(|row| &row.store_id == store)
            .and_then(|row| row.last_event_at)
    }

    #[tokio::test]
    async fn a_store_last_event_is_written_at_most_once_per_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = central_db(&dir).await;
        let view = updater(&db, Duration::from_secs(2));
        let store = StoreId::parse("s1").expect("valid");
        let update = |version| update_of(&store, version);
        apply_batch(&db, &view, "central-test", &[update(1)])
            .await
            .expect("applied");
        let first = last_event_at(&db, &store).await.expect("touched");
        tokio::time::sleep(Duration::from_millis(20)).await;
        apply_batch(&db, &view, "central-test", &[update(2)])
            .await
            .expect("applied");
        assert_eq!(last_event_at(&db, &store).await, Some(first), "not due yet");
        tokio::time::sleep(Duration::from_secs(2)).await;
        apply_batch(&db, &view, "central-test", &[update(3)])
            .await
            .expect("applied");
        let later = last_event_at(&db, &store).await.expect("touched");
        assert!(
            later > first,
            "due again after the interval: {later} vs {first}"
        );
    }

    #[tokio::test]
    async fn a_touch_whose_transaction_rolled_back_does_not_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = central_db(&dir).await;
        let view = updater(&db, Duration::from_secs(3600));
        let store = StoreId::parse("s1").expect("valid");
        let update = |version| update_of(&store, version);
        let first = update(1);
        let mut tx = db.writer.begin().await.expect("begin");
        view.apply(&mut tx, &[&first]).await.expect("applied");
        tx.rollback().await.expect("rollback");
        assert!(!repo::store_exists(&db.reader, &store).await.expect("query"));

        apply_batch(&db, &view, "central-test", &[update(2)])
            .await
            .expect("applied");
        assert!(
            repo::store_exists(&db.reader, &store).await.expect("query"),
            "the store is registered by the batch that committed"
        );
        assert!(last_event_at(&db, &store).await.is_some());
    }
}
