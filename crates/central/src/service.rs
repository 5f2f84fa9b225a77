//! Central's operations: queries on the global view, and the entry of remote purchases (checked
//! here against the view and liveness, then handed to [`crate::purchase`]).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use stockmesh_bus::{Broker, Database, OutboxSignal, gauges, topology};
use stockmesh_core::{
    CorrelationId, Item, Page, ProductId, PurchaseId, PurchaseQuantity, ReservationAction,
    ReservationId, Seek, Slice, StoreId, Timestamp, TransferId, Ttl, ViewKey,
};
use stockmesh_http::IdempotencyKey;

use crate::decided::Coordinator;
use crate::error::CentralError;
use crate::liveness::{Liveness, StoreLiveness};
use crate::purchase::{self, Checked, Purchase, PurchaseAnswer, PurchaseStatus};
use crate::repository as repo;
use crate::reservation::{self, Action, Reservation, ReservationAnswer, ReservationStatus};
use crate::transfer::{self, Transfer, TransferAnswer, TransferStatus};

/// Timing of remote purchases.
#[derive(Debug, Clone, Copy)]
pub struct PurchaseTiming {
    /// How long a purchase request waits for the store before answering 202.
    pub wait: Duration,
    /// How long the store may take to receive the command before it must refuse it.
    pub deadline: Duration,
}

impl Default for PurchaseTiming {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
        }
    }
}

/// One store's figure for a product, as `GET /products/{id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreFigure {
    /// The store.
    pub store_id: StoreId,
    /// Units a sale can take there (= `available`).
    pub quantity: u32,
    /// On hand, reserved and available.
    #[serde(flatten)]
    pub states: stockmesh_core::Stock,
    /// The item's version at the store.
    pub version: u64,
    /// When the store changed it.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Milliseconds since Central received that figure.
    pub age_ms: i64,
    /// Whether the store takes remote purchases now.
    pub online: bool,
}

/// A product across the chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductAvailability {
    /// The product.
    pub product_id: ProductId,
    /// Units across every store.
    pub total: u64,
    /// Units across the stores that are online now.
    pub online_total: u64,
    /// Units shipped by one store and not yet on another's shelf (transfers in transit).
    pub in_transit: u64,
    /// Per store.
    pub stores: Vec<StoreFigure>,
}

/// A store, as `GET /stores` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreSummary {
    /// The store.
    pub store_id: StoreId,
    /// Liveness.
    #[serde(flatten)]
    pub liveness: StoreLiveness,
    /// Items Central holds for it.
    pub items: i64,
    /// When its last event was applied (to within a second while events keep coming).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<Timestamp>,
}

/// How far behind the broker's streams are for one store, as `GET /stores/backlog` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreBacklog {
    /// The store.
    pub store_id: StoreId,
    /// Events of the store not yet delivered to Central's consumers (`None`: the broker cannot
    /// tell or does not answer).
    pub consumer_lag: Option<u64>,
    /// Events delivered to Central but not yet acknowledged.
    pub consumer_pending: Option<u64>,
    /// Commands to the store (e.g. remote purchases) it has not yet taken.
    pub command_backlog: Option<u64>,
}

/// Central's view and purchases.
#[derive(Debug, Clone)]
pub struct CentralService {
    /// This replica's name: the `node` label of its metrics.
    node: String,
    broker: Arc<dyn Broker>,
    db: Database,
    liveness: Liveness,
    /// Records store-decided requests and waits for the stores' decisions.
    coordinator: Coordinator,
    timing: PurchaseTiming,
    /// Provisions stores (`POST /stores`); absent in a service built without a node.
    provisioner: Option<crate::discovery::Discovery>,
    /// The change feed of `GET /events`.
    feed: crate::feed::Feed,
}

impl CentralService {
    /// A service named `node` over `db` and `broker`; requests it records wake `outbox`.
    pub(crate) fn new(
        node: impl Into<String>,
        broker: Arc<dyn Broker>,
        db: Database,
        liveness: Liveness,
        outbox: OutboxSignal,
        timing: PurchaseTiming,
    ) -> Self {
        Self {
            node: node.into(),
            coordinator: Coordinator::new(db.clone(), outbox, timing.wait),
            broker,
            db,
            liveness,
            timing,
            provisioner: None,
            feed: crate::feed::Feed::default(),
        }
    }

    /// The same service, provisioning stores through `discovery`.
    pub(crate) fn with_provisioner(mut self, discovery: crate::discovery::Discovery) -> Self {
        self.provisioner = Some(discovery);
        self
    }

