//! Every SQL statement on the store's own tables. Writes take the caller's transaction; reads take
//! the reader pool.

use sqlx::{SqliteConnection, SqlitePool};
use stockmesh_core::Page;
use stockmesh_core::{
    CorrelationId, ItemState, Movement, MovementKind, ProductId, PurchaseId, PurchaseQuantity,
    Quantity, RequestId, Timestamp, Version,
};

/// An item row as stored: `(product_id, quantity, version, updated_at)`.
type ItemRow = (String, i64, i64, i64);

fn corrupt(what: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("corrupt {what} row: {error}").into())
}

fn item_from_row((product_id, quantity, version, updated_at): ItemRow) -> sqlx::Result<ItemState> {
    Ok(ItemState {
        product_id: ProductId::parse(product_id).map_err(|e| corrupt("item", e))?,
        quantity: Quantity::new(quantity).map_err(|e| corrupt("item", e))?,
        version: Version::try_from(version).map_err(|e| corrupt("item", e))?,
        updated_at: stockmesh_core::from_millis(updated_at),
    })
}

fn items_from_rows(rows: Vec<ItemRow>) -> sqlx::Result<Vec<ItemState>> {
    rows.into_iter().map(item_from_row).collect()
}

/// One item, if the store carries it.
pub async fn find_item(
    conn: impl sqlx::SqliteExecutor<'_>,
    product: &ProductId,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "SELECT product_id, quantity, version, updated_at FROM items WHERE product_id = ?",
    )
    .bind(product.as_str())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// One page of items ordered by product id, and how many items there are in all.
pub async fn list_items(pool: &SqlitePool, page: Page) -> sqlx::Result<(Vec<ItemState>, u64)> {
    let rows = sqlx::query_as::<_, ItemRow>(
        "SELECT product_id, quantity, version, updated_at FROM items
         ORDER BY product_id LIMIT ? OFFSET ?",
    )
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(pool)
        .await?;
    Ok((items_from_rows(rows)?, total.unsigned_abs()))
}

