//! Central's operations: the global view, and remote purchases that the store decides.
//!
//! A remote purchase: refuse at once when the store is unknown (404), offline (503), or when the
//! view already shows too little (409); otherwise record it `PENDING` together with the command
//! to the store in one transaction, wait for the store's reply (up to the wait limit), and answer
//! with what the store decided, or 202 while it is still pending. An `Idempotency-Key` makes a
//! retry return the first purchase's outcome instead of buying again.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use stockmesh_bus::{Broker, Database, Outbox, OutboxSignal, gauges, topology};
use stockmesh_core::{
    CorrelationId, Envelope, Event, Item, ProductId, PurchaseId, PurchaseQuantity, RejectionReason,
    RemotePurchaseCommand, StoreId, Timestamp,
};
use stockmesh_http::Page;

use crate::error::CentralError;
use crate::liveness::{Liveness, StoreLiveness};
use crate::purchase::{IdempotencyKey, Purchase, PurchaseStatus};
use crate::repository as repo;
use crate::waiters::Waiters;

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
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreFigure {
    /// The store.
    pub store_id: StoreId,
    /// Units it holds.
    pub quantity: u32,
    /// The item's version at the store.
    pub version: u64,
    /// When the store changed it.
    pub updated_at: Timestamp,
    /// Milliseconds since Central received that figure.
    pub age_ms: i64,
    /// Whether the store takes remote purchases now.
    pub online: bool,
}

/// A product across the chain.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductAvailability {
    /// The product.
    pub product_id: ProductId,
    /// Units across every store.
    pub total: u64,
    /// Units across the stores that are online now.
    pub online_total: u64,
    /// Per store.
    pub stores: Vec<StoreFigure>,
}

/// A store, as `GET /stores` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreSummary {
    /// The store.
    pub store_id: StoreId,
    /// Liveness.
    #[serde(flatten)]
    pub liveness: StoreLiveness,
    /// Items Central holds for it.
    pub items: i64,
    /// When its last event was applied.
    pub last_event_at: Option<Timestamp>,
}

/// The item a confirmed purchase left, as the purchase answer shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchasedItem {
    /// The item at the store after the purchase: `quantity` is what remains.
    #[serde(flatten)]
    pub item: Item,
    /// The purchase.
    pub purchase_id: PurchaseId,
}

/// How a purchase request ends.
#[derive(Debug, Clone)]
pub enum PurchaseAnswer {
    /// Confirmed by the store (200).
    Confirmed(PurchasedItem),
    /// Still pending after the wait limit (202).
    Pending(Purchase),
}

/// Central's view and purchases.
#[derive(Debug, Clone)]
pub struct CentralService {
    /// This replica's name: the `node` label of its metrics.
    node: String,
    broker: Arc<dyn Broker>,
    db: Database,
    liveness: Liveness,
    waiters: Arc<Waiters>,
    outbox: OutboxSignal,
    timing: PurchaseTiming,
}

