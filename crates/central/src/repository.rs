//! Every SQL statement on Central's tables (stores, the view, purchases).

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqliteExecutor, SqlitePool};
use stockmesh_core::{
    CorrelationId, Item, ItemState, ProductId, PurchaseId, PurchaseQuantity, Quantity,
    RejectionReason, StoreId, Timestamp, Version, from_millis,
};
use stockmesh_http::Page;

use crate::purchase::{IdempotencyKey, Purchase, PurchaseStatus};

fn corrupt(what: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("corrupt {what} row: {error}").into())
}

/// A view row: `(store_id, product_id, quantity, version, updated_at)`.
type ItemRow = (String, String, i64, i64, i64);

fn item_from_row((store, product, quantity, version, updated_at): ItemRow) -> sqlx::Result<Item> {
    Ok(Item {
        store_id: StoreId::parse(store).map_err(|e| corrupt("item", e))?,
        product_id: ProductId::parse(product).map_err(|e| corrupt("item", e))?,
        quantity: Quantity::new(quantity).map_err(|e| corrupt("item", e))?,
        version: Version::try_from(version).map_err(|e| corrupt("item", e))?,
        updated_at: from_millis(updated_at),
    })
}

/// Registers a store; returns whether it was new to Central.
pub async fn insert_store(
    conn: &mut SqliteConnection,
    store: &StoreId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO stores (store_id, first_seen) VALUES (?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(store.as_str())
    .bind(at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that an event from `store` was applied at `at`, registering the store if needed.
pub async fn touch_store(
    conn: &mut SqliteConnection,
    store: &StoreId,
    at: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO stores (store_id, first_seen, last_event_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (store_id) DO UPDATE SET last_event_at = ?2",
    )
    .bind(store.as_str())
    .bind(at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether Central knows `store`.
pub async fn store_exists(pool: impl SqliteExecutor<'_>, store: &StoreId) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM stores WHERE store_id = ?")
        .bind(store.as_str())
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

/// A store as `GET /stores` lists it, before liveness is added.
#[derive(Debug, Clone)]
pub struct StoreRow {
    /// The store.
    pub store_id: StoreId,
    /// Items Central holds for it.
    pub items: i64,
    /// When its last event was applied.
    pub last_event_at: Option<Timestamp>,
}

/// Every known store with its item count.
pub async fn list_stores(pool: &SqlitePool) -> sqlx::Result<Vec<StoreRow>> {
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT s.store_id, (SELECT COUNT(*) FROM items i WHERE i.store_id = s.store_id),
                s.last_event_at
         FROM stores s ORDER BY s.store_id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(store, items, last)| {
            Ok(StoreRow {
                store_id: StoreId::parse(store).map_err(|e| corrupt("store", e))?,
                items,
                last_event_at: last.map(from_millis),
            })
        })
        .collect()
}

/// Applies many item states, each only if newer than the view's, in one statement per 400
/// items. The caller passes at most one state per (store, product): the newest of its batch.
pub async fn apply_items(
    conn: &mut SqliteConnection,
    states: &[(&StoreId, &ItemState)],
    received_at: Timestamp,
) -> sqlx::Result<()> {
    for chunk in states.chunks(400) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO items (store_id, product_id, quantity, version, updated_at, received_at) ",
        );
        upsert.push_values(chunk, |mut row, (store, state)| {
            row.push_bind(store.as_str().to_owned())
                .push_bind(state.product_id.as_str().to_owned())
                .push_bind(i64::from(state.quantity))
                .push_bind(i64::from(state.version))
                .push_bind(state.updated_at.timestamp_millis())
                .push_bind(received_at.timestamp_millis());
        });
        upsert.push(
            " ON CONFLICT (store_id, product_id) DO UPDATE SET
                quantity = excluded.quantity, version = excluded.version,
                updated_at = excluded.updated_at, received_at = excluded.received_at
             WHERE excluded.version > items.version",
        );
        upsert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// One item of the view.
pub async fn find_item(
    pool: impl SqliteExecutor<'_>,
    store: &StoreId,
    product: &ProductId,
) -> sqlx::Result<Option<Item>> {
    sqlx::query_as::<_, ItemRow>(
        "SELECT store_id, product_id, quantity, version, updated_at FROM items
         WHERE store_id = ? AND product_id = ?",
    )
    .bind(store.as_str())
    .bind(product.as_str())
    .fetch_optional(pool)
    .await?
    .map(item_from_row)
    .transpose()
}

/// One page of the view, optionally narrowed to a store and/or a product, and the total.
pub async fn list_items(
    pool: &SqlitePool,
    store: Option<&StoreId>,
    product: Option<&ProductId>,
    page: Page,
) -> sqlx::Result<(Vec<Item>, u64)> {
    let store = store.map(StoreId::as_str);
    let product = product.map(ProductId::as_str);
    let rows = sqlx::query_as::<_, ItemRow>(
        "SELECT store_id, product_id, quantity, version, updated_at FROM items
         WHERE (?1 IS NULL OR store_id = ?1) AND (?2 IS NULL OR product_id = ?2)
         ORDER BY store_id, product_id LIMIT ?3 OFFSET ?4",
    )
    .bind(store)
    .bind(product)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM items
         WHERE (?1 IS NULL OR store_id = ?1) AND (?2 IS NULL OR product_id = ?2)",
    )
    .bind(store)
    .bind(product)
    .fetch_one(pool)
    .await?;
    let items = rows
        .into_iter()
        .map(item_from_row)
        .collect::<sqlx::Result<_>>()?;
    Ok((items, total.unsigned_abs()))
}

/// Every store's figure for `product`, with when Central received it.
pub async fn product_across_stores(
    pool: &SqlitePool,
    product: &ProductId,
) -> sqlx::Result<Vec<(Item, Timestamp)>> {
    let rows: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT store_id, product_id, quantity, version, updated_at, received_at FROM items
         WHERE product_id = ? ORDER BY store_id",
    )
    .bind(product.as_str())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(s, p, q, v, u, received)| {
            Ok((item_from_row((s, p, q, v, u))?, from_millis(received)))
        })
        .collect()
}

/// Records a new purchase. Fails with a unique violation if its idempotency key is taken.
pub async fn insert_purchase(
    conn: &mut SqliteConnection,
    purchase: &Purchase,
    key: Option<&IdempotencyKey>,
) -> sqlx::Result<()> {
    let item = purchase.item.as_ref();
    sqlx::query(
        "INSERT INTO purchases (purchase_id, store_id, product_id, quantity, status, reason,
            remaining, version, item_updated_at, idempotency_key, fingerprint, correlation_id,
            created_at, deadline, resolved_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .bind(Purchase::fingerprint(
        &purchase.store_id,
        &purchase.product_id,
        purchase.quantity,
    ))
    .bind(purchase.correlation_id.as_ref().map(CorrelationId::as_str))
    .bind(purchase.created_at.timestamp_millis())
    .bind(purchase.deadline.timestamp_millis())
    .bind(purchase.resolved_at.map(|t| t.timestamp_millis()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Resolves a pending purchase with the store's answer; returns whether it was pending.
pub async fn resolve_purchase(
    conn: &mut SqliteConnection,
    purchase: PurchaseId,
    status: PurchaseStatus,
    reason: Option<RejectionReason>,
    item: Option<&ItemState>,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE purchases SET status = ?, reason = ?, remaining = ?, version = ?,
            item_updated_at = ?, resolved_at = ?
         WHERE purchase_id = ? AND status = 'PENDING'",
    )
    .bind(status.as_str())
    .bind(reason.map(RejectionReason::as_str))
    .bind(item.map(|i| i64::from(i.quantity)))
    .bind(item.map(|i| i64::from(i.version)))
    .bind(item.map(|i| i.updated_at.timestamp_millis()))
    .bind(at.timestamp_millis())
    .bind(purchase.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A purchase row as stored.
#[derive(sqlx::FromRow)]
struct PurchaseRow {
    purchase_id: String,
    store_id: String,
    product_id: String,
    quantity: i64,
    status: String,
    reason: Option<String>,
    remaining: Option<i64>,
    version: Option<i64>,
    item_updated_at: Option<i64>,
    fingerprint: String,
    correlation_id: Option<String>,
    created_at: i64,
    deadline: i64,
    resolved_at: Option<i64>,
}

impl PurchaseRow {
    fn into_purchase(self) -> sqlx::Result<(Purchase, String)> {
        let store_id = StoreId::parse(self.store_id).map_err(|e| corrupt("purchase", e))?;
        let product_id = ProductId::parse(self.product_id).map_err(|e| corrupt("purchase", e))?;
        let item = match (self.remaining, self.version, self.item_updated_at) {
            (Some(q), Some(v), Some(at)) => Some(Item {
                store_id: store_id.clone(),
                product_id: product_id.clone(),
                quantity: Quantity::new(q).map_err(|e| corrupt("purchase", e))?,
                version: Version::try_from(v).map_err(|e| corrupt("purchase", e))?,
                updated_at: from_millis(at),
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
        Ok((purchase, self.fingerprint))
    }
}

const PURCHASE_COLUMNS: &str = "purchase_id, store_id, product_id, quantity, status, reason, \
     remaining, version, item_updated_at, fingerprint, correlation_id, created_at, deadline, \
     resolved_at";

/// One purchase by id.
pub async fn find_purchase(
    pool: impl SqliteExecutor<'_>,
    purchase: PurchaseId,
) -> sqlx::Result<Option<Purchase>> {
    let sql = format!("SELECT {PURCHASE_COLUMNS} FROM purchases WHERE purchase_id = ?");
    sqlx::query_as::<_, PurchaseRow>(sqlx::AssertSqlSafe(sql))
        .bind(purchase.to_string())
        .fetch_optional(pool)
        .await?
        .map(|row| row.into_purchase().map(|(p, _)| p))
        .transpose()
}

/// The purchase made under an idempotency key, with the fingerprint of its request.
pub async fn find_purchase_by_key(
    pool: impl SqliteExecutor<'_>,
    key: &IdempotencyKey,
) -> sqlx::Result<Option<(Purchase, String)>> {
    let sql = format!("SELECT {PURCHASE_COLUMNS} FROM purchases WHERE idempotency_key = ?");
    sqlx::query_as::<_, PurchaseRow>(sqlx::AssertSqlSafe(sql))
        .bind(key.as_str())
        .fetch_optional(pool)
        .await?
        .map(PurchaseRow::into_purchase)
        .transpose()
}

/// Purchases still pending: (id, store) pairs, for checks.
pub async fn pending_purchases(pool: &SqlitePool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM purchases WHERE status = 'PENDING'")
        .fetch_one(pool)
        .await
}