    /// Provisions `store`: Central records it and reads its events stream from now on (at
    /// once, not at the next look). Returns whether it was new.
    pub async fn provision(&self, store: &StoreId) -> Result<bool, CentralError> {
        let Some(provisioner) = &self.provisioner else {
            return Err(CentralError::Invariant("no provisioner in this service"));
        };
        let new = provisioner.register(store).await.map_err(|error| {
            tracing::error!(error = %format!("{error:#}"), %store, "cannot provision store");
            CentralError::Invariant("provisioning failed")
        })?;
        tracing::info!(%store, new, "store provisioned");
        Ok(new)
    }

    /// The change feed of `GET /events`.
    pub fn feed(&self) -> &crate::feed::Feed {
        &self.feed
    }

    /// The coordinator of store-decided requests (the events handler wakes through it).
    pub(crate) fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// Central's database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// This replica's name (its metrics' `node` label).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Refreshes the gauges that `GET /metrics` shows: outbox, and per store its heartbeat and
    /// Central's consumer group on its events stream.
    pub async fn refresh_gauges(&self) -> Result<(), CentralError> {
        gauges::report_outbox(&self.node, &self.db).await?;
        for store in repo::list_stores(&self.db.reader).await? {
            let liveness = self.liveness.of(&store.store_id).await;
            let labels = [
                ("node", self.node.clone()),
                ("store", store.store_id.to_string()),
            ];
            let age = liveness
                .heartbeat_age_ms
                .map_or(f64::INFINITY, |ms| ms as f64 / 1000.0);
            metrics::gauge!("stockmesh_store_heartbeat_age_seconds", &labels).set(age);
            metrics::gauge!("stockmesh_store_online", &labels)
                .set(f64::from(u8::from(liveness.online)));
            let stream = topology::events_stream(&store.store_id);
            gauges::report_group(&self.node, &self.broker, &stream, topology::CENTRAL_GROUP).await;
        }
        Ok(())
    }

    /// Whether Central can serve: its database and its broker answer.
    pub async fn readiness(&self) -> Result<(), stockmesh_bus::db::NotReady> {
        self.db.readiness(Some(&self.broker)).await
    }

    async fn known_store(&self, store: &StoreId) -> Result<(), CentralError> {
        if repo::store_exists(&self.db.reader, store).await? {
            Ok(())
        } else {
            Err(CentralError::StoreNotFound(store.clone()))
        }
    }

    /// The item the view holds for a request that `store` must decide, after Central's own
    /// checks in this order: the store is known (404), online (503), and holds `product` (404).
    /// The view and the heartbeat are read at once, and an item found means its store is known:
    /// one read of the database where there were two, none after the other.
    async fn item_at_online_store(
        &self,
        store: &StoreId,
        product: &ProductId,
    ) -> Result<Item, CentralError> {
        let (item, liveness) = tokio::join!(
            repo::find_item(&self.db.reader, store, product),
            self.liveness.of(store)
        );
        let item = item?;
        if item.is_none() {
            self.known_store(store).await?;
        }
        if !liveness.online {
            return Err(offline(store));
        }
        item.ok_or_else(|| CentralError::ProductNotFound {
            store: store.clone(),
            product: product.clone(),
        })
    }

    /// One item of the view.
    pub async fn item(&self, store: &StoreId, product: &ProductId) -> Result<Item, CentralError> {
        self.known_store(store).await?;
        repo::find_item(&self.db.reader, store, product)
            .await?
            .ok_or_else(|| CentralError::ProductNotFound {
                store: store.clone(),
                product: product.clone(),
            })
    }

    /// One page of the view (numbered, or after a key), the total, and whether more follow.
    pub async fn items(
        &self,
        store: Option<&StoreId>,
        product: Option<&ProductId>,
        seek: &Seek<ViewKey>,
    ) -> Result<Slice<Item>, CentralError> {
        Ok(repo::list_items(&self.db.reader, store, product, seek).await?)
    }

    /// A product across every store.
    pub async fn product(&self, product: &ProductId) -> Result<ProductAvailability, CentralError> {
        let figures = repo::product_across_stores(&self.db.reader, product).await?;
        if figures.is_empty() {
            return Err(CentralError::ProductUnknown(product.clone()));
        }
        let now = stockmesh_core::now();
        let mut stores = Vec::with_capacity(figures.len());
        for (item, received_at) in figures {
            let online = self.liveness.of(&item.store_id).await.online;
            stores.push(StoreFigure {
                store_id: item.store_id,
                quantity: item.quantity.get(),
                states: item.states,
                version: item.version.get(),
                updated_at: item.updated_at,
                age_ms: (now - received_at).num_milliseconds().max(0),
                online,
            });
        }
        let total = stores.iter().map(|s| u64::from(s.quantity)).sum();
        let online_total = stores
            .iter()
            .filter(|s| s.online)
            .map(|s| u64::from(s.quantity))
            .sum();
        Ok(ProductAvailability {
            in_transit: transfer::in_transit(&self.db.reader, product).await?,
            product_id: product.clone(),
            total,
            online_total,
            stores,
        })
    }

