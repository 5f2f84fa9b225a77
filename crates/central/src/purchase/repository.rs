//! Every SQL statement on Central's `purchases` table.

use sqlx::AnyConnection;
use stockmesh_core::{
    CorrelationId, Item, ItemState, ProductId, PurchaseId, PurchaseQuantity, Quantity,
    RejectionReason, Stock, StoreId, Timestamp, Version, from_millis,
};
use stockmesh_http::IdempotencyKey;

use super::{Purchase, PurchaseStatus};
use crate::decided::Stored;
use crate::repository::corrupt;

/// Records a new purchase. Fails with a unique violation if its idempotency key is taken.
pub(crate) async fn insert_purchase(
    conn: &mut AnyConnection,
    purchase: &Purchase,
    key: Option<&IdempotencyKey>,
) -> sqlx::Result<()> {
    let item = purchase.item.as_ref();
    sqlx::query(
        "INSERT INTO purchases (purchase_id, store_id, product_id, quantity, status, reason,
            remaining, version, item_updated_at, idempotency_key, fingerprint, correlation_id,
            created_at, deadline, resolved_at, item_reserved)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(purchase.purchase_id.to_string())
    .bind(purchase.store_id.as_str())
    .bind(purchase.product_id.as_str())
    .bind(i64::from(purchase.quantity))
    .bind(purchase.status.as_str())
    .bind(purchase.reason.map(RejectionReason::as_str))
    .bind(item.map(|i| i64::from(i.quantity)))
    .bind(item.map(|i| i64::from(i.version)))
    .bind(item.map(|i| i.updated_at.timestamp_millis()))
    .bind(key.map(IdempotencyKey::as_str))
    .bind(Purchase::fingerprint_of(
        &purchase.store_id,
        &purchase.product_id,
        purchase.quantity,
    ))
    .bind(purchase.correlation_id.as_ref().map(CorrelationId::as_str))
    .bind(purchase.created_at.timestamp_millis())
    .bind(purchase.deadline.timestamp_millis())
    .bind(purchase.resolved_at.map(|t| t.timestamp_millis()))
    .bind(item.map(|i| i64::from(i.states.reserved)))
    .execute(conn)
    .await?;
    Ok(())
}

/// Resolves a pending purchase with the store's answer; returns whether it was pending.
pub(crate) async fn resolve_purchase(
    conn: &mut AnyConnection,
    purchase: PurchaseId,
    store: &StoreId,
    status: PurchaseStatus,
    reason: Option<RejectionReason>,
    item: Option<&ItemState>,
    at: Timestamp,
) -> sqlx::Result<bool> {
    // Only the store the purchase was sent to can answer it (see `crate::trust`).
    let done = sqlx::query(
        "UPDATE purchases SET status = $1, reason = $2, remaining = $3, version = $4,
            item_updated_at = $5, resolved_at = $6, item_reserved = $7
         WHERE purchase_id = $8 AND store_id = $9
           AND (status = 'PENDING'
                OR (status = 'REJECTED' AND reason = 'EXPIRED' AND $10 = 'CONFIRMED'))",
    )
    .bind(status.as_str())
    .bind(reason.map(RejectionReason::as_str))
    .bind(item.map(|i| i64::from(i.quantity)))
    .bind(item.map(|i| i64::from(i.version)))
    .bind(item.map(|i| i.updated_at.timestamp_millis()))
    .bind(at.timestamp_millis())
    .bind(item.map(|i| i64::from(i.reserved)))
    .bind(purchase.to_string())
    .bind(store.as_str())
    .bind(status.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Resolves as rejected (`EXPIRED`) every purchase still pending `grace` after its deadline,
/// whatever the store's heartbeat says: the store refuses a command past its deadline, so no
/// confirmation can be owed except one already applied and delayed, which still overrides this
/// (see [`resolve_purchase`]). Returns the ids resolved.
pub(crate) async fn expire_overdue(
    conn: &mut AnyConnection,
    now: Timestamp,
    grace: std::time::Duration,
) -> sqlx::Result<Vec<PurchaseId>> {
    let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE purchases SET status = 'REJECTED', reason = 'EXPIRED', resolved_at = $1
         WHERE status = 'PENDING' AND deadline < $2 RETURNING purchase_id",
    )
    .bind(now.timestamp_millis())
    .bind(now.timestamp_millis().saturating_sub(grace))
    .fetch_all(conn)
    .await?;
    Ok(ids
        .into_iter()
        .filter_map(|id| PurchaseId::parse(&id).ok())
        .collect())
}

/// The store a purchase was sent to, if Central knows the purchase.
pub(crate) async fn owner(
    conn: &mut AnyConnection,
    purchase: PurchaseId,
) -> sqlx::Result<Option<StoreId>> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT store_id FROM purchases WHERE purchase_id = $1")
            .bind(purchase.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(owner.and_then(|s| StoreId::parse(s).ok()))
}

/// A purchase row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct PurchaseRow {
    purchase_id: String,
    store_id: String,
    product_id: String,
    quantity: i64,
    status: String,
    reason: Option<String>,
    remaining: Option<i64>,
    version: Option<i64>,
    item_updated_at: Option<i64>,
    correlation_id: Option<String>,
    created_at: i64,
    deadline: i64,
    resolved_at: Option<i64>,
    item_reserved: Option<i64>,
}

