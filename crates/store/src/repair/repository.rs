//! Every SQL statement of the store's self-healing: the summary row the triggers keep, the digest
//! scan, and the one resynchronisation in progress.

use sqlx::AnyConnection;
use stockmesh_core::{CorrelationId, ItemState, ProductId, Quantity, Timestamp, Version};

fn corrupt(what: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("corrupt {what} row: {error}").into())
}

/// The item count and the sum of versions (the watermark), as the triggers keep them.
pub async fn summary(conn: &mut AnyConnection) -> sqlx::Result<(u64, u64)> {
    let (items, changes): (i64, i64) =
        sqlx::query_as("SELECT items, changes FROM store_summary WHERE id = 1")
            .fetch_one(conn)
            .await?;
    Ok((items.unsigned_abs(), changes.unsigned_abs()))
}

/// Whether a resynchronisation is being sent (read by the store's `/status`, which therefore
/// needs nothing else of `repair`).
pub async fn resync_in_progress(conn: &mut AnyConnection) -> sqlx::Result<bool> {
    Ok(resync_job(conn).await?.is_some())
}

/// `(product, version)` of up to `limit` items after `after`, in product order (digest pages).
pub async fn versions_after(
    conn: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT product_id, version FROM items WHERE product_id > ? ORDER BY product_id LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The resynchronisation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncJob {
    /// Only items changed after this instant (unix ms); every item when `None`.
    pub changed_after: Option<i64>,
    /// `(updated_at, product)` of the last item sent, if any.
    pub cursor: Option<(i64, String)>,
    /// Items sent so far.
    pub sent: i64,
    /// The request that asked for it.
    pub correlation_id: Option<CorrelationId>,
}

/// The resynchronisation in progress, if any.
pub async fn resync_job(conn: &mut AnyConnection) -> sqlx::Result<Option<ResyncJob>> {
    type Row = (
        Option<i64>,
        Option<i64>,
        Option<String>,
        i64,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT changed_after, cursor_at, cursor_product, sent, correlation_id
         FROM resync WHERE id = 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(changed_after, at, product, sent, correlation)| ResyncJob {
            changed_after,
            cursor: at.zip(product),
            sent,
            correlation_id: correlation.and_then(|c| CorrelationId::from_client(&c)),
        },
    ))
}

/// Starts a resynchronisation (replacing the one in progress, from its first page).
pub async fn start_resync(
    conn: &mut AnyConnection,
    changed_after: Option<i64>,
    correlation: Option<&CorrelationId>,
    at: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO resync (id, changed_after, cursor_at, cursor_product,
                                        requested_at, sent, correlation_id)
         VALUES (1, ?, NULL, NULL, ?, 0, ?)",
    )
    .bind(changed_after)
    .bind(at.timestamp_millis())
    .bind(correlation.map(ToString::to_string))
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the resynchronisation's cursor past a page of `sent` items ending at `cursor`.
pub async fn advance_resync(
    conn: &mut AnyConnection,
    cursor: (i64, &str),
    sent: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE resync SET cursor_at = ?, cursor_product = ?, sent = sent + ? WHERE id = 1",
    )
    .bind(cursor.0)
    .bind(cursor.1)
    .bind(sent)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the resynchronisation.
pub async fn finish_resync(conn: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM resync WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` items changed after `changed_after` and after `cursor`, in `(updated_at,
/// product)` order.
pub async fn items_changed_after(
    conn: &mut AnyConnection,
    changed_after: Option<i64>,
    cursor: Option<(i64, &str)>,
    limit: i64,
) -> sqlx::Result<Vec<ItemState>> {
    let (at, product) = cursor.unwrap_or((i64::MIN, ""));
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT product_id, quantity, reserved, version, updated_at FROM items
         WHERE (updated_at, product_id) > (?1, ?2) AND updated_at > ?3
         ORDER BY updated_at, product_id LIMIT ?4",
    )
    .bind(at)
    .bind(product)
    .bind(changed_after.unwrap_or(i64::MIN))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(product_id, quantity, reserved, version, updated_at)| {
            Ok(ItemState {
                product_id: ProductId::parse(product_id).map_err(|e| corrupt("item", e))?,
                quantity: Quantity::new(quantity).map_err(|e| corrupt("item", e))?,
                reserved: Quantity::new(reserved).map_err(|e| corrupt("item", e))?,
                version: Version::try_from(version).map_err(|e| corrupt("item", e))?,
                updated_at: stockmesh_core::from_millis(updated_at),
            })
        })
        .collect()
}
