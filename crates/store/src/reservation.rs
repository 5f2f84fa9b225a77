//! Reservations as the store decides them (issue 16), on the store-decided mechanism
//! ([`crate::decided`]):
//! - a hold ([`ReserveCommand`]): enough *available* units and the deadline not passed → they
//!   move from available to reserved until `expiresAt` (the store's clock + ttl), `reserve` in the
//!   ledger, `RESERVATION_HELD`; otherwise `RESERVATION_REJECTED` and nothing changes;
//! - an action ([`ReservationActionCommand`]): commit (the reserved units leave the shelf as a
//!   sale) or release (they become available again) of an *open* reservation whose time has not
//!   run out → `RESERVATION_ENDED`; otherwise `RESERVATION_ACTION_REJECTED`;
//! - expiry ([`expire_due`]): the store's own clock ends every open reservation whose time ran
//!   out, connected or not; the `RESERVATION_ENDED` event waits in the outbox while offline.
//!
//! A reservation row ends exactly once (`end_reservation` only moves an `OPEN` row), and each
//! end moves the item's units in the same transaction.

use sqlx::AnyConnection;
use stockmesh_core::{
    ActionRefusal, CorrelationId, Event, MovementKind, ProductId, RequestId,
    ReservationActionCommand, ReservationActionRejected, ReservationEnd, ReservationEnded,
    ReservationHeld, ReservationRejected, ReserveCommand, Timestamp,
};

use crate::decided::{Decide, Decision, Taking, take_or_refuse};
use crate::error::StoreError;
use crate::repository::{self as repo, ReservationRow};
use crate::service::{Change, StoreService};

impl Decide for ReserveCommand {
    const KIND: &'static str = "RESERVATION";

    fn request_id(&self) -> RequestId {
        self.reservation_id.into()
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
        // The same rule as a remote purchase: only available units count.
        let subject = (&self.product_id, self.quantity);
        let taking = (Taking::IntoReserve, now, expired);
        let state = match take_or_refuse(conn, subject, taking, |reason, item| {
            Event::ReservationRejected(ReservationRejected {
                reservation_id: self.reservation_id,
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
        let expires_at = now + self.ttl.duration();
        repo::insert_reservation(
            conn,
            self.reservation_id,
            &self.product_id,
            self.quantity,
            now,
            expires_at,
        )
        .await?;
        let change = Change {
            reservation: Some(self.reservation_id),
            ..Change::plain(MovementKind::Reserve, -i64::from(self.quantity))
        };
        store
            .record_movement(conn, &state, change, correlation)
            .await?;
        store.count_mutation(MovementKind::Reserve);
        Ok(Decision {
            outcome: "CONFIRMED",
            reply: Event::ReservationHeld(ReservationHeld {
                reservation_id: self.reservation_id,
                quantity: self.quantity,
                expires_at,
                item: state,
            }),
        })
    }
}

/// Ends an open reservation by `end`: the row, the item's units, the ledger line, in the
/// caller's transaction. Returns the `RESERVATION_ENDED` event to send, or `None` when the
/// reservation had already ended.
async fn end(
    store: &StoreService,
    conn: &mut AnyConnection,
    reservation: &ReservationRow,
    end: ReservationEnd,
    action: Option<stockmesh_core::ActionId>,
    now: Timestamp,
    correlation: Option<&CorrelationId>,
) -> Result<Option<Event>, StoreError> {
    if !repo::end_reservation(conn, reservation.reservation_id, end, now).await? {
        return Ok(None);
    }
    let state = repo::unreserve_stock(
        conn,
        &reservation.product_id,
        reservation.quantity,
        end,
        now,
    )
    .await?
    .ok_or(StoreError::Invariant(
        "an open reservation's units were not reserved",
    ))?;
    let (kind, delta) = match end {
        ReservationEnd::Committed => (MovementKind::ReservedSale, 0),
        ReservationEnd::Released => (MovementKind::Release, i64::from(reservation.quantity)),
        ReservationEnd::Expired => (MovementKind::Expire, i64::from(reservation.quantity)),
    };
    let change = Change {
        reservation: Some(reservation.reservation_id),
        ..Change::plain(kind, delta)
    };
    store
        .record_movement(conn, &state, change, correlation)
        .await?;
    store.count_mutation(kind);
    metrics::counter!("stockmesh_reservations_ended_total", "node" => store.id().to_string(), "end" => end.as_str())
        .increment(1);
    Ok(Some(Event::ReservationEnded(ReservationEnded {
        reservation_id: reservation.reservation_id,
        action_id: action,
        end,
        quantity: reservation.quantity,
        item: state,
    })))
}

impl Decide for ReservationActionCommand {
    const KIND: &'static str = "RESERVATION_ACTION";

    fn request_id(&self) -> RequestId {
        self.action_id.into()
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
        let refuse = |reason: ActionRefusal, state: Option<ReservationEnd>| Decision {
            outcome: reason.as_str(),
            reply: Event::ReservationActionRejected(ReservationActionRejected {
                action_id: self.action_id,
                reservation_id: self.reservation_id,
                reason,
                state,
            }),
        };
        if expired {
            return Ok(refuse(ActionRefusal::Expired, None));
        }
        let Some(reservation) = repo::find_reservation(&mut *conn, self.reservation_id).await?
        else {
            return Ok(refuse(ActionRefusal::NotFound, None));
        };
        if let Some(ended) = reservation.end {
            return Ok(refuse(ActionRefusal::Ended, Some(ended)));
        }
        if reservation.expires_at <= now {
            // Its time ran out before the expiry worker came by: it expires now, and the
            // action finds it ended. The expiry is the store clock's doing, as the worker's
            // would be: it carries no correlation of the refused action (a refused request
            // writes nothing of its own).
            if let Some(expiry) = end(
                store,
                conn,
                &reservation,
                ReservationEnd::Expired,
                None,
                now,
                None,
            )
            .await?
            {
                store.emit(conn, expiry, None).await?;
            }
            return Ok(refuse(ActionRefusal::Ended, Some(ReservationEnd::Expired)));
        }
        let ended = end(
            store,
            conn,
            &reservation,
            self.action.end(),
            Some(self.action_id),
            now,
            correlation,
        )
        .await?
        .ok_or(StoreError::Invariant("an open reservation could not end"))?;
        Ok(Decision {
            outcome: "CONFIRMED",
            reply: ended,
        })
    }
}

/// Expires every open reservation whose time ran out by `now` (up to `limit`), each with its
/// effect, ledger line and `RESERVATION_ENDED` event, in the caller's transaction. Returns how
/// many expired.
pub(crate) async fn expire_due(
    store: &StoreService,
    conn: &mut AnyConnection,
    now: Timestamp,
    limit: i64,
) -> Result<usize, StoreError> {
    let due = repo::due_reservations(&mut *conn, now, limit).await?;
    let mut expired = 0;
    for reservation in &due {
        if let Some(event) = end(
            store,
            conn,
            reservation,
            ReservationEnd::Expired,
            None,
            now,
            None,
        )
        .await?
        {
            store.emit(conn, event, None).await?;
            expired += 1;
        }
    }
    Ok(expired)
}
