//! Transfers as the stores decide them (issue 17), on the store-decided mechanism
//! ([`crate::decided`]):
//! - the sending store decides the shipment ([`TransferShipCommand`]): enough *available* units
//!   and the deadline not passed → they leave the shelf (`transfer_out`), in transit,
//!   `TRANSFER_SHIPPED`; otherwise `TRANSFER_REJECTED` and nothing moves;
//! - the receiving store adds them ([`TransferReceiveCommand`]), creating the item if it does not
//!   carry the product: at once (`transfer_in`, `TRANSFER_RECEIVED`), or, when the transfer asks
//!   for it, once a person confirms receipt ([`confirm_receipt`], `POST /transfers/{id}/receive`);
//!   a receive command has no deadline, so a store that was away for an hour completes it on its
//!   return. Units going back to the sender of a cancelled transfer are received the same way.
//!
//! Each side's row in `transfers` and its ledger line are written in the transaction that moves
//! the units, and the ledger holds at most one `transfer_out` and one `transfer_in` per transfer
//! and store.

use sqlx::AnyConnection;
use stockmesh_core::{
    CorrelationId, Event, Item, MovementKind, ProductId, RequestId, Timestamp, TransferArrived,
    TransferId, TransferReceiveCommand, TransferReceived, TransferRejected, TransferShipCommand,
    TransferShipped,
};

use crate::decided::{Decide, Decision, Taking, take_or_refuse};
use crate::error::StoreError;
use crate::repository::{self as repo, TransferRow};
use crate::service::{Change, StoreService};

impl Decide for TransferShipCommand {
    const KIND: &'static str = "TRANSFER_SHIP";

    fn request_id(&self) -> RequestId {
        self.transfer_id.into()
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
            Event::TransferRejected(TransferRejected {
                transfer_id: self.transfer_id,
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
        let row = TransferRow {
            transfer_id: self.transfer_id,
            product_id: self.product_id.clone(),
            quantity: self.quantity,
            peer: self.to.clone(),
            state: "SHIPPED".into(),
        };
        repo::insert_transfer(conn, "OUT", &row, now).await?;
        let change = Change {
            transfer: Some(self.transfer_id),
            ..Change::plain(MovementKind::TransferOut, -i64::from(self.quantity))
        };
        store
            .record_movement(conn, &state, change, correlation)
            .await?;
        store.count_mutation(MovementKind::TransferOut);
        Ok(Decision {
            outcome: "CONFIRMED",
            reply: Event::TransferShipped(TransferShipped {
                transfer_id: self.transfer_id,
                quantity: self.quantity,
                item: state,
            }),
        })
    }
}

/// Adds a transfer's units to this store's shelf (creating the item if needed): ledger line and
/// `TRANSFER_RECEIVED`, in the caller's transaction.
async fn put_on_shelf(
    store: &StoreService,
    conn: &mut AnyConnection,
    row: &TransferRow,
    returned: bool,
    now: Timestamp,
    correlation: Option<&CorrelationId>,
) -> Result<Event, StoreError> {
    if let Some(created) = repo::insert_item(conn, &row.product_id, now).await? {
        store
            .record_movement(
                conn,
                &created,
                Change::plain(MovementKind::Created, 0),
                correlation,
            )
            .await?;
        store
            .emit(
                conn,
                Event::InventoryItemCreated(created),
                correlation.cloned(),
            )
            .await?;
        store.count_mutation(MovementKind::Created);
    }
    let state = repo::adjust_stock(conn, &row.product_id, i64::from(row.quantity), now)
        .await?
        .ok_or(StoreError::Invariant(
            "units in transit would exceed the largest quantity on hand",
        ))?;
    let change = Change {
        transfer: Some(row.transfer_id),
        reason: returned.then(|| "returned".to_owned()),
        ..Change::plain(MovementKind::TransferIn, i64::from(row.quantity))
    };
    store
        .record_movement(conn, &state, change, correlation)
        .await?;
    store.count_mutation(MovementKind::TransferIn);
    Ok(Event::TransferReceived(TransferReceived {
        transfer_id: row.transfer_id,
        quantity: row.quantity,
        returned,
        item: state,
    }))
}

impl Decide for TransferReceiveCommand {
    const KIND: &'static str = "TRANSFER_RECEIVE";

    fn request_id(&self) -> RequestId {
        // One receive per transfer and store: the id is the transfer's, under its own kind, and
        // the store's `transfers` row (one `IN` per transfer) keeps it once.
        self.transfer_id.receipt_request()
    }

    fn deadline(&self) -> Timestamp {
        // Units in transit must arrive however long the store was away.
        stockmesh_core::never()
    }

    fn subject(&self) -> (&ProductId, i64) {
        (&self.product_id, i64::from(self.quantity))
    }

    async fn decide(
        &self,
        store: &StoreService,
        conn: &mut AnyConnection,
        now: Timestamp,
        _expired: bool,
        correlation: Option<&CorrelationId>,
    ) -> Result<Decision, StoreError> {
        let wait = self.confirm && !self.returning;
        let row = TransferRow {
            transfer_id: self.transfer_id,
            product_id: self.product_id.clone(),
            quantity: self.quantity,
            peer: self.from.clone(),
            state: if wait { "AWAITING" } else { "RECEIVED" }.into(),
        };
        repo::insert_transfer(conn, "IN", &row, now).await?;
        if wait {
            return Ok(Decision {
                outcome: "AWAITING",
                reply: Event::TransferArrived(TransferArrived {
                    transfer_id: self.transfer_id,
                }),
            });
        }
        let reply = put_on_shelf(store, conn, &row, self.returning, now, correlation).await?;
        Ok(Decision {
            outcome: "CONFIRMED",
            reply,
        })
    }
}

/// Confirms receipt of a transfer waiting at this store: the units go on the shelf and Central
/// hears `TRANSFER_RECEIVED`. 404 when no such transfer waits here, 409 when already received.
pub async fn confirm_receipt(
    store: &StoreService,
    transfer: TransferId,
    correlation: Option<CorrelationId>,
) -> Result<Item, StoreError> {
    let item = store
        .write(move |store, tx| {
            Box::pin(async move {
                let now = stockmesh_core::now();
                let Some(row) = repo::confirm_incoming(&mut *tx, transfer, now).await? else {
                    return Err(match repo::find_incoming(&mut *tx, transfer).await? {
                        Some(_) => StoreError::TransferAlreadyReceived(transfer),
                        None => StoreError::TransferNotFound(transfer),
                    });
                };
                let event =
                    put_on_shelf(&store, tx, &row, false, now, correlation.as_ref()).await?;
                let Event::TransferReceived(received) = &event else {
                    return Err(StoreError::Invariant("a receipt produced another event"));
                };
                let item = store.item(received.item.clone());
                store.emit(tx, event, correlation).await?;
                Ok(item)
            })
        })
        .await?;
    store.outbox_signal().notify();
    Ok(item)
}