impl PurchaseRow {
    fn into_purchase(self) -> sqlx::Result<Purchase> {
        let store_id = StoreId::parse(self.store_id).map_err(|e| corrupt("purchase", e))?;
        let product_id = ProductId::parse(self.product_id).map_err(|e| corrupt("purchase", e))?;
        let item = match (self.remaining, self.version, self.item_updated_at) {
            (Some(q), Some(v), Some(at)) => Some({
                let quantity = Quantity::new(q).map_err(|e| corrupt("purchase", e))?;
                let reserved = Quantity::new(self.item_reserved.unwrap_or(0))
                    .map_err(|e| corrupt("purchase", e))?;
                Item {
                    store_id: store_id.clone(),
                    product_id: product_id.clone(),
                    quantity,
                    states: Stock::new(quantity, reserved),
                    version: Version::try_from(v).map_err(|e| corrupt("purchase", e))?,
                    updated_at: from_millis(at),
                }
            }),
            _ => None,
        };
        let purchase = Purchase {
            purchase_id: PurchaseId::parse(&self.purchase_id)
                .map_err(|e| corrupt("purchase", e))?,
            store_id,
            product_id,
            quantity: PurchaseQuantity::new(self.quantity).map_err(|e| corrupt("purchase", e))?,
            status: PurchaseStatus::from_name(&self.status)
                .ok_or_else(|| corrupt("purchase", &self.status))?,
            reason: self.reason.as_deref().and_then(RejectionReason::from_name),
            item,
            correlation_id: self
                .correlation_id
                .as_deref()
                .and_then(CorrelationId::from_client),
            created_at: from_millis(self.created_at),
            deadline: from_millis(self.deadline),
            resolved_at: self.resolved_at.map(from_millis),
        };
        Ok(purchase)
    }
}

impl Stored for Purchase {
    type Row = PurchaseRow;
    const SELECT: &'static str = "SELECT purchase_id, store_id, product_id, quantity, status, \
         reason, remaining, version, item_updated_at, correlation_id, created_at, deadline, \
         resolved_at, item_reserved FROM purchases";
    const ID: &'static str = "purchase_id";
    const KEY: &'static str = "idempotency_key";
    const PENDING: &'static str = "status = 'PENDING'";
    const CREATED_AT: &'static str = "created_at";

    fn from_row(row: PurchaseRow) -> sqlx::Result<Self> {
        row.into_purchase()
    }
}
