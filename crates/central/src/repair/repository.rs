//! Every SQL statement of Central's self-healing: its figures per store (kept by triggers on the
//! view), the digest scan, what a replay starts from, and the repair's request.

use sqlx::{AnyConnection, AnyPool};
use stockmesh_core::{StoreId, Timestamp, from_millis};

use crate::repository::corrupt;

/// Every known store with the view's item count and watermark for it.
pub async fn summaries(pool: &AnyPool) -> sqlx::Result<Vec<(StoreId, u64, u64)>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT s.store_id, COALESCE(m.items, 0), COALESCE(m.changes, 0)
         FROM stores s LEFT JOIN store_summary m ON m.store_id = s.store_id
         ORDER BY s.store_id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(store, items, changes)| {
            Ok((
                StoreId::parse(store).map_err(|e| corrupt("store", e))?,
                items.unsigned_abs(),
                changes.unsigned_abs(),
            ))
        })
        .collect()
}

/// `(product, version)` of up to `limit` of `store`'s items after `after`, in product order.
pub async fn versions_after(
    conn: &mut AnyConnection,
    store: &StoreId,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT product_id, version FROM items WHERE store_id = $1 AND product_id > $2
         ORDER BY product_id LIMIT $3",
    )
    .bind(store.as_str())
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The view's watermark for `store` (inside a digest's read transaction).
pub async fn changes(conn: &mut AnyConnection, store: &StoreId) -> sqlx::Result<u64> {
    let changes: Option<i64> =
        sqlx::query_scalar("SELECT changes FROM store_summary WHERE store_id = $1")
            .bind(store.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(changes.unwrap_or(0).unsigned_abs())
}

/// When the store last changed an item the view holds (the store's clock), if any.
pub async fn last_change(pool: &AnyPool, store: &StoreId) -> sqlx::Result<Option<Timestamp>> {
    let at: Option<i64> =
        sqlx::query_scalar("SELECT MAX(updated_at) FROM items WHERE store_id = $1")
            .bind(store.as_str())
            .fetch_one(pool)
            .await?;
    Ok(at.map(from_millis))
}

/// How many of `store`'s items the view updated at or after `since`.
pub async fn updated_since(pool: &AnyPool, store: &StoreId, since: Timestamp) -> sqlx::Result<u64> {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM items WHERE store_id = $1 AND received_at >= $2")
            .bind(store.as_str())
            .bind(since.timestamp_millis())
            .fetch_one(pool)
            .await?;
    Ok(count.unsigned_abs())
}
