//! The store's operations. Every change is one write of the store's group commit
//! ([`StoreService::write`] → [`Database::write`]): the item row and its version bump, a movement
//! in the ledger, and the outbox row of the event that tells Central, behind one savepoint of a
//! transaction that may hold other requests' writes; a refused change undoes only itself. The
//! caller hears the outcome once that transaction is durable; then the relay is woken.

use futures_util::future::BoxFuture;
use serde::Serialize;
use sqlx::AnyConnection;
use std::sync::Arc;
use stockmesh_bus::outbox::Backlog;

use stockmesh_bus::{
    Broker, Connectivity, Database, Heartbeat, LinkState, Mark, Outbox, OutboxSignal, gauges,
    topology,
};
use stockmesh_core::{
    CorrelationId, Envelope, Event, Item, ItemState, Movement, MovementKind, ProductId, PurchaseId,
    PurchaseQuantity, Quantity, ReservationId, Stock, StoreId, TransferId, Version,
};
use stockmesh_core::{Page, Seek, Slice};

use crate::error::StoreError;
use crate::repository as repo;

/// The store's state as `GET /status` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// This store.
    pub store_id: StoreId,
    /// Whether the store talks to the broker.
    pub connectivity: LinkState,
    /// Events committed but not yet stamped published (publishing is confirmed lazily: a row
    /// published in the last ~50 ms may still count).
    pub outbox_pending: i64,
    /// Age in milliseconds of the oldest of them.
    pub outbox_oldest_age_ms: Option<i64>,
    /// Whether a resynchronisation Central asked for (replay or snapshot) is being sent.
    pub resyncing: bool,
}

/// What changed, for the ledger and the event.
pub(crate) struct Change {
    /// The kind of movement.
    pub kind: MovementKind,
    /// Units added (positive) or taken (negative).
    pub delta: i64,
    /// The remote purchase that caused it, if any.
    pub purchase: Option<PurchaseId>,
    /// The reservation concerned, if any.
    pub reservation: Option<ReservationId>,
    /// Why, when the caller says (an adjustment's reason); else the kind's own reason.
    pub reason: Option<String>,
    /// What it refers to, when the caller says; else the purchase or reservation id.
    pub reference: Option<String>,
    /// The transfer concerned, if any.
    pub transfer: Option<TransferId>,
}

impl Change {
    /// A change with no purchase or reservation attached.
    pub fn plain(kind: MovementKind, delta: i64) -> Self {
        Self {
            kind,
            delta,
            purchase: None,
            reservation: None,
            reason: None,
            reference: None,
            transfer: None,
        }
    }

    /// The kind's own reason, for movements whose caller gives none.
    fn default_reason(kind: MovementKind) -> &'static str {
        match kind {
            MovementKind::Created => "created",
            MovementKind::Set => "count",
            MovementKind::LocalSale | MovementKind::RemoteSale | MovementKind::ReservedSale => {
                "sale"
            }
            MovementKind::Reserve => "reservation",
            MovementKind::Release => "released",
            MovementKind::Expire => "expired",
            MovementKind::Adjustment => "correction",
            MovementKind::TransferOut | MovementKind::TransferIn => "transfer",
        }
    }
}

/// The actor of a movement made by the store's own clock (an expiry), not by a request.
pub const CLOCK_ACTOR: &str = "store-clock";

/// A store's inventory and the operations on it.
#[derive(Debug, Clone)]
pub struct StoreService {
    id: StoreId,
    db: Database,
    events_stream: String,
    outbox: OutboxSignal,
    connectivity: Connectivity,
    /// Set when the store runs with a broker: `POST /disconnected` withdraws it at once.
    heartbeat: Option<Heartbeat>,
    /// The broker, when the store runs with one (for readiness and gauges).
    broker: Option<Arc<dyn Broker>>,
}

impl StoreService {
    /// A service for store `id` over `db`; it wakes `outbox` after each commit.
    pub fn new(
        id: StoreId,
        db: Database,
        connectivity: Connectivity,
        outbox: OutboxSignal,
    ) -> Self {
        Self {
            events_stream: topology::events_stream(&id),
            id,
            db,
            outbox,
            connectivity,
            heartbeat: None,
            broker: None,
        }
    }

    /// Connects the service to its broker: link changes beat or withdraw the heartbeat at once,
    /// and readiness and gauges include the broker.
    pub fn with_broker(mut self, broker: Arc<dyn Broker>, heartbeat: Heartbeat) -> Self {
        self.broker = Some(broker);
        self.heartbeat = Some(heartbeat);
        self
    }