    /// Every known store with its liveness.
    pub async fn stores(&self) -> Result<Vec<StoreSummary>, CentralError> {
        let mut out = Vec::new();
        for row in repo::list_stores(&self.db.reader).await? {
            out.push(StoreSummary {
                liveness: self.liveness.of(&row.store_id).await,
                store_id: row.store_id,
                items: row.items,
                last_event_at: row.last_event_at,
            });
        }
        Ok(out)
    }

    /// Every store's backlog in the broker: Central's consumer lag on its events, and the
    /// commands it has not taken yet.
    pub async fn backlogs(&self) -> Result<Vec<StoreBacklog>, CentralError> {
        let mut out = Vec::new();
        for row in repo::list_stores(&self.db.reader).await? {
            let events = self
                .broker
                .group_info(
                    &topology::events_stream(&row.store_id),
                    topology::CENTRAL_GROUP,
                )
                .await
                .ok();
            let commands = self
                .broker
                .group_info(
                    &topology::commands_stream(&row.store_id),
                    topology::STORE_GROUP,
                )
                .await
                .ok();
            out.push(StoreBacklog {
                store_id: row.store_id,
                consumer_lag: events.as_ref().and_then(|i| i.lag),
                consumer_pending: events.map(|i| i.pending),
                command_backlog: commands.and_then(|i| i.lag.map(|lag| lag + i.pending)),
            });
        }
        Ok(out)
    }

    /// One purchase.
    pub async fn purchase_status(&self, purchase: PurchaseId) -> Result<Purchase, CentralError> {
        self.coordinator
            .find(purchase.into())
            .await?
            .ok_or(CentralError::PurchaseNotFound(purchase))
    }