/// Every item in product order, `limit` at a time after `after` (for snapshots).
pub async fn items_after(
    conn: impl sqlx::SqliteExecutor<'_>,
    after: Option<&ProductId>,
    limit: i64,
) -> sqlx::Result<Vec<ItemState>> {
    let rows = sqlx::query_as::<_, ItemRow>(
        "SELECT product_id, quantity, version, updated_at FROM items
         WHERE product_id > ? ORDER BY product_id LIMIT ?",
    )
    .bind(after.map_or("", ProductId::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    items_from_rows(rows)
}

/// Inserts a new item with quantity 0 at version 1; `None` if the product already exists.
pub async fn insert_item(
    conn: &mut SqliteConnection,
    product: &ProductId,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "INSERT INTO items (product_id, quantity, version, updated_at) VALUES (?, 0, 1, ?)
         ON CONFLICT (product_id) DO NOTHING
         RETURNING product_id, quantity, version, updated_at",
    )
    .bind(product.as_str())
    .bind(at.timestamp_millis())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// Sets an item's quantity and bumps its version; `None` if the product does not exist.
pub async fn set_quantity(
    conn: &mut SqliteConnection,
    product: &ProductId,
    quantity: Quantity,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "UPDATE items SET quantity = ?, version = version + 1, updated_at = ?
         WHERE product_id = ?
         RETURNING product_id, quantity, version, updated_at",
    )
    .bind(i64::from(quantity))
    .bind(at.timestamp_millis())
    .bind(product.as_str())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// Takes `amount` units if at least that many are in stock, bumping the version; `None` when the
/// product is missing or short. The check and the decrement are one statement, so two purchases
/// can never both take the last unit.
pub async fn take_stock(
    conn: &mut SqliteConnection,
    product: &ProductId,
    amount: PurchaseQuantity,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "UPDATE items SET quantity = quantity - ?1, version = version + 1, updated_at = ?2
         WHERE product_id = ?3 AND quantity >= ?1
         RETURNING product_id, quantity, version, updated_at",
    )
    .bind(i64::from(amount))
    .bind(at.timestamp_millis())
    .bind(product.as_str())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// Appends a ledger line for `product`.
pub async fn append_movement(
    conn: &mut SqliteConnection,
    product: &ProductId,
    movement: &Movement,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO movements
            (product_id, kind, delta, quantity, version, at, correlation_id, purchase_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(product.as_str())
    .bind(movement.kind.as_str())
    .bind(movement.delta)
    .bind(i64::from(movement.quantity))
    .bind(i64::from(movement.version))
    .bind(movement.at.timestamp_millis())
    .bind(movement.correlation_id.as_ref().map(CorrelationId::as_str))
    .bind(movement.purchase_id.map(|id| id.to_string()))
    .execute(conn)
    .await?;
    Ok(())
}

/// A movement row as stored.
type MovementRow = (String, i64, i64, i64, i64, Option<String>, Option<String>);

fn movement_from_row(
    (kind, delta, quantity, version, at, correlation, purchase): MovementRow,
) -> sqlx::Result<Movement> {
    Ok(Movement {
        kind: MovementKind::from_name(&kind).ok_or_else(|| corrupt("movement", &kind))?,
        delta,
        quantity: Quantity::new(quantity).map_err(|e| corrupt("movement", e))?,
        version: Version::try_from(version).map_err(|e| corrupt("movement", e))?,
        at: stockmesh_core::from_millis(at),
        correlation_id: correlation.as_deref().and_then(CorrelationId::from_client),
        purchase_id: purchase
            .as_deref()
            .map(PurchaseId::parse)
            .transpose()
            .map_err(|e| corrupt("movement", e))?,
    })
}

/// One page of an item's ledger, newest first, and how many lines it has in all.
pub async fn list_movements(
    pool: &SqlitePool,
    product: &ProductId,
    page: Page,
) -> sqlx::Result<(Vec<Movement>, u64)> {
    let rows = sqlx::query_as::<_, MovementRow>(
        "SELECT kind, delta, quantity, version, at, correlation_id, purchase_id
         FROM movements WHERE product_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
    )
    .bind(product.as_str())
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM movements WHERE product_id = ?")
        .bind(product.as_str())
        .fetch_one(pool)
        .await?;
    let movements = rows
        .into_iter()
        .map(movement_from_row)
        .collect::<sqlx::Result<_>>()?;
    Ok((movements, total.unsigned_abs()))
}

/// Whether the store has already decided request `request`, of any kind.
pub async fn is_decided(
    conn: impl sqlx::SqliteExecutor<'_>,
    request: RequestId,
) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM decisions WHERE request_id = ?")
        .bind(request.to_string())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// A decision on a store-decided request, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRow<'a> {
    /// The request decided.
    pub request: RequestId,
    /// Its kind, e.g. `REMOTE_PURCHASE`.
    pub kind: &'static str,
    /// The product it concerns.
    pub product: &'a ProductId,
    /// The units it asked for.
    pub quantity: i64,
    /// `CONFIRMED`, or the rejection reason.
    pub outcome: &'static str,
    /// When it was decided.
    pub at: Timestamp,
}

/// Records a decision; fails with a unique violation if the request was decided before.
pub async fn record_decision(
    conn: &mut SqliteConnection,
    decision: DecisionRow<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO decisions (request_id, kind, product_id, quantity, outcome, decided_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(decision.request.to_string())
    .bind(decision.kind)
    .bind(decision.product.as_str())
    .bind(decision.quantity)
    .bind(decision.outcome)
    .bind(decision.at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps the reply event (JSON) sent for a decided request, to tell it again when asked.
pub async fn record_reply(
    conn: &mut SqliteConnection,
    request: RequestId,
    reply: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE decisions SET reply = ? WHERE request_id = ?")
        .bind(reply)
        .bind(request.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// The reply event (JSON) sent for a decided request: `None` if undecided, `Some(None)` if
/// decided before replies were kept.
pub async fn decided_reply(
    conn: impl sqlx::SqliteExecutor<'_>,
    request: RequestId,
) -> sqlx::Result<Option<Option<String>>> {
    sqlx::query_scalar("SELECT reply FROM decisions WHERE request_id = ?")
        .bind(request.to_string())
        .fetch_optional(conn)
        .await
}
