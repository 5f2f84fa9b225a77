//! Commands this store decides: the store's half of every store-decided flow (DESIGN §7).
//!
//! Central records a request and sends its command; here, inside the command consumer's
//! transaction, [`decide_once`] skips a request already decided (a redelivered command, or two
//! commands for one request), refuses one past its deadline, and otherwise lets the flow decide;
//! the decision, its effect on the shelf and its reply event for Central are written in that one
//! transaction. A new flow adds only its [`Decide`] implementation and its events.
//!
//! Central sends a command again when no reply came (the command or the reply was lost, e.g. by
//! a broker that restarted empty), with the same request id; before the deadline the command may
//! still be decided, after it the store refuses it as expired. A command for a request decided
//! before is answered with the reply recorded with the decision: Central asks, the store tells
//! the same decision again, and nothing is applied twice.

use sqlx::AnyConnection;
use stockmesh_core::{CorrelationId, Event, ProductId, RequestId, Timestamp};

use crate::error::StoreError;
use crate::repository::{self as repo, DecisionRow};
use crate::service::StoreService;

/// What a flow decided, for the record and for Central.
#[derive(Debug)]
pub(crate) struct Decision {
    /// `CONFIRMED`, or the rejection reason's wire name.
    pub outcome: &'static str,
    /// The reply event for Central.
    pub reply: Event,
}

/// A command from Central that this store decides.
pub(crate) trait Decide: Sync {
    /// The request's kind as recorded with its decision, e.g. `REMOTE_PURCHASE`.
    const KIND: &'static str;

    /// The request the command belongs to; decided at most once.
    fn request_id(&self) -> RequestId;

    /// After this instant the command must be refused.
    fn deadline(&self) -> Timestamp;

    /// The product it concerns, and the units it asks for (recorded with the decision).
    fn subject(&self) -> (&ProductId, i64);

    /// Decides the request inside `conn` and applies its effect when accepted; `expired` says
    /// the deadline has passed (the command must then be refused).
    async fn decide(
        &self,
        store: &StoreService,
        conn: &mut AnyConnection,
        now: Timestamp,
        expired: bool,
        correlation: Option<&CorrelationId>,
    ) -> Result<Decision, StoreError>;
}

/// Decides `command` unless its request was decided before, recording the decision and
/// appending the reply to the outbox in the caller's transaction. Returns whether it was new.
pub(crate) async fn decide_once<C: Decide>(
    store: &StoreService,
    conn: &mut AnyConnection,
    command: &C,
    correlation: Option<CorrelationId>,
) -> Result<bool, StoreError> {
    let request = command.request_id();
    if let Some(reply) = repo::decided_reply(&mut *conn, request).await? {
        match reply.as_deref().map(serde_json::from_str::<Event>) {
            Some(Ok(reply)) => store.emit(conn, reply, correlation).await?,
            Some(Err(error)) => tracing::warn!(%request, %error, "recorded reply unreadable"),
            None => tracing::info!(%request, "decided before replies were kept; cannot tell again"),
        }
        return Ok(false);
    }
    let now = stockmesh_core::now();
    let expired = now >= command.deadline();
    let decision = command
        .decide(store, conn, now, expired, correlation.as_ref())
        .await?;
    let (product, quantity) = command.subject();
    let reply = serde_json::to_string(&decision.reply).map_err(|e| {
        StoreError::Database(sqlx::Error::Encode(
            format!("reply to {request}: {e}").into(),
        ))
    })?;
    repo::record_decision(
        conn,
        DecisionRow {
            request,
            kind: C::KIND,
            product,
            quantity,
            outcome: decision.outcome,
            at: now,
            reply: &reply,
        },
    )
    .await?;
    store.emit(conn, decision.reply, correlation).await?;
    Ok(true)
}