    pub(crate) fn count_mutation(&self, kind: MovementKind) {
        metrics::counter!("stockmesh_inventory_mutations_total", "node" => self.id.to_string(), "kind" => kind.as_str())
            .increment(1);
    }

    fn count_local_purchase(&self, outcome: &'static str) {
        metrics::counter!("stockmesh_purchases_total", "node" => self.id.to_string(), "scope" => "local", "outcome" => outcome)
            .increment(1);
    }

    /// The signal that wakes the outbox relay.
    pub fn outbox_signal(&self) -> &OutboxSignal {
        &self.outbox
    }

    /// This store's id.
    pub fn id(&self) -> &StoreId {
        &self.id
    }

    /// The store's database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The store's link switch.
    pub fn connectivity(&self) -> &Connectivity {
        &self.connectivity
    }

    pub(crate) fn item(&self, state: ItemState) -> Item {
        Item {
            store_id: self.id.clone(),
            product_id: state.product_id,
            quantity: state.quantity,
            states: Stock::new(state.quantity, state.reserved),
            version: state.version,
            updated_at: state.updated_at,
        }
    }

    /// Writes the ledger line for `state`, the item after `change`.
    pub(crate) async fn record_movement(
        &self,
        conn: &mut AnyConnection,
        state: &ItemState,
        change: Change,
        correlation: Option<&CorrelationId>,
    ) -> Result<(), StoreError> {
        let movement = Self::movement(state, change, correlation);
        repo::append_movement(conn, &state.product_id, &movement).await?;
        Ok(())
    }

    /// The ledger line of `change`, which left the item at `state`.
    fn movement(
        state: &ItemState,
        change: Change,
        correlation: Option<&CorrelationId>,
    ) -> Movement {
        let reference = change.reference.or_else(|| {
            change
                .purchase
                .map(|id| id.to_string())
                .or_else(|| change.reservation.map(|id| id.to_string()))
                .or_else(|| change.transfer.map(|id| id.to_string()))
        });
        Movement {
            reason: Some(
                change
                    .reason
                    .unwrap_or_else(|| Change::default_reason(change.kind).to_owned()),
            ),
            reference,
            actor: Some(
                correlation.map_or_else(|| CLOCK_ACTOR.to_owned(), |c| c.as_str().to_owned()),
            ),
            kind: change.kind,
            delta: change.delta,
            quantity: state.quantity,
            reserved: state.reserved,
            version: state.version,
            at: state.updated_at,
            correlation_id: correlation.cloned(),
            purchase_id: change.purchase,
            reservation_id: change.reservation,
            transfer_id: change.transfer,
        }
    }

    /// `event` as this store sends it.
    fn envelope(&self, event: Event, correlation: Option<CorrelationId>) -> Envelope {
        Envelope::new(self.id.clone(), event, correlation)
    }

    /// Appends `event` to the outbox, bound for Central.
    pub(crate) async fn emit(
        &self,
        conn: &mut AnyConnection,
        event: Event,
        correlation: Option<CorrelationId>,
    ) -> Result<(), StoreError> {
        let envelope = self.envelope(event, correlation);
        Outbox::append(conn, &self.events_stream, &envelope).await?;
        Ok(())
    }

    /// Records `decision` and appends its `reply` to the outbox, bound for Central, in one round
    /// trip; fails if the request was decided before.
    pub(crate) async fn record_decision(
        &self,
        conn: &mut AnyConnection,
        decision: repo::DecisionRow<'_>,
        reply: Event,
        correlation: Option<CorrelationId>,
    ) -> Result<(), StoreError> {
        let envelope = self.envelope(reply, correlation);
        repo::record_decision_and_reply(conn, decision, &self.events_stream, &envelope).await?;
        Ok(())
    }

    /// Writes the ledger line and the item event of a local change, in one round trip.
    async fn record(
        &self,
        conn: &mut AnyConnection,
        state: &ItemState,
        change: Change,
        correlation: Option<CorrelationId>,
    ) -> Result<(), StoreError> {
        let event = match change.kind {
            MovementKind::Created => Event::InventoryItemCreated(state.clone()),
            _ => Event::InventoryItemUpdated(state.clone()),
        };
        let movement = Self::movement(state, change, correlation.as_ref());
        let envelope = self.envelope(event, correlation);
        repo::append_movement_and_event(
            conn,
            &state.product_id,
            &movement,
            &self.events_stream,
            &envelope,
        )
        .await?;
        Ok(())
    }

