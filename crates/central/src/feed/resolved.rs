//! What the feed announces of the store-decided requests a batch resolved: remote purchases,
//! reservations held, refused or ended, transfers shipped, refused or received. Read from the
//! batch's fresh events (the inbox already dropped repeats), so each is announced once; a reply
//! that resolved nothing (stale, or for a request Central does not know) is not announced.

use stockmesh_core::{Envelope, Event, RequestId, ReservationEnd};

use super::Change;
use crate::purchase::PurchaseStatus;
use crate::reservation::ReservationStatus;
use crate::transfer::TransferStatus;

/// The feed's record of the requests among `events` that this batch resolved (`decided`: the
/// requests it woke), and of the ends and receipts it recorded.
pub(crate) fn changes(events: &[&Envelope], decided: &[RequestId]) -> Vec<Change> {
    let woke = |id: RequestId| decided.contains(&id);
    events
        .iter()
        .filter_map(|envelope| {
            let store_id = envelope.store_id.clone();
            match &envelope.event {
                Event::RemotePurchaseConfirmed(reply) => {
                    woke(reply.purchase_id.into()).then(|| Change::Purchase {
                        purchase_id: reply.purchase_id,
                        store_id,
                        product_id: reply.item.product_id.clone(),
                        status: PurchaseStatus::Confirmed,
                        reason: None,
                        quantity: Some(reply.item.quantity.get()),
                    })
                }
                Event::RemotePurchaseRejected(reply) => {
                    woke(reply.purchase_id.into()).then(|| Change::Purchase {
                        purchase_id: reply.purchase_id,
                        store_id,
                        product_id: reply.product_id.clone(),
                        status: PurchaseStatus::Rejected,
                        reason: Some(reply.reason),
                        quantity: reply.item.as_ref().map(|i| i.quantity.get()),
                    })
                }
                Event::ReservationHeld(reply) => {
                    woke(reply.reservation_id.into()).then(|| Change::Reservation {
                        reservation_id: reply.reservation_id,
                        store_id,
                        product_id: reply.item.product_id.clone(),
                        status: ReservationStatus::Held,
                    })
                }
                Event::ReservationRejected(reply) => {
                    woke(reply.reservation_id.into()).then(|| Change::Reservation {
                        reservation_id: reply.reservation_id,
                        store_id,
                        product_id: reply.product_id.clone(),
                        status: ReservationStatus::Rejected,
                    })
                }
                Event::ReservationEnded(ended) => Some(Change::Reservation {
                    reservation_id: ended.reservation_id,
                    store_id,
                    product_id: ended.item.product_id.clone(),
                    status: match ended.end {
                        ReservationEnd::Committed => ReservationStatus::Committed,
                        ReservationEnd::Released => ReservationStatus::Released,
                        ReservationEnd::Expired => ReservationStatus::Expired,
                    },
                }),
                Event::TransferShipped(reply) => {
                    woke(reply.transfer_id.into()).then(|| Change::Transfer {
                        transfer_id: reply.transfer_id,
                        store_id,
                        product_id: reply.item.product_id.clone(),
                        status: TransferStatus::InTransit,
                    })
                }
                Event::TransferRejected(reply) => {
                    woke(reply.transfer_id.into()).then(|| Change::Transfer {
                        transfer_id: reply.transfer_id,
                        store_id,
                        product_id: reply.product_id.clone(),
                        status: TransferStatus::Rejected,
                    })
                }
                // A returned shipment is the end of a cancelled transfer, not a receipt.
                Event::TransferReceived(reply) if !reply.returned => Some(Change::Transfer {
                    transfer_id: reply.transfer_id,
                    store_id,
                    product_id: reply.item.product_id.clone(),
                    status: TransferStatus::Received,
                }),
                _ => None,
            }
        })
        .collect()
}
