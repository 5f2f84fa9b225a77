//! Reservations (issue 16): a customer's checkout holds units at a given store until it commits
//! (a sale), releases, or the store's clock expires the hold. Every step is decided by the owning
//! store through the store-decided mechanism ([`crate::decided`]):
//! - the hold is a [`Reservation`] record (`PENDING` → `HELD` until `expiresAt` | `REJECTED`);
//! - each commit or release is an [`Action`] record of its own (`PENDING` → `DONE` | `REJECTED`),
//!   so a retried action is decided once, and two racing actions end the reservation once;
//! - an expiry needs no request: the store sends `RESERVATION_ENDED` by itself, and
//!   [`resolve_replies`] ends the record (`HELD` → `EXPIRED`).

pub(crate) mod api;
mod repository;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool};
use stockmesh_core::{
    ActionId, ActionRefusal, CorrelationId, Envelope, Event, ProductId, PurchaseQuantity,
    RejectionReason, RequestId, ReservationAction, ReservationActionCommand, ReservationEnd,
    ReservationId, ReserveCommand, StoreId, Timestamp, Ttl,
};
use stockmesh_http::IdempotencyKey;

use crate::decided::Request;
use crate::error::CentralError;

/// Where a reservation stands at Central.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Sent to the store; no answer yet.
    Pending,
    /// The store holds the units until `expiresAt`.
    Held,
    /// The store refused; nothing is held.
    Rejected,
    /// Turned into a sale.
    Committed,
    /// Given back.
    Released,
    /// Expired by the store's clock.
    Expired,
}

