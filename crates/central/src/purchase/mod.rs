//! Remote purchases: a customer buys online from a given store, and that store decides (the
//! first store-decided flow; the mechanics are [`crate::decided`]'s).
//!
//! Central refuses at once when the store is unknown (404), offline (503), or when the view
//! already shows too little (409, recorded only under an `Idempotency-Key`); otherwise the
//! purchase is submitted to the store, and the answer is what the store decided: 200 with the item
//! that remains, 409, 503 when the command arrived after its deadline, or 202 while pending.

mod repository;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::AnyConnection;
use stockmesh_core::{
    CorrelationId, Envelope, Event, Item, ItemState, ProductId, PurchaseId, PurchaseQuantity,
    RejectionReason, RemotePurchaseCommand, RequestId, StoreId, Timestamp,
};
use stockmesh_http::IdempotencyKey;
use tracing::Instrument;

use crate::decided::{Coordinator, Request};
use crate::error::CentralError;

/// Where a remote purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PurchaseStatus {
    /// Sent to the store; no answer yet.
    Pending,
    /// The store applied it.
    Confirmed,
    /// Refused (by Central's pre-check or by the store); nothing changed.
    Rejected,
}

impl PurchaseStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Pending => "PENDING",
            PurchaseStatus::Confirmed => "CONFIRMED",
            PurchaseStatus::Rejected => "REJECTED",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Confirmed, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One remote purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    /// Its id.
    pub purchase_id: PurchaseId,
    /// The store that must supply it.
    pub store_id: StoreId,
    /// The product.
    pub product_id: ProductId,
    /// Units bought.
    pub quantity: PurchaseQuantity,
    /// Where it stands.
    pub status: PurchaseStatus,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectionReason>,
    /// The item after the purchase (confirmed) or as the store had it (rejected), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
    /// The request that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// When Central recorded it.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// After this instant the store refuses it.
    #[schema(value_type = String, format = DateTime)]
    pub deadline: Timestamp,
    /// When the store's answer was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
}

impl Purchase {
    /// What a request asked for, to tell a genuine retry from a reused key.
    pub fn fingerprint_of(
        store: &StoreId,
        product: &ProductId,
        quantity: PurchaseQuantity,
    ) -> String {
        format!("{store}/{product}/{quantity}")
    }

    /// The same purchase, refused by Central itself because the view shows too little.
    fn refused(mut self, item: Item) -> Self {
        self.status = PurchaseStatus::Rejected;
        self.reason = Some(RejectionReason::InsufficientStock);
        self.item = Some(item);
        self.resolved_at = Some(self.created_at);
        self
    }
}

#[async_trait]
impl Request for Purchase {
    fn request_id(&self) -> RequestId {
        self.purchase_id.into()
    }

    fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    fn is_pending(&self) -> bool {
        self.status == PurchaseStatus::Pending
    }

    fn fingerprint(&self) -> String {
        Self::fingerprint_of(&self.store_id, &self.product_id, self.quantity)
    }

    fn command(&self) -> Envelope {
        Envelope::new(
            self.store_id.clone(),
            Event::InventoryItemRemotePurchase(RemotePurchaseCommand {
                purchase_id: self.purchase_id,
                product_id: self.product_id.clone(),
                quantity: self.quantity,
                deadline: self.deadline,
            }),
            self.correlation_id.clone(),
        )
    }

    async fn insert(
        &self,
        tx: &mut AnyConnection,
        key: Option<&IdempotencyKey>,
    ) -> sqlx::Result<()> {
        repository::insert_purchase(tx, self, key).await
    }
}

/// The item a confirmed purchase left, as the purchase answer shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// A purchase Central has checked and is about to submit or refuse.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The purchase, pending.
    pub purchase: Purchase,
    /// The item as Central's view shows it.
    pub item: Item,
}

/// Submits a checked purchase to its store, or refuses it when the view already shows too
/// little, and maps the recorded purchase to the client's answer.
pub(crate) async fn submit(
    coordinator: &Coordinator,
    checked: Checked,
    key: Option<&IdempotencyKey>,
) -> Result<PurchaseAnswer, CentralError> {
    let Checked { purchase, item } = checked;
    let recorded = if item.quantity.covers(purchase.quantity) {
        coordinator.submit(purchase, key).await?
    } else {
        coordinator.refuse(purchase.refused(item), key).await?
    };
    outcome(recorded)
}

