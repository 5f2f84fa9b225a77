//! A remote purchase as the store decides it: enough units in stock and the deadline not passed
//! → the units leave the shelf (a `remote_sale` in the ledger) and Central hears
//! `REMOTE_PURCHASE_CONFIRMED` with what remains; otherwise `REMOTE_PURCHASE_REJECTED` with the
//! reason and nothing changes. The once-only and deadline mechanics are [`crate::decided`]'s.

use sqlx::AnyConnection;
use stockmesh_core::{
    CorrelationId, Event, ItemState, MovementKind, ProductId, PurchaseQuantity, Quantity,
    RejectionReason, RemotePurchaseCommand, RemotePurchaseConfirmed, RemotePurchaseRejected,
    RequestId, Timestamp,
};

use crate::decided::{Decide, Decision};
use crate::error::StoreError;
use crate::repository as repo;
use crate::service::{Change, StoreService};

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
            Taking::OffTheShelf => repo::take_stock(&mut *conn, product, wanted, now).await?,
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

impl Decide for RemotePurchaseCommand {
    const KIND: &'static str = "REMOTE_PURCHASE";

    fn request_id(&self) -> RequestId {
        self.purchase_id.into()
    }

    fn deadline(&self) -> Timestamp {
        self.deadline
    }

    fn subject(&self) -> (&ProductId, i64) {
        (&self.product_id, i64::from(self.quantity))
    }

    async fn decide(
        &self,
        store: &StoreService,
        conn: &mut AnyConnection,
        now: Timestamp,
        expired: bool,
        correlation: Option<&CorrelationId>,
    ) -> Result<Decision, StoreError> {
        let subject = (&self.product_id, self.quantity);
        let taking = (Taking::OffTheShelf, now, expired);
        let state = match take_or_refuse(conn, subject, taking, |reason, item| {
            Event::RemotePurchaseRejected(RemotePurchaseRejected {
                purchase_id: self.purchase_id,
                product_id: self.product_id.clone(),
                reason,
                item,
            })
        })
        .await?
        {
            Ok(state) => state,
            Err(refused) => return Ok(refused),
        };
        let change = Change {
            purchase: Some(self.purchase_id),
            ..Change::plain(MovementKind::RemoteSale, -i64::from(self.quantity))
        };
        store
            .record_movement(conn, &state, change, correlation)
            .await?;
        store.count_mutation(MovementKind::RemoteSale);
        Ok(Decision {
            outcome: "CONFIRMED",
            reply: Event::RemotePurchaseConfirmed(RemotePurchaseConfirmed {
                purchase_id: self.purchase_id,
                quantity: self.quantity,
                item: state,
            }),
        })
    }
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
