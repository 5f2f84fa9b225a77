//! A remote purchase as the store decides it: enough units in stock and the deadline not passed
//! → the units leave the shelf (a `remote_sale` in the ledger) and Central hears
//! `REMOTE_PURCHASE_CONFIRMED` with what remains; otherwise `REMOTE_PURCHASE_REJECTED` with the
//! reason and nothing changes. The once-only, deadline and stock-taking mechanics are
//! [`crate::decided`]'s.

use sqlx::AnyConnection;
use stockmesh_core::{
    CorrelationId, Event, MovementKind, ProductId, RemotePurchaseCommand, RemotePurchaseConfirmed,
    RemotePurchaseRejected, RequestId, Timestamp,
};

use crate::decided::{Decide, Decision, Taking, take_or_refuse};
use crate::error::StoreError;
use crate::service::{Change, StoreService};

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
