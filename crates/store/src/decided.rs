//! Commands this store decides: the store's half of every store-decided flow (DESIGN §7).
//!
//! Central records a request and sends its command; here, inside the command consumer's
//! transaction, [`decide_once`] skips a request already decided (a redelivered command, or two
//! commands for one request), refuses one past its deadline, and otherwise lets the flow decide;
//! the decision, its effect on the shelf and its reply event for Central are written in that one
//! transaction. A new flow adds only its [`Decide`] implementation and its events. A flow that
//! takes available units (a purchase, a shipment, a hold) does it with [`take_or_refuse`], which
//! applies the store's rule ([`judge`]) to a refusal.
//!
//! Central sends a command again when no reply came (the command or the reply was lost, e.g. by
//! a broker that restarted empty), with the same request id; before the deadline the command may
//! still be decided, after it the store refuses it as expired. A command for a request decided
//! before is answered with the reply recorded with the decision: Central asks, the store tells
//! the same decision again, and nothing is applied twice.

use sqlx::AnyConnection;
use stockmesh_core::{
    CorrelationId, Event, ItemState, ProductId, PurchaseQuantity, Quantity, RejectionReason,
    RequestId, Timestamp,
};

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
    store
        .record_decision(
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
            decision.reply,
            correlation,
        )
        .await?;
    Ok(true)
}

/// The store's rule: a late command is refused whatever the stock; an unknown product or too
/// few units in stock refuse it; otherwise it is accepted.
pub(crate) fn judge(
    expired: bool,
    in_stock: Option<Quantity>,
    wanted: PurchaseQuantity,
) -> Result<(), RejectionReason> {
    match in_stock {
        _ if expired => Err(RejectionReason::Expired),
        None => Err(RejectionReason::ProductNotFound),
        Some(stock) if !stock.covers(wanted) => Err(RejectionReason::InsufficientStock),
        Some(_) => Ok(()),
    }
}

/// Where the available units a store-decided request takes go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Taking {
    /// Off the shelf: a purchase, a shipment ([`repo::take_stock`]).
    OffTheShelf,
    /// Into the reserved units: a hold ([`repo::reserve_stock`]).
    IntoReserve,
}

/// Takes `wanted` available units of `product` for a store-decided request, or refuses it with
/// the reply `rejected` makes of the reason and the item as it stands. The guarded update is the
/// check (`… WHERE quantity >= wanted`): a request that can be served costs one statement, and
/// only a refusal reads the item, to tell why ([`judge`]).
pub(crate) async fn take_or_refuse(
    conn: &mut AnyConnection,
    (product, wanted): (&ProductId, PurchaseQuantity),
    (taking, now, expired): (Taking, Timestamp, bool),
    rejected: impl FnOnce(RejectionReason, Option<ItemState>) -> Event,
) -> Result<Result<ItemState, Decision>, StoreError> {
    if !expired {
        let taken = match taking {
            Taking::OffTheShelf => {
                let statement = repo::TAKE_STOCK.alone();
                repo::take_stock(&mut *conn, statement, product, wanted, now).await?
            }
            Taking::IntoReserve => repo::reserve_stock(&mut *conn, product, wanted, now).await?,
        };
        if let Some(state) = taken {
            return Ok(Ok(state));
        }
    }
    let item = repo::find_item(&mut *conn, product).await?;
    // The writer connection is this transaction's alone: the stock that could not be taken
    // cannot have changed since.
    let reason = judge(expired, item.as_ref().map(|i| i.quantity), wanted)
        .err()
        .ok_or(StoreError::Invariant(
            "stock that could not be taken judged sufficient",
        ))?;
    Ok(Err(Decision {
        outcome: reason.as_str(),
        reply: rejected(reason, item),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qty(n: i64) -> Quantity {
        Quantity::new(n).expect("valid")
    }

    fn wanted(n: i64) -> PurchaseQuantity {
        PurchaseQuantity::new(n).expect("valid")
    }

    #[test]
    fn enough_stock_before_the_deadline_is_accepted() {
        assert_eq!(judge(false, Some(qty(5)), wanted(5)), Ok(()));
        assert_eq!(judge(false, Some(qty(9)), wanted(1)), Ok(()));
    }

    #[test]
    fn too_little_stock_is_refused_as_insufficient() {
        assert_eq!(
            judge(false, Some(qty(4)), wanted(5)),
            Err(RejectionReason::InsufficientStock)
        );
        assert_eq!(
            judge(false, Some(qty(0)), wanted(1)),
            Err(RejectionReason::InsufficientStock)
        );
    }

    #[test]
    fn an_unknown_product_is_refused_as_not_found() {
        assert_eq!(
            judge(false, None, wanted(1)),
            Err(RejectionReason::ProductNotFound)
        );
    }

    #[test]
    fn a_late_command_is_refused_as_expired_whatever_the_stock() {
        assert_eq!(
            judge(true, Some(qty(100)), wanted(1)),
            Err(RejectionReason::Expired)
        );
        assert_eq!(judge(true, None, wanted(1)), Err(RejectionReason::Expired));
    }
}