impl ReservationStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Held => "HELD",
            Self::Rejected => "REJECTED",
            Self::Committed => "COMMITTED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Held,
            Self::Rejected,
            Self::Committed,
            Self::Released,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One reservation, as `GET /reservations/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// Its id.
    pub reservation_id: ReservationId,
    /// The store that holds the units.
    pub store_id: StoreId,
    /// The product.
    pub product_id: ProductId,
    /// Units held.
    pub quantity: PurchaseQuantity,
    /// How long the store holds them (seconds), from its decision.
    pub ttl: Ttl,
    /// Where it stands.
    pub status: ReservationStatus,
    /// Why the store refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectionReason>,
    /// When the store releases the units by itself (set once held).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// The request that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// When Central recorded it.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// After this instant the store refuses to hold it.
    #[schema(value_type = String, format = DateTime)]
    pub deadline: Timestamp,
    /// When the store's answer was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    /// When Central learned that it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
}

impl Reservation {
    /// What a create asked for, to tell a genuine retry from a reused key.
    pub fn fingerprint_of(
        store: &StoreId,
        product: &ProductId,
        quantity: PurchaseQuantity,
        ttl: Ttl,
    ) -> String {
        format!("{store}/{product}/{quantity}/{ttl}")
    }

    fn fingerprint_text(&self) -> String {
        Self::fingerprint_of(&self.store_id, &self.product_id, self.quantity, self.ttl)
    }
}

#[async_trait]
impl Request for Reservation {
    fn request_id(&self) -> RequestId {
        self.reservation_id.into()
    }

    fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    fn is_pending(&self) -> bool {
        self.status == ReservationStatus::Pending
    }

    fn fingerprint(&self) -> String {
        self.fingerprint_text()
    }

    fn command(&self) -> Envelope {
        Envelope::new(
            self.store_id.clone(),
            Event::ReservationRequested(ReserveCommand {
                reservation_id: self.reservation_id,
                product_id: self.product_id.clone(),
                quantity: self.quantity,
                ttl: self.ttl,
                deadline: self.deadline,
            }),
            self.correlation_id.clone(),
        )
    }

    async fn insert(
        &self,
        tx: &mut AnyConnection,
        key: Option<&IdempotencyKey>,
    ) -> sqlx::Result<()> {
        repository::insert_reservation(tx, self, key).await
    }
}

/// Where a commit or release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionStatus {
    /// Sent to the store; no answer yet.
    Pending,
    /// The store ended the reservation as asked.
    Done,
    /// The store refused; see the reason.
    Rejected,
}

impl ActionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Done => "DONE",
            Self::Rejected => "REJECTED",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Done, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A commit or release of a reservation: a store-decided request of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// Its id.
    pub action_id: ActionId,
    /// The reservation it acts on.
    pub reservation_id: ReservationId,
    /// Commit or release.
    pub action: ReservationAction,
    /// Where it stands.
    pub status: ActionStatus,
    /// Why the store refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ActionRefusal>,
    /// How the reservation ended (by this action, or before it when refused as ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_as: Option<ReservationEnd>,
    /// The request that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// When Central recorded it.
    pub created_at: Timestamp,
    /// After this instant the store refuses it.
    pub deadline: Timestamp,
    /// When the store's answer was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The reservation's store.
    pub store_id: StoreId,
    /// The reservation's product.
    pub product_id: ProductId,
    /// The reservation's units.
    pub quantity: PurchaseQuantity,
}

impl Action {
    /// What an action asked for, to tell a genuine retry from a reused key.
    pub fn fingerprint_of(action: ReservationAction, reservation: ReservationId) -> String {
        format!("{}/{reservation}", action.as_str())
    }

    fn fingerprint_text(&self) -> String {
        Self::fingerprint_of(self.action, self.reservation_id)
    }

    /// A new pending action on `reservation`.
    pub(crate) fn new(
        reservation: &Reservation,
        action: ReservationAction,
        correlation: CorrelationId,
        deadline: Timestamp,
    ) -> Self {
        Self {
            action_id: ActionId::new(),
            reservation_id: reservation.reservation_id,
            action,
            status: ActionStatus::Pending,
            reason: None,
            ended_as: None,
            correlation_id: Some(correlation),
            created_at: stockmesh_core::now(),
            deadline,
            resolved_at: None,
            store_id: reservation.store_id.clone(),
            product_id: reservation.product_id.clone(),
            quantity: reservation.quantity,
        }
    }
}

#[async_trait]
impl Request for Action {
    fn request_id(&self) -> RequestId {
        self.action_id.into()
    }

    fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    fn is_pending(&self) -> bool {
        self.status == ActionStatus::Pending
    }

    fn fingerprint(&self) -> String {
        self.fingerprint_text()
    }

    fn command(&self) -> Envelope {
        Envelope::new(
            self.store_id.clone(),
            Event::ReservationActionRequested(ReservationActionCommand {
                action_id: self.action_id,
                reservation_id: self.reservation_id,
                action: self.action,
                product_id: self.product_id.clone(),
                quantity: self.quantity,
                deadline: self.deadline,
            }),
            self.correlation_id.clone(),
        )
    }

    async fn insert(
        &self,
        tx: &mut AnyConnection,
        key: Option<&IdempotencyKey>,
    ) -> sqlx::Result<()> {
        repository::insert_action(tx, self, key).await
    }
}

/// How a reservation request ends for the client.
#[derive(Debug, Clone)]
pub enum ReservationAnswer {
    /// Decided (201 for a hold, 200 for an action): the reservation as it now stands.
    Decided(Reservation),
    /// Still pending after the wait limit (202): the status resource.
    Pending(Reservation),
}

/// Maps a recorded reservation to the answer for a create.
pub(crate) fn hold_outcome(r: Reservation) -> Result<ReservationAnswer, CentralError> {
    match r.status {
        ReservationStatus::Pending => Ok(ReservationAnswer::Pending(r)),
        ReservationStatus::Rejected => Err(CentralError::refused_by_store(
            r.reason,
            r.store_id,
            r.product_id,
            r.quantity,
        )),
        // Held, or already ended since: the hold itself succeeded.
        _ => Ok(ReservationAnswer::Decided(r)),
    }
}

/// Maps a recorded action and its reservation to the answer for a commit or release.
pub(crate) fn action_outcome(
    action: &Action,
    reservation: Reservation,
) -> Result<ReservationAnswer, CentralError> {
    match action.status {
        ActionStatus::Pending => Ok(ReservationAnswer::Pending(reservation)),
        ActionStatus::Done => Ok(ReservationAnswer::Decided(reservation)),
        ActionStatus::Rejected => Err(match action.reason {
            Some(ActionRefusal::Expired) => CentralError::CommandExpired(action.store_id.clone()),
            Some(ActionRefusal::NotFound) | None => {
                CentralError::ReservationNotFound(action.reservation_id)
            }
            Some(ActionRefusal::Ended) => CentralError::ReservationNotOpen {
                reservation: action.reservation_id,
                state: action.ended_as.map_or("ended", |end| ended_words(end)),
            },
        }),
    }
}

/// How a refusal names an ended reservation.
pub(crate) fn ended_words(end: ReservationEnd) -> &'static str {
    match end {
        ReservationEnd::Committed => "already committed",
        ReservationEnd::Released => "already released",
        ReservationEnd::Expired => "expired",
    }
}

/// Resolves the reservations and actions that `events` answer (store replies and expiries),
/// inside the caller's transaction; returns the ids of the requests that were pending, to wake
/// after the commit.
pub(crate) async fn resolve_replies(
    tx: &mut AnyConnection,
    events: &[&Envelope],
    now: Timestamp,
) -> sqlx::Result<Vec<RequestId>> {
    let mut woken = Vec::new();
    for envelope in events {
        match &envelope.event {
            Event::ReservationHeld(reply)
                if repository::hold(tx, reply.reservation_id, reply.expires_at, now).await? =>
            {
                woken.push(reply.reservation_id.into());
            }
            Event::ReservationRejected(reply)
                if repository::reject(tx, reply.reservation_id, reply.reason, now).await? =>
            {
                woken.push(reply.reservation_id.into());
            }
            Event::ReservationEnded(ended) => {
                if repository::end(tx, ended.reservation_id, ended.end, now).await? {
                    // A reply to a create still waiting (ended before Central saw it held).
                    woken.push(ended.reservation_id.into());
                }
                if let Some(action) = ended.action_id
                    && repository::resolve_action(
                        tx,
                        action,
                        ActionStatus::Done,
                        None,
                        Some(ended.end),
                        now,
                    )
                    .await?
                {
                    woken.push(action.into());
                }
            }
            Event::ReservationActionRejected(reply) => {
                if let Some(end) = reply.state {
                    repository::end(tx, reply.reservation_id, end, now).await?;
                }
                if repository::resolve_action(
                    tx,
                    reply.action_id,
                    ActionStatus::Rejected,
                    Some(reply.reason),
                    reply.state,
                    now,
                )
                .await?
                {
                    woken.push(reply.action_id.into());
                }
            }
            _ => {}
        }
    }
    Ok(woken)
}

/// Finds a reservation by id.
pub(crate) async fn find(
    pool: &AnyPool,
    id: ReservationId,
) -> Result<Option<Reservation>, CentralError> {
    Ok(crate::decided::find(pool, id.into()).await?)
}