    /// A remote purchase of `quantity` units of `product` from `store`, counted and timed.
    pub async fn purchase(
        &self,
        store: StoreId,
        product: ProductId,
        quantity: PurchaseQuantity,
        key: Option<IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<PurchaseAnswer, CentralError> {
        let started = std::time::Instant::now();
        let answer = self
            .purchase_untimed(store, product, quantity, key.as_ref(), correlation)
            .await;
        let outcome = match &answer {
            Ok(PurchaseAnswer::Confirmed(_)) => "confirmed",
            Ok(PurchaseAnswer::Pending(_)) => "pending",
            Err(CentralError::InsufficientStock { .. }) => "insufficient",
            Err(CentralError::StoreUnavailable { .. }) => "unavailable",
            Err(CentralError::PurchaseExpired(_)) => "expired",
            Err(CentralError::StoreNotFound(_) | CentralError::ProductNotFound { .. }) => {
                "not_found"
            }
            Err(_) => "error",
        };
        metrics::counter!("stockmesh_purchases_total", "node" => self.node.clone(), "scope" => "remote", "outcome" => outcome)
            .increment(1);
        metrics::histogram!("stockmesh_remote_purchase_seconds", "node" => self.node.clone())
            .record(started.elapsed().as_secs_f64());
        answer
    }

    async fn purchase_untimed(
        &self,
        store: StoreId,
        product: ProductId,
        quantity: PurchaseQuantity,
        key: Option<&IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<PurchaseAnswer, CentralError> {
        if let Some(key) = key {
            let fingerprint = Purchase::fingerprint_of(&store, &product, quantity);
            if let Some(first) = self.coordinator.replay(key, &fingerprint).await? {
                return purchase::outcome(first);
            }
        }
        let checked = self
            .check_purchase(store, product, quantity, correlation)
            .await?;
        purchase::submit(&self.coordinator, checked, key).await
    }

    /// Central's own checks before a purchase reaches the store: the store is known and
    /// online, and the view holds the item.
    async fn check_purchase(
        &self,
        store: StoreId,
        product: ProductId,
        quantity: PurchaseQuantity,
        correlation: CorrelationId,
    ) -> Result<Checked, CentralError> {
        let item = self.item_at_online_store(&store, &product).await?;
        let now = stockmesh_core::now();
        let purchase = Purchase {
            purchase_id: PurchaseId::new(),
            store_id: store,
            product_id: product,
            quantity,
            status: PurchaseStatus::Pending,
            reason: None,
            item: None,
            correlation_id: Some(correlation),
            created_at: now,
            deadline: now + self.timing.deadline,
            resolved_at: None,
        };
        Ok(Checked { purchase, item })
    }
}

/// Reservations (issue 16): Central's checks, then the store decides through the coordinator.
impl CentralService {
    /// One reservation.
    pub async fn reservation(&self, id: ReservationId) -> Result<Reservation, CentralError> {
        reservation::find(&self.db.reader, id)
            .await?
            .ok_or(CentralError::ReservationNotFound(id))
    }

    /// Holds `quantity` units of `product` at `store` for `ttl`, as the store decides; counted
    /// and timed.
    pub async fn reserve(
        &self,
        store: StoreId,
        product: ProductId,
        quantity: PurchaseQuantity,
        ttl: Ttl,
        key: Option<IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<ReservationAnswer, CentralError> {
        let started = std::time::Instant::now();
        let answer = self
            .reserve_untimed(store, product, quantity, ttl, key.as_ref(), correlation)
            .await;
        self.count_reservation_request("hold", &answer, started);
        answer
    }

    fn count_reservation_request(
        &self,
        step: &'static str,
        answer: &Result<ReservationAnswer, CentralError>,
        started: std::time::Instant,
    ) {
        let outcome = match answer {
            Ok(ReservationAnswer::Decided(_)) => "confirmed",
            Ok(ReservationAnswer::Pending(_)) => "pending",
            Err(CentralError::NotAvailable { .. }) => "insufficient",
            Err(CentralError::ReservationNotOpen { .. }) => "not_open",
            Err(CentralError::StoreUnavailable { .. } | CentralError::CommandExpired(_)) => {
                "unavailable"
            }
            Err(
                CentralError::StoreNotFound(_)
                | CentralError::ProductNotFound { .. }
                | CentralError::ReservationNotFound(_),
            ) => "not_found",
            Err(_) => "error",
        };
        metrics::counter!("stockmesh_reservation_requests_total", "node" => self.node.clone(), "step" => step, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("stockmesh_reservation_request_seconds", "node" => self.node.clone(), "step" => step)
            .record(started.elapsed().as_secs_f64());
    }

    async fn online(&self, store: &StoreId) -> Result<(), CentralError> {
        if self.liveness.of(store).await.online {
            Ok(())
        } else {
            Err(offline(store))
        }
    }

    async fn reserve_untimed(
        &self,
        store: StoreId,
        product: ProductId,
        quantity: PurchaseQuantity,
        ttl: Ttl,
        key: Option<&IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<ReservationAnswer, CentralError> {
        if let Some(key) = key {
            let fingerprint = Reservation::fingerprint_of(&store, &product, quantity, ttl);
            if let Some(first) = self.coordinator.replay(key, &fingerprint).await? {
                return reservation::hold_outcome(first);
            }
        }
        self.item_at_online_store(&store, &product).await?;
        let now = stockmesh_core::now();
        let pending = Reservation {
            reservation_id: ReservationId::new(),
            store_id: store,
            product_id: product,
            quantity,
            ttl,
            status: ReservationStatus::Pending,
            reason: None,
            expires_at: None,
            correlation_id: Some(correlation),
            created_at: now,
            deadline: now + self.timing.deadline,
            resolved_at: None,
            ended_at: None,
        };
        reservation::hold_outcome(self.coordinator.submit(pending, key).await?)
    }

    /// Commits or releases a held reservation, as its store decides; counted and timed.
    pub async fn act_on_reservation(
        &self,
        id: ReservationId,
        action: ReservationAction,
        key: Option<IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<ReservationAnswer, CentralError> {
        let started = std::time::Instant::now();
        let answer = self
            .act_untimed(id, action, key.as_ref(), correlation)
            .await;
        let step = match action {
            ReservationAction::Commit => "commit",
            ReservationAction::Release => "release",
        };
        self.count_reservation_request(step, &answer, started);
        answer
    }

    async fn act_untimed(
        &self,
        id: ReservationId,
        action: ReservationAction,
        key: Option<&IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<ReservationAnswer, CentralError> {
        if let Some(key) = key {
            let fingerprint = Action::fingerprint_of(action, id);
            if let Some(first) = self.coordinator.replay::<Action>(key, &fingerprint).await? {
                return reservation::action_outcome(&first, self.reservation(id).await?);
            }
        }
        let current = self.reservation(id).await?;
        let state = match current.status {
            ReservationStatus::Held => None,
            ReservationStatus::Pending => Some("still pending: the store has not held it yet"),
            ReservationStatus::Rejected => Some("rejected: it never held any units"),
            ReservationStatus::Committed => Some("already committed"),
            ReservationStatus::Released => Some("already released"),
            ReservationStatus::Expired => Some("expired"),
        };
        if let Some(state) = state {
            return Err(CentralError::ReservationNotOpen {
                reservation: id,
                state,
            });
        }
        self.online(&current.store_id).await?;
        let deadline = stockmesh_core::now() + self.timing.deadline;
        let pending = Action::new(&current, action, correlation, deadline);
        let recorded = self.coordinator.submit(pending, key).await?;
        reservation::action_outcome(&recorded, self.reservation(id).await?)
    }
}

/// Transfers (issue 17): Central's checks, then the sending store decides the shipment.
impl CentralService {
    /// One transfer.
    pub async fn transfer_status(&self, id: TransferId) -> Result<Transfer, CentralError> {
        transfer::find(&self.db.reader, id)
            .await?
            .ok_or(CentralError::TransferNotFound(id))
    }

    /// One page of the transfers a store sends or receives (all without a store), and the total.
    pub async fn transfers(
        &self,
        store: Option<&StoreId>,
        page: Page,
    ) -> Result<(Vec<Transfer>, u64), CentralError> {
        transfer::list(&self.db.reader, store, page).await
    }

    /// Moves `quantity` units of `product` from `from` to `to`, as the sending store decides;
    /// counted by outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn transfer(
        &self,
        from: StoreId,
        to: StoreId,
        product: ProductId,
        quantity: PurchaseQuantity,
        confirm: bool,
        key: Option<IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<TransferAnswer, CentralError> {
        let answer = self
            .transfer_untimed(
                from,
                to,
                product,
                quantity,
                confirm,
                key.as_ref(),
                correlation,
            )
            .await;
        let outcome = match &answer {
            Ok(TransferAnswer::Decided(_)) => "shipped",
            Ok(TransferAnswer::Pending(_)) => "pending",
            Err(CentralError::NotAvailable { .. }) => "insufficient",
            Err(CentralError::StoreUnavailable { .. } | CentralError::CommandExpired(_)) => {
                "unavailable"
            }
            Err(CentralError::StoreNotFound(_) | CentralError::ProductNotFound { .. }) => {
                "not_found"
            }
            Err(_) => "error",
        };
        metrics::counter!("stockmesh_transfers_total", "node" => self.node.clone(), "outcome" => outcome)
            .increment(1);
        answer
    }

    #[allow(clippy::too_many_arguments)]
    async fn transfer_untimed(
        &self,
        from: StoreId,
        to: StoreId,
        product: ProductId,
        quantity: PurchaseQuantity,
        confirm: bool,
        key: Option<&IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<TransferAnswer, CentralError> {
        if let Some(key) = key {
            let fingerprint = Transfer::fingerprint_of(&from, &to, &product, quantity, confirm);
            if let Some(first) = self.coordinator.replay(key, &fingerprint).await? {
                return transfer::outcome(first);
            }
        }
        self.known_store(&from).await?;
        self.known_store(&to).await?;
        self.online(&from).await?;
        if repo::find_item(&self.db.reader, &from, &product)
            .await?
            .is_none()
        {
            return Err(CentralError::ProductNotFound {
                store: from,
                product,
            });
        }
        let deadline = stockmesh_core::now() + self.timing.deadline;
        let requested =
            Transfer::requested(from, to, product, quantity, confirm, correlation, deadline);
        transfer::outcome(self.coordinator.submit(requested, key).await?)
    }

    /// Cancels a transfer the sending store has not shipped (as far as Central knows); a
    /// shipment that crosses the cancel is returned to the sender.
    pub async fn cancel_transfer(&self, id: TransferId) -> Result<Transfer, CentralError> {
        let mut tx = self.db.writer.begin().await?;
        let cancelled = transfer::cancel(&mut tx, id, stockmesh_core::now()).await?;
        tx.commit().await?;
        let current = self.transfer_status(id).await?;
        if cancelled {
            metrics::counter!("stockmesh_transfers_total", "node" => self.node.clone(), "outcome" => "cancelled")
                .increment(1);
            return Ok(current);
        }
        let state = match current.status {
            TransferStatus::Requested => "still being recorded",
            TransferStatus::InTransit => "in transit",
            TransferStatus::Received => "received",
            TransferStatus::Rejected => "rejected",
            TransferStatus::Cancelled => "already cancelled",
        };
        Err(CentralError::TransferNotCancellable {
            transfer: id,
            state,
        })
    }
}

/// Why a request to an offline store is refused (503).
fn offline(store: &StoreId) -> CentralError {
    CentralError::StoreUnavailable {
        store: store.clone(),
        why: "it is offline or disconnected (no fresh heartbeat)".into(),
    }
}