impl CentralService {
    /// A service named `node` over `db` and `broker`.
    pub fn new(
        node: impl Into<String>,
        broker: Arc<dyn Broker>,
        db: Database,
        liveness: Liveness,
        waiters: Arc<Waiters>,
        outbox: OutboxSignal,
        timing: PurchaseTiming,
    ) -> Self {
        Self {
            node: node.into(),
            broker,
            db,
            liveness,
            waiters,
            outbox,
            timing,
        }
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
    pub async fn readiness(&self) -> Result<(), String> {
        self.db.readiness(Some(&self.broker)).await
    }

    async fn known_store(&self, store: &StoreId) -> Result<(), CentralError> {
        if repo::store_exists(&self.db.reader, store).await? {
            Ok(())
        } else {
            Err(CentralError::StoreNotFound(store.clone()))
        }
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

    /// One page of the view, and the total.
    pub async fn items(
        &self,
        store: Option<&StoreId>,
        product: Option<&ProductId>,
        page: Page,
    ) -> Result<(Vec<Item>, u64), CentralError> {
        Ok(repo::list_items(&self.db.reader, store, product, page).await?)
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

    /// One purchase.
    pub async fn purchase_status(&self, purchase: PurchaseId) -> Result<Purchase, CentralError> {
        repo::find_purchase(&self.db.reader, purchase)
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
            .purchase_untimed(store, product, quantity, key, correlation)
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
        key: Option<IdempotencyKey>,
        correlation: CorrelationId,
    ) -> Result<PurchaseAnswer, CentralError> {
        let fingerprint = Purchase::fingerprint(&store, &product, quantity);
        if let Some(key) = &key
            && let Some(found) = self.replay(key, &fingerprint).await?
        {
            return found;
        }
        self.known_store(&store).await?;
        if !self.liveness.of(&store).await.online {
            return Err(CentralError::StoreUnavailable {
                store,
                why: "it is offline or disconnected (no fresh heartbeat)".into(),
            });
        }
        let item = repo::find_item(&self.db.reader, &store, &product)
            .await?
            .ok_or_else(|| CentralError::ProductNotFound {
                store: store.clone(),
                product: product.clone(),
            })?;
        let now = stockmesh_core::now();
        let mut purchase = Purchase {
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
        if !item.quantity.covers(quantity) {
            // Refused at once. Recorded only under a key, so that a retry answers the same.
            purchase.status = PurchaseStatus::Rejected;
            purchase.reason = Some(RejectionReason::InsufficientStock);
            purchase.item = Some(item);
            purchase.resolved_at = Some(now);
            if let Some(key) = &key {
                let mut tx = self.db.writer.begin().await?;
                match repo::insert_purchase(&mut tx, &purchase, Some(key)).await {
                    Ok(()) => tx.commit().await?,
                    Err(e) if is_unique_violation(&e) => {
                        drop(tx);
                        return self.replay_or_race(key, &fingerprint).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            return outcome(purchase);
        }
        let purchase_id = purchase.purchase_id;
        let reply = self.waiters.register(purchase_id);
        let command = Envelope::new(
            purchase.store_id.clone(),
            Event::InventoryItemRemotePurchase(RemotePurchaseCommand {
                purchase_id,
                product_id: purchase.product_id.clone(),
                quantity,
                deadline: purchase.deadline,
            }),
            purchase.correlation_id.clone(),
        );
        let mut tx = self.db.writer.begin().await?;
        match repo::insert_purchase(&mut tx, &purchase, key.as_ref()).await {
            Ok(()) => {}
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                drop(reply);
                self.waiters.forget_abandoned(purchase_id);
                let key = key.as_ref().ok_or(CentralError::Database(e))?;
                return self.replay_or_race(key, &fingerprint).await;
            }
            Err(e) => return Err(e.into()),
        }
        Outbox::append(
            &mut tx,
            &topology::commands_stream(&purchase.store_id),
            &command,
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify();
        tracing::debug!(%purchase_id, "remote purchase sent to the store");
        self.await_outcome(purchase_id, reply).await
    }

    /// The outcome of an earlier purchase under `key`, or `None` if the key is unused.
    async fn replay(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Result<Option<Result<PurchaseAnswer, CentralError>>, CentralError> {
        let Some((first, first_fingerprint)) =
            repo::find_purchase_by_key(&self.db.reader, key).await?
        else {
            return Ok(None);
        };
        if first_fingerprint != fingerprint {
            return Err(CentralError::IdempotencyMismatch(first_fingerprint));
        }
        if first.status != PurchaseStatus::Pending {
            return Ok(Some(outcome(first)));
        }
        let reply = self.waiters.register(first.purchase_id);
        Ok(Some(self.await_outcome(first.purchase_id, reply).await))
    }

    /// Another request with the same key won the race to record it: answer as its retry.
    async fn replay_or_race(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Result<PurchaseAnswer, CentralError> {
        match self.replay(key, fingerprint).await? {
            Some(answer) => answer,
            None => Err(CentralError::BadRequest(
                "Idempotency-Key is in use by a request still being recorded; retry".into(),
            )),
        }
    }

    /// Waits (up to the wait limit) for the store's answer, then reads the purchase.
    async fn await_outcome(
        &self,
        purchase_id: PurchaseId,
        reply: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<PurchaseAnswer, CentralError> {
        // The answer may have landed between recording and registering: look first.
        let current = self.purchase_status(purchase_id).await?;
        if current.status != PurchaseStatus::Pending {
            self.waiters.forget_abandoned(purchase_id);
            return outcome(current);
        }
        let woke = tokio::time::timeout(self.timing.wait, reply).await.is_ok();
        if !woke {
            self.waiters.forget_abandoned(purchase_id);
        }
        outcome(self.purchase_status(purchase_id).await?)
    }
}

/// Maps a recorded purchase to the answer for the client.
fn outcome(purchase: Purchase) -> Result<PurchaseAnswer, CentralError> {
    match purchase.status {
        PurchaseStatus::Pending => Ok(PurchaseAnswer::Pending(purchase)),
        PurchaseStatus::Confirmed => match purchase.item {
            Some(item) => Ok(PurchaseAnswer::Confirmed(PurchasedItem {
                item,
                purchase_id: purchase.purchase_id,
            })),
            None => Err(CentralError::Database(sqlx::Error::Decode(
                "confirmed purchase without its item".into(),
            ))),
        },
        PurchaseStatus::Rejected => Err(match purchase.reason {
            Some(RejectionReason::InsufficientStock) | None => CentralError::InsufficientStock {
                available: purchase.item.map(|i| i.quantity).unwrap_or_default(),
                store: purchase.store_id,
                product: purchase.product_id,
                requested: purchase.quantity,
            },
            Some(RejectionReason::ProductNotFound) => CentralError::ProductNotFound {
                store: purchase.store_id,
                product: purchase.product_id,
            },
            Some(RejectionReason::Expired) => CentralError::PurchaseExpired(purchase.store_id),
        }),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