/// Maps a recorded purchase to the answer for the client.
pub(crate) fn outcome(purchase: Purchase) -> Result<PurchaseAnswer, CentralError> {
    match purchase.status {
        PurchaseStatus::Pending => Ok(PurchaseAnswer::Pending(purchase)),
        PurchaseStatus::Confirmed => match purchase.item {
            Some(item) => Ok(PurchaseAnswer::Confirmed(PurchasedItem {
                item,
                purchase_id: purchase.purchase_id,
            })),
            None => Err(CentralError::Invariant(
                "confirmed purchase without its item",
            )),
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

/// Every `interval` until `stop`: expires the purchases pending `grace` past their deadline and
/// wakes whoever waits for them.
pub(crate) async fn sweep_overdue(
    db: stockmesh_bus::Database,
    coordinator: crate::decided::Coordinator,
    grace: std::time::Duration,
    interval: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let expired = async {
            let mut conn = db.writer.acquire().await?;
            let ids = repository::expire_overdue(&mut conn, stockmesh_core::now(), grace).await?;
            let decided: Vec<stockmesh_core::RequestId> =
                ids.iter().copied().map(Into::into).collect();
            coordinator.announce(&mut conn, &decided).await?;
            Ok::<_, sqlx::Error>(ids)
        }
        .await;
        match expired {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(count = ids.len(), "pending purchases expired unanswered");
                metrics::counter!("stockmesh_purchases_expired_total").increment(ids.len() as u64);
                coordinator.wake(ids.into_iter().map(Into::into));
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot expire overdue purchases"),
        }
    }
}

/// Resolves the purchases that `events` answer (store replies), inside the caller's
/// transaction; returns the ids of those that were pending, to wake after the commit.
pub(crate) async fn resolve_replies(
    tx: &mut AnyConnection,
    events: &[&Envelope],
    now: Timestamp,
) -> sqlx::Result<Vec<RequestId>> {
    let mut resolved = Vec::new();
    for envelope in events {
        let (purchase, status, reason, item): (_, _, _, Option<&ItemState>) = match &envelope.event
        {
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
        let store = &envelope.store_id;
        // The resolution joins the trace of the store's decision (and so of the request).
        let span = tracing::info_span!("resolve", %purchase, status = status.as_str());
        stockmesh_http::trace::adopt(&span, envelope.traceparent.as_deref());
        if repository::resolve_purchase(tx, purchase, store, status, reason, item, now)
            .instrument(span)
            .await?
        {
            tracing::debug!(
                %purchase,
                status = status.as_str(),
                correlation_id = ?envelope.correlation_id,
                "remote purchase answered by the store"
            );
            resolved.push(purchase.into());
        } else if let Some(owner) = repository::owner(&mut *tx, purchase).await?
            && &owner != store
        {
            crate::trust::untrusted(
                "foreign_reply",
                store,
                &format!("reply for purchase {purchase} of store {owner}"),
            );
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockmesh_core::{Quantity, Version};

    fn purchase(status: PurchaseStatus, reason: Option<RejectionReason>) -> Purchase {
        let store = StoreId::parse("s1").expect("valid");
        let product = ProductId::parse("p").expect("valid");
        let now = stockmesh_core::now();
        Purchase {
            purchase_id: PurchaseId::new(),
            item: Some(Item {
                store_id: store.clone(),
                product_id: product.clone(),
                quantity: Quantity::new(3).expect("valid"),
                states: stockmesh_core::Stock::new(
                    Quantity::new(3).expect("valid"),
                    Quantity::ZERO,
                ),
                version: Version::FIRST,
                updated_at: now,
            }),
            store_id: store,
            product_id: product,
            quantity: PurchaseQuantity::new(2).expect("valid"),
            status,
            reason,
            correlation_id: None,
            created_at: now,
            deadline: now,
            resolved_at: None,
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            PurchaseStatus::Pending,
            PurchaseStatus::Confirmed,
            PurchaseStatus::Rejected,
        ] {
            assert_eq!(PurchaseStatus::from_name(s.as_str()), Some(s));
        }
    }

    #[test]
    fn a_pending_purchase_answers_pending() {
        let answer = outcome(purchase(PurchaseStatus::Pending, None));
        assert!(matches!(answer, Ok(PurchaseAnswer::Pending(_))));
    }

    #[test]
    fn a_confirmed_purchase_answers_the_item_that_remains() {
        let answer = outcome(purchase(PurchaseStatus::Confirmed, None));
        let Ok(PurchaseAnswer::Confirmed(item)) = answer else {
            panic!("expected a confirmation, got {answer:?}");
        };
        assert_eq!(item.item.quantity.get(), 3);
    }

    #[test]
    fn a_confirmed_purchase_without_its_item_is_an_invariant_break() {
        let mut confirmed = purchase(PurchaseStatus::Confirmed, None);
        confirmed.item = None;
        assert!(matches!(
            outcome(confirmed),
            Err(CentralError::Invariant(_))
        ));
    }

    #[test]
    fn each_rejection_reason_answers_its_own_error() {
        let insufficient = outcome(purchase(
            PurchaseStatus::Rejected,
            Some(RejectionReason::InsufficientStock),
        ));
        assert!(matches!(
            insufficient,
            Err(CentralError::InsufficientStock { available, .. }) if available.get() == 3
        ));
        let missing = outcome(purchase(
            PurchaseStatus::Rejected,
            Some(RejectionReason::ProductNotFound),
        ));
        assert!(matches!(missing, Err(CentralError::ProductNotFound { .. })));
        let late = outcome(purchase(
            PurchaseStatus::Rejected,
            Some(RejectionReason::Expired),
        ));
        assert!(matches!(late, Err(CentralError::PurchaseExpired(_))));
    }

    #[test]
    fn a_refusal_by_central_keeps_the_item_it_saw() {
        let pending = purchase(PurchaseStatus::Pending, None);
        let item = pending.item.clone().expect("item");
        let refused = pending.refused(item.clone());
        assert_eq!(refused.status, PurchaseStatus::Rejected);
        assert_eq!(refused.reason, Some(RejectionReason::InsufficientStock));
        assert_eq!(refused.item, Some(item));
        assert_eq!(refused.resolved_at, Some(refused.created_at));
    }

    #[test]
    fn a_retry_is_told_from_a_reused_key_by_what_it_asks() {
        let first = purchase(PurchaseStatus::Pending, None);
        let mut other = first.clone();
        other.quantity = PurchaseQuantity::new(5).expect("valid");
        assert_ne!(first.fingerprint(), other.fingerprint());
        assert_eq!(first.fingerprint(), first.clone().fingerprint());
    }
}
