//! Every SQL statement on Central's `transfers` table.

use sqlx::{AnyConnection, AnyPool};
use stockmesh_core::{
    CorrelationId, Page, ProductId, PurchaseQuantity, RejectionReason, StoreId, Timestamp,
    TransferId, from_millis,
};
use stockmesh_http::IdempotencyKey;

use super::{Transfer, TransferStatus};
use crate::decided::Stored;
use crate::repository::corrupt;

/// Records a new transfer. Fails with a unique violation if its idempotency key is taken.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    t: &Transfer,
    key: Option<&IdempotencyKey>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO transfers (transfer_id, from_store, to_store, product_id, quantity, confirm,
            status, reason, idempotency_key, fingerprint, correlation_id, created_at, deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(t.transfer_id.to_string())
    .bind(t.from.as_str())
    .bind(t.to.as_str())
    .bind(t.product_id.as_str())
    .bind(i64::from(t.quantity))
    .bind(i64::from(t.confirm_receipt))
    .bind(t.status.as_str())
    .bind(t.reason.map(RejectionReason::as_str))
    .bind(key.map(IdempotencyKey::as_str))
    .bind(t.fingerprint_text())
    .bind(t.correlation_id.as_ref().map(CorrelationId::as_str))
    .bind(t.created_at.timestamp_millis())
    .bind(t.deadline.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs one conditional update of a transfer; returns whether it matched.
async fn update(
    conn: &mut AnyConnection,
    sql: &'static str,
    id: TransferId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(sql)
        .bind(at.timestamp_millis())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A requested transfer shipped: in transit. Returns whether it was requested.
pub(crate) async fn ship(
    conn: &mut AnyConnection,
    id: TransferId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    update(
        conn,
        "UPDATE transfers SET status = 'IN_TRANSIT', shipped_at = $1
         WHERE transfer_id = $2 AND status = 'REQUESTED'",
        id,
        at,
    )
    .await
}

/// A cancelled transfer's shipment crossed the cancel: its units are on their way back.
/// Returns whether this is news.
pub(crate) async fn ship_cancelled(
    conn: &mut AnyConnection,
    id: TransferId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    update(
        conn,
        "UPDATE transfers SET shipped_at = $1
         WHERE transfer_id = $2 AND status = 'CANCELLED' AND shipped_at IS NULL",
        id,
        at,
    )
    .await
}

/// The sending store refused; returns whether it was requested.
pub(crate) async fn reject(
    conn: &mut AnyConnection,
    id: TransferId,
    reason: RejectionReason,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE transfers SET status = 'REJECTED', reason = $1, rejected_at = $2
         WHERE transfer_id = $3 AND status = 'REQUESTED'",
    )
    .bind(reason.as_str())
    .bind(at.timestamp_millis())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The units reached the receiving store and wait for a person.
pub(crate) async fn arrive(
    conn: &mut AnyConnection,
    id: TransferId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    update(
        conn,
        "UPDATE transfers SET arrived_at = $1
         WHERE transfer_id = $2 AND status = 'IN_TRANSIT' AND arrived_at IS NULL",
        id,
        at,
    )
    .await
}

/// The units are on the receiving shelf; returns whether it was in transit.
pub(crate) async fn receive(
    conn: &mut AnyConnection,
    id: TransferId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    update(
        conn,
        "UPDATE transfers SET status = 'RECEIVED', received_at = $1
         WHERE transfer_id = $2 AND status = 'IN_TRANSIT'",
        id,
        at,
    )
    .await
}

/// The units of a cancelled transfer are back on the sender's shelf.
pub(crate) async fn returned(
    conn: &mut AnyConnection,
    id: TransferId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    update(
        conn,
        "UPDATE transfers SET returned_at = $1
         WHERE transfer_id = $2 AND status = 'CANCELLED' AND returned_at IS NULL",
        id,
        at,
    )
    .await
}

/// Cancels a requested transfer; returns whether it was requested.
pub(crate) async fn cancel(
    conn: &mut AnyConnection,
    id: TransferId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    update(
        conn,
        "UPDATE transfers SET status = 'CANCELLED', cancelled_at = $1
         WHERE transfer_id = $2 AND status = 'REQUESTED'",
        id,
        at,
    )
    .await
}

/// A transfer row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct TransferRow {
    transfer_id: String,
    from_store: String,
    to_store: String,
    product_id: String,
    quantity: i64,
    confirm: i64,
    status: String,
    reason: Option<String>,
    correlation_id: Option<String>,
    created_at: i64,
    deadline: i64,
    shipped_at: Option<i64>,
    arrived_at: Option<i64>,
    received_at: Option<i64>,
    rejected_at: Option<i64>,
    cancelled_at: Option<i64>,
    returned_at: Option<i64>,
}

impl TransferRow {
    fn into_transfer(self) -> sqlx::Result<Transfer> {
        let bad = |e: &dyn std::fmt::Display| corrupt("transfer", e);
        Ok(Transfer {
            transfer_id: TransferId::parse(&self.transfer_id).map_err(|e| bad(&e))?,
            from: StoreId::parse(self.from_store).map_err(|e| bad(&e))?,
            to: StoreId::parse(self.to_store).map_err(|e| bad(&e))?,
            product_id: ProductId::parse(self.product_id).map_err(|e| bad(&e))?,
            quantity: PurchaseQuantity::new(self.quantity).map_err(|e| bad(&e))?,
            confirm_receipt: self.confirm != 0,
            status: TransferStatus::from_name(&self.status).ok_or_else(|| bad(&self.status))?,
            reason: self.reason.as_deref().and_then(RejectionReason::from_name),
            correlation_id: self
                .correlation_id
                .as_deref()
                .and_then(CorrelationId::from_client),
            created_at: from_millis(self.created_at),
            deadline: from_millis(self.deadline),
            shipped_at: self.shipped_at.map(from_millis),
            arrived_at: self.arrived_at.map(from_millis),
            received_at: self.received_at.map(from_millis),
            rejected_at: self.rejected_at.map(from_millis),
            cancelled_at: self.cancelled_at.map(from_millis),
            returned_at: self.returned_at.map(from_millis),
        })
    }
}

impl Stored for Transfer {
    type Row = TransferRow;
    const SELECT: &'static str = "SELECT transfer_id, from_store, to_store, product_id, quantity, \
         confirm, status, reason, correlation_id, created_at, deadline, shipped_at, arrived_at, \
         received_at, rejected_at, cancelled_at, returned_at FROM transfers";
    const ID: &'static str = "transfer_id";
    const KEY: &'static str = "idempotency_key";
    // A transfer's request is its shipment, which the sending store decides.
    const PENDING: &'static str = "status = 'REQUESTED'";
    const CREATED_AT: &'static str = "created_at";

    fn from_row(row: TransferRow) -> sqlx::Result<Self> {
        row.into_transfer()
    }
}

/// One page of the transfers a store sends or receives (all when `store` is `None`), newest
/// first, and the total.
pub(crate) async fn list(
    pool: &AnyPool,
    store: Option<&StoreId>,
    page: Page,
) -> sqlx::Result<(Vec<Transfer>, u64)> {
    let store = store.map(StoreId::as_str);
    let sql = format!(
        "{} WHERE ($1 IS NULL OR from_store = $1 OR to_store = $1)
         ORDER BY created_at DESC, transfer_id DESC LIMIT $2 OFFSET $3",
        Transfer::SELECT
    );
    let rows = sqlx::query_as::<_, TransferRow>(sqlx::AssertSqlSafe(sql))
        .bind(store)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(pool)
        .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM transfers WHERE ($1 IS NULL OR from_store = $1 OR to_store = $1)",
    )
    .bind(store)
    .fetch_one(pool)
    .await?;
    let transfers = rows
        .into_iter()
        .map(TransferRow::into_transfer)
        .collect::<sqlx::Result<_>>()?;
    Ok((transfers, total.unsigned_abs()))
}

/// Units of `product` shipped and not yet on a shelf (received or returned).
pub(crate) async fn in_transit(pool: &AnyPool, product: &ProductId) -> sqlx::Result<u64> {
    let units: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM transfers
         WHERE product_id = $1 AND shipped_at IS NOT NULL AND received_at IS NULL
           AND returned_at IS NULL",
    )
    .bind(product.as_str())
    .fetch_one(pool)
    .await?;
    Ok(units.unsigned_abs())
}