    /// Runs `work` with this service on the writer connection, in the store's next group commit
    /// ([`Database::write`]); returns once the transaction holding it is durable. An `Err` from
    /// `work` undoes its own changes only.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
                StoreService,
                &'c mut AnyConnection,
            ) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        self.db.write(move |conn| work(store, conn)).await
    }

    /// As [`write`](Self::write), for a write whose first statement carries the group's mark
    /// ([`Database::write_leading`]): `work` sends [`Mark::first`]'s text first.
    pub(crate) async fn write_leading<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
                StoreService,
                &'c mut AnyConnection,
                &'c mut Mark,
            ) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        self.db
            .write_leading(move |conn, mark| work(store, conn, mark))
            .await
    }

    /// Creates an item with quantity 0.
    pub async fn create_item(
        &self,
        product: ProductId,
        correlation: Option<CorrelationId>,
    ) -> Result<Item, StoreError> {
        let state = self
            .write(move |store, conn| {
                Box::pin(async move {
                    let state = repo::insert_item(conn, &product, stockmesh_core::now())
                        .await?
                        .ok_or_else(|| StoreError::ProductAlreadyExists(product.clone()))?;
                    let change = Change::plain(MovementKind::Created, 0);
                    store.record(conn, &state, change, correlation).await?;
                    Ok(state)
                })
            })
            .await?;
        self.outbox.notify();
        self.count_mutation(MovementKind::Created);
        Ok(self.item(state))
    }

    /// Sets an item's units on hand (a delivery or a stock count). Reserved units stay reserved;
    /// a count below them is refused, since those units are promised to their holders.
    pub async fn set_quantity(
        &self,
        product: ProductId,
        quantity: Quantity,
        correlation: Option<CorrelationId>,
    ) -> Result<Item, StoreError> {
        self.set_quantity_if(product, quantity, None, correlation)
            .await
    }

    /// [`set_quantity`](Self::set_quantity), only if the item is at version `expected` (when
    /// given): a compare-and-set; a stale version changes nothing.
    pub async fn set_quantity_if(
        &self,
        product: ProductId,
        quantity: Quantity,
        expected: Option<Version>,
        correlation: Option<CorrelationId>,
    ) -> Result<Item, StoreError> {
        let state = self
            .write(move |store, conn| {
                Box::pin(async move {
                    store
                        .count_in(conn, product, quantity, expected, correlation)
                        .await
                })
            })
            .await?;
        self.outbox.notify();
        self.count_mutation(MovementKind::Set);
        Ok(self.item(state))
    }

    /// The write of [`set_quantity_if`](Self::set_quantity_if), inside the group's transaction.
    async fn count_in(
        &self,
        conn: &mut AnyConnection,
        product: ProductId,
        quantity: Quantity,
        expected: Option<Version>,
        correlation: Option<CorrelationId>,
    ) -> Result<ItemState, StoreError> {
        let before = repo::find_item(&mut *conn, &product)
            .await?
            .ok_or_else(|| StoreError::ProductNotFound(product.clone()))?;
        if let Some(expected) = expected
            && expected != before.version
        {
            return Err(StoreError::Stale(format!(
                "product {product} is at version {}, not {expected}",
                before.version
            )));
        }
        if quantity < before.reserved {
            return Err(StoreError::BelowReserved {
                product,
                reserved: before.reserved,
                requested: quantity,
            });
        }
        let state = repo::set_quantity(conn, &product, quantity, stockmesh_core::now())
            .await?
            .ok_or(StoreError::Invariant(
                "a count checked against the reserved units was refused",
            ))?;
        let change = Change::plain(
            MovementKind::Set,
            i64::from(state.quantity) - i64::from(before.quantity),
        );
        self.record(conn, &state, change, correlation).await?;
        Ok(state)
    }

    /// Sells `amount` units at the store's till, if they are in stock.
    pub async fn purchase(
        &self,
        product: ProductId,
        amount: PurchaseQuantity,
        correlation: Option<CorrelationId>,
    ) -> Result<Item, StoreError> {
        let sold = self
            .write_leading(move |store, conn, mark| {
                Box::pin(async move {
                    store
                        .sell_in(conn, mark, product, amount, correlation)
                        .await
                })
            })
            .await;
        let state = match sold {
            Ok(state) => state,
            Err(error) => {
                match &error {
                    StoreError::ProductNotFound(_) => self.count_local_purchase("not_found"),
                    StoreError::InsufficientStock { .. } => {
                        self.count_local_purchase("insufficient");
                    }
                    _ => {}
                }
                return Err(error);
            }
        };
        self.outbox.notify();
        self.count_mutation(MovementKind::LocalSale);
        self.count_local_purchase("confirmed");
        Ok(self.item(state))
    }

    /// The write of [`purchase`](Self::purchase), inside the group's transaction; the guarded
    /// take leads it.
    async fn sell_in(
        &self,
        conn: &mut AnyConnection,
        mark: &mut Mark,
        product: ProductId,
        amount: PurchaseQuantity,
        correlation: Option<CorrelationId>,
    ) -> Result<ItemState, StoreError> {
        let take = mark.first(&repo::TAKE_STOCK);
        let Some(state) =
            repo::take_stock(conn, take, &product, amount, stockmesh_core::now()).await?
        else {
            return Err(match repo::find_item(&mut *conn, &product).await? {
                None => StoreError::ProductNotFound(product),
                Some(item) => StoreError::InsufficientStock {
                    product,
                    available: item.quantity,
                    requested: amount,
                },
            });
        };
        let change = Change::plain(MovementKind::LocalSale, -i64::from(amount));
        self.record(conn, &state, change, correlation).await?;
        Ok(state)
    }

    /// One item.
    pub async fn get_item(&self, product: &ProductId) -> Result<Item, StoreError> {
        repo::find_item(&self.db.reader, product)
            .await?
            .map(|state| self.item(state))
            .ok_or_else(|| StoreError::ProductNotFound(product.clone()))
    }

    /// One page of items (numbered, or after a product), the total, and whether more follow.
    pub async fn list_items(&self, seek: &Seek<ProductId>) -> Result<Slice<Item>, StoreError> {
        let slice = repo::list_items(&self.db.reader, seek).await?;
        Ok(Slice {
            items: slice.items.into_iter().map(|s| self.item(s)).collect(),
            total: slice.total,
            more: slice.more,
        })
    }

    /// One page of an item's ledger, newest first, and the total.
    pub async fn history(
        &self,
        product: &ProductId,
        page: Page,
    ) -> Result<(Vec<Movement>, u64), StoreError> {
        if repo::find_item(&self.db.reader, product).await?.is_none() {
            return Err(StoreError::ProductNotFound(product.clone()));
        }
        Ok(repo::list_movements(&self.db.reader, product, page).await?)
    }

    /// Sets the link state (`POST /connected`, `POST /disconnected`). Disconnecting withdraws
    /// the heartbeat before returning, so Central refuses remote purchases at once; connecting
    /// beats at once. The relay and the command consumer follow the switch by themselves.
    pub async fn set_link(&self, state: LinkState) {
        if self.connectivity.set(state) != state {
            tracing::info!(store = %self.id, ?state, "link state changed");
        }
        let Some(heartbeat) = &self.heartbeat else {
            return;
        };
        let result = match state {
            LinkState::Connected => heartbeat.beat().await,
            LinkState::Disconnected => heartbeat.withdraw().await,
        };
        // The broker may be down: the heartbeat task retries, and a stale beat expires anyway.
        if let Err(error) = result {
            tracing::warn!(%error, "cannot update the heartbeat now");
        }
    }

    /// Refreshes the gauges that `GET /metrics` shows: link, outbox, the commands stream.
    pub async fn refresh_gauges(&self) -> Result<(), StoreError> {
        let node = self.id.as_str();
        let connected = f64::from(u8::from(self.connectivity.is_connected()));
        metrics::gauge!("stockmesh_link_connected", "node" => node.to_owned()).set(connected);
        gauges::report_outbox(node, &self.db).await?;
        if let Some(broker) = &self.broker {
            let stream = topology::commands_stream(&self.id);
            gauges::report_group(node, broker, &stream, topology::STORE_GROUP).await;
        }
        Ok(())
    }

    /// Whether the store can serve: its database answers, and its broker if it has one.
    /// A store without its broker still sells, but is not *ready* as part of the system.
    pub async fn readiness(&self) -> Result<(), stockmesh_bus::db::NotReady> {
        self.db.readiness(self.broker.as_ref()).await
    }

    /// The store's state.
    pub async fn status(&self) -> Result<StoreStatus, StoreError> {
        let Backlog {
            pending,
            oldest_created_at,
        } = Outbox::backlog(&self.db.reader).await?;
        let now = stockmesh_core::now().timestamp_millis();
        Ok(StoreStatus {
            store_id: self.id.clone(),
            connectivity: self.connectivity.state(),
            outbox_pending: pending,
            outbox_oldest_age_ms: oldest_created_at.map(|at| (now - at).max(0)),
            resyncing: crate::repair::repository::resync_in_progress(
                &mut *self.db.reader.acquire().await?,
            )
            .await?,
        })
    }
}
