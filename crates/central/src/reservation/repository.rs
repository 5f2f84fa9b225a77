//! Every SQL statement on Central's `reservations` and `reservation_actions` tables.

use sqlx::AnyConnection;
use stockmesh_core::{
    ActionId, ActionRefusal, CorrelationId, ProductId, PurchaseQuantity, RejectionReason,
    ReservationAction, ReservationEnd, ReservationId, StoreId, Timestamp, Ttl, from_millis,
};
use stockmesh_http::IdempotencyKey;

use super::{Action, ActionStatus, Reservation, ReservationStatus};
use crate::decided::Stored;
use crate::repository::corrupt;

/// Records a new reservation. Fails with a unique violation if its idempotency key is taken.
pub(crate) async fn insert_reservation(
    conn: &mut AnyConnection,
    r: &Reservation,
    key: Option<&IdempotencyKey>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reservations (reservation_id, store_id, product_id, quantity, ttl_seconds,
            status, reason, expires_at, idempotency_key, fingerprint, correlation_id, created_at,
            deadline, resolved_at, ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(r.reservation_id.to_string())
    .bind(r.store_id.as_str())
    .bind(r.product_id.as_str())
    .bind(i64::from(r.quantity))
    .bind(i64::from(r.ttl))
    .bind(r.status.as_str())
    .bind(r.reason.map(RejectionReason::as_str))
    .bind(r.expires_at.map(|t| t.timestamp_millis()))
    .bind(key.map(IdempotencyKey::as_str))
    .bind(r.fingerprint_text())
    .bind(r.correlation_id.as_ref().map(CorrelationId::as_str))
    .bind(r.created_at.timestamp_millis())
    .bind(r.deadline.timestamp_millis())
    .bind(r.resolved_at.map(|t| t.timestamp_millis()))
    .bind(r.ended_at.map(|t| t.timestamp_millis()))
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending reservation is held until `expires_at`; returns whether it was pending.
pub(crate) async fn hold(
    conn: &mut AnyConnection,
    id: ReservationId,
    expires_at: Timestamp,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE reservations SET status = 'HELD', expires_at = $1, resolved_at = $2
         WHERE reservation_id = $3 AND status = 'PENDING'",
    )
    .bind(expires_at.timestamp_millis())
    .bind(at.timestamp_millis())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A pending reservation was refused; returns whether it was pending.
pub(crate) async fn reject(
    conn: &mut AnyConnection,
    id: ReservationId,
    reason: RejectionReason,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE reservations SET status = 'REJECTED', reason = $1, resolved_at = $2
         WHERE reservation_id = $3 AND status = 'PENDING'",
    )
    .bind(reason.as_str())
    .bind(at.timestamp_millis())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A held (or still pending) reservation ended; returns whether it was open at Central.
pub(crate) async fn end(
    conn: &mut AnyConnection,
    id: ReservationId,
    end: ReservationEnd,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE reservations SET status = $1, ended_at = $2,
            resolved_at = COALESCE(resolved_at, $3)
         WHERE reservation_id = $4 AND status IN ('PENDING', 'HELD')",
    )
    .bind(end.as_str())
    .bind(at.timestamp_millis())
    .bind(at.timestamp_millis())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A reservation row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct ReservationRow {
    reservation_id: String,
    store_id: String,
    product_id: String,
    quantity: i64,
    ttl_seconds: i64,
    status: String,
    reason: Option<String>,
    expires_at: Option<i64>,
    correlation_id: Option<String>,
    created_at: i64,
    deadline: i64,
    resolved_at: Option<i64>,
    ended_at: Option<i64>,
}

impl ReservationRow {
    fn into_reservation(self) -> sqlx::Result<Reservation> {
        let bad = |e: &dyn std::fmt::Display| corrupt("reservation", e);
        Ok(Reservation {
            reservation_id: ReservationId::parse(&self.reservation_id).map_err(|e| bad(&e))?,
            store_id: StoreId::parse(self.store_id).map_err(|e| bad(&e))?,
            product_id: ProductId::parse(self.product_id).map_err(|e| bad(&e))?,
            quantity: PurchaseQuantity::new(self.quantity).map_err(|e| bad(&e))?,
            ttl: Ttl::new(self.ttl_seconds).map_err(|e| bad(&e))?,
            status: ReservationStatus::from_name(&self.status).ok_or_else(|| bad(&self.status))?,
            reason: self.reason.as_deref().and_then(RejectionReason::from_name),
            expires_at: self.expires_at.map(from_millis),
            correlation_id: self
                .correlation_id
                .as_deref()
                .and_then(CorrelationId::from_client),
            created_at: from_millis(self.created_at),
            deadline: from_millis(self.deadline),
            resolved_at: self.resolved_at.map(from_millis),
            ended_at: self.ended_at.map(from_millis),
        })
    }
}

impl Stored for Reservation {
    type Row = ReservationRow;
    const SELECT: &'static str = "SELECT reservation_id, store_id, product_id, quantity, \
         ttl_seconds, status, reason, expires_at, correlation_id, created_at, deadline, \
         resolved_at, ended_at FROM reservations";
    const ID: &'static str = "reservation_id";
    const KEY: &'static str = "idempotency_key";
    const PENDING: &'static str = "status = 'PENDING'";
    const CREATED_AT: &'static str = "created_at";

    fn from_row(row: ReservationRow) -> sqlx::Result<Self> {
        row.into_reservation()
    }
}

/// Records a new action. Fails with a unique violation if its idempotency key is taken.
pub(crate) async fn insert_action(
    conn: &mut AnyConnection,
    a: &Action,
    key: Option<&IdempotencyKey>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reservation_actions (action_id, reservation_id, action, status, reason,
            ended_as, idempotency_key, fingerprint, correlation_id, created_at, deadline,
            resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(a.action_id.to_string())
    .bind(a.reservation_id.to_string())
    .bind(a.action.as_str())
    .bind(a.status.as_str())
    .bind(a.reason.map(ActionRefusal::as_str))
    .bind(a.ended_as.map(ReservationEnd::as_str))
    .bind(key.map(IdempotencyKey::as_str))
    .bind(a.fingerprint_text())
    .bind(a.correlation_id.as_ref().map(CorrelationId::as_str))
    .bind(a.created_at.timestamp_millis())
    .bind(a.deadline.timestamp_millis())
    .bind(a.resolved_at.map(|t| t.timestamp_millis()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Resolves a pending action; returns whether it was pending.
pub(crate) async fn resolve_action(
    conn: &mut AnyConnection,
    id: ActionId,
    status: ActionStatus,
    reason: Option<ActionRefusal>,
    ended_as: Option<ReservationEnd>,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE reservation_actions SET status = $1, reason = $2, ended_as = $3, resolved_at = $4
         WHERE action_id = $5 AND status = 'PENDING'",
    )
    .bind(status.as_str())
    .bind(reason.map(ActionRefusal::as_str))
    .bind(ended_as.map(ReservationEnd::as_str))
    .bind(at.timestamp_millis())
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An action row as stored, with its reservation's store, product and quantity.
#[derive(sqlx::FromRow)]
pub(crate) struct ActionRow {
    action_id: String,
    reservation_id: String,
    action: String,
    status: String,
    reason: Option<String>,
    ended_as: Option<String>,
    correlation_id: Option<String>,
    created_at: i64,
    deadline: i64,
    resolved_at: Option<i64>,
    store_id: String,
    product_id: String,
    quantity: i64,
}

impl ActionRow {
    fn into_action(self) -> sqlx::Result<Action> {
        let bad = |e: &dyn std::fmt::Display| corrupt("reservation action", e);
        Ok(Action {
            action_id: ActionId::parse(&self.action_id).map_err(|e| bad(&e))?,
            reservation_id: ReservationId::parse(&self.reservation_id).map_err(|e| bad(&e))?,
            action: ReservationAction::from_name(&self.action).ok_or_else(|| bad(&self.action))?,
            status: ActionStatus::from_name(&self.status).ok_or_else(|| bad(&self.status))?,
            reason: self.reason.as_deref().and_then(ActionRefusal::from_name),
            ended_as: self.ended_as.as_deref().and_then(ReservationEnd::from_name),
            correlation_id: self
                .correlation_id
                .as_deref()
                .and_then(CorrelationId::from_client),
            created_at: from_millis(self.created_at),
            deadline: from_millis(self.deadline),
            resolved_at: self.resolved_at.map(from_millis),
            store_id: StoreId::parse(self.store_id).map_err(|e| bad(&e))?,
            product_id: ProductId::parse(self.product_id).map_err(|e| bad(&e))?,
            quantity: PurchaseQuantity::new(self.quantity).map_err(|e| bad(&e))?,
        })
    }
}

impl Stored for Action {
    type Row = ActionRow;
    const SELECT: &'static str = "SELECT a.action_id, a.reservation_id, a.action, a.status, \
         a.reason, a.ended_as, a.correlation_id, a.created_at, a.deadline, a.resolved_at, \
         r.store_id, r.product_id, r.quantity \
         FROM reservation_actions a JOIN reservations r ON r.reservation_id = a.reservation_id";
    const ID: &'static str = "a.action_id";
    const KEY: &'static str = "a.idempotency_key";
    const PENDING: &'static str = "a.status = 'PENDING'";
    const CREATED_AT: &'static str = "a.created_at";

    fn from_row(row: ActionRow) -> sqlx::Result<Self> {
        row.into_action()
    }
}
