//! Transfers between stores (issue 17): a saga over the store-decided mechanism
//! ([`crate::decided`]) with two store steps.
//! 1. Central records the transfer `REQUESTED` with the shipment command to the sending store
//!    (`Coordinator::submit`; `impl Request for Transfer`).
//! 2. The sending store decides: `TRANSFER_SHIPPED` (units left its shelf) or `TRANSFER_REJECTED`.
//! 3. [`resolve_replies`] applies the shipment (`IN_TRANSIT`) and, in the same transaction,
//!    queues the receipt command to the receiving store (`decided::send_next`).
//! 4. The receiving store adds the units (at once, or on `POST /transfers/{id}/receive` there when
//!    the transfer asks a person to confirm) and answers `TRANSFER_RECEIVED`: `RECEIVED`.
//!
//! A `REQUESTED` transfer can be cancelled at Central. A shipment that crosses the cancel is sent
//! back: the receipt command goes to the sender (`returning`), so units are never lost.

pub(crate) mod api;
mod repository;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool};
use stockmesh_core::{
    CorrelationId, Envelope, Event, Page, ProductId, PurchaseQuantity, RejectionReason, RequestId,
    StoreId, Timestamp, TransferId, TransferReceiveCommand, TransferShipCommand,
};
use stockmesh_http::IdempotencyKey;

use crate::decided::{Request, send_next};
use crate::error::CentralError;

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferStatus {
    /// Sent to the sending store; not shipped yet.
    Requested,
    /// Shipped: the units left the sending shelf.
    InTransit,
    /// On the receiving shelf.
    Received,
    /// The sending store refused; nothing moved.
    Rejected,
    /// Cancelled before it shipped (a shipment that crossed the cancel returns to the sender).
    Cancelled,
}

impl TransferStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::InTransit => "IN_TRANSIT",
            Self::Received => "RECEIVED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Requested,
            Self::InTransit,
            Self::Received,
            Self::Rejected,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One transfer, as `GET /transfers/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// Its id.
    pub transfer_id: TransferId,
    /// The sending store.
    pub from: StoreId,
    /// The receiving store.
    pub to: StoreId,
    /// The product.
    pub product_id: ProductId,
    /// Units moved.
    pub quantity: PurchaseQuantity,
    /// Whether a person confirms receipt at the receiving store.
    pub confirm_receipt: bool,
    /// Where it stands.
    pub status: TransferStatus,
    /// Why the sending store refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectionReason>,
    /// The request that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// When Central recorded it.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// After this instant the sending store refuses to ship it.
    #[schema(value_type = String, format = DateTime)]
    pub deadline: Timestamp,
    /// When Central learned it shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub shipped_at: Option<Timestamp>,
    /// When Central learned it awaits confirmation at the receiving store.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub arrived_at: Option<Timestamp>,
    /// When Central learned it was received.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub received_at: Option<Timestamp>,
    /// When Central learned it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rejected_at: Option<Timestamp>,
    /// When it was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<Timestamp>,
    /// When the units of a cancelled transfer that had shipped were back at the sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub returned_at: Option<Timestamp>,
}

impl Transfer {
    /// What a create asked for, to tell a genuine retry from a reused key.
    pub fn fingerprint_of(
        from: &StoreId,
        to: &StoreId,
        product: &ProductId,
        quantity: PurchaseQuantity,
        confirm: bool,
    ) -> String {
        format!("{from}>{to}/{product}/{quantity}/{confirm}")
    }

    fn fingerprint_text(&self) -> String {
        Self::fingerprint_of(
            &self.from,
            &self.to,
            &self.product_id,
            self.quantity,
            self.confirm_receipt,
        )
    }

    /// A new requested transfer.
    pub(crate) fn requested(
        from: StoreId,
        to: StoreId,
        product_id: ProductId,
        quantity: PurchaseQuantity,
        confirm_receipt: bool,
        correlation: CorrelationId,
        deadline: Timestamp,
    ) -> Self {
        Self {
            transfer_id: TransferId::new(),
            from,
            to,
            product_id,
            quantity,
            confirm_receipt,
            status: TransferStatus::Requested,
            reason: None,
            correlation_id: Some(correlation),
            created_at: stockmesh_core::now(),
            deadline,
            shipped_at: None,
            arrived_at: None,
            received_at: None,
            rejected_at: None,
            cancelled_at: None,
            returned_at: None,
        }
    }

    /// The receipt command: to the receiving store, or back to the sender when `returning`.
    fn receive_command(&self, returning: bool) -> Envelope {
        let store = if returning { &self.from } else { &self.to };
        Envelope::new(
            store.clone(),
            Event::TransferReceiveRequested(TransferReceiveCommand {
                transfer_id: self.transfer_id,
                product_id: self.product_id.clone(),
                quantity: self.quantity,
                from: self.from.clone(),
                confirm: self.confirm_receipt,
                returning,
            }),
            self.correlation_id.clone(),
        )
    }
}

#[async_trait]
impl Request for Transfer {
    fn request_id(&self) -> RequestId {
        self.transfer_id.into()
    }

    fn store_id(&self) -> &StoreId {
        &self.from
    }

    fn is_pending(&self) -> bool {
        self.status == TransferStatus::Requested
    }

    fn fingerprint(&self) -> String {
        self.fingerprint_text()
    }

    fn command(&self) -> Envelope {
        Envelope::new(
            self.from.clone(),
            Event::TransferShipRequested(TransferShipCommand {
                transfer_id: self.transfer_id,
                product_id: self.product_id.clone(),
                quantity: self.quantity,
                to: self.to.clone(),
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
        repository::insert(tx, self, key).await
    }
}

/// How a transfer request ends for the client.
#[derive(Debug, Clone)]
pub enum TransferAnswer {
    /// Shipped (or further): 201.
    Decided(Transfer),
    /// Still requested after the wait limit: 202.
    Pending(Transfer),
}

/// Maps a recorded transfer to the answer for a create.
pub(crate) fn outcome(t: Transfer) -> Result<TransferAnswer, CentralError> {
    match t.status {
        TransferStatus::Requested => Ok(TransferAnswer::Pending(t)),
        TransferStatus::Rejected => Err(CentralError::refused_by_store(
            t.reason,
            t.from,
            t.product_id,
            t.quantity,
        )),
        _ => Ok(TransferAnswer::Decided(t)),
    }
}

/// Applies the stores' transfer replies inside the caller's transaction, queuing each next step;
/// returns the ids of the transfers that were waiting for their shipment decision.
pub(crate) async fn resolve_replies(
    tx: &mut AnyConnection,
    events: &[&Envelope],
    now: Timestamp,
) -> sqlx::Result<Vec<RequestId>> {
    let mut woken = Vec::new();
    for envelope in events {
        match &envelope.event {
            Event::TransferShipped(reply) => {
                let id = reply.transfer_id;
                let Some(transfer) = crate::decided::find::<Transfer>(&mut *tx, id.into()).await?
                else {
                    continue;
                };
                if repository::ship(tx, id, now).await? {
                    send_next(tx, &transfer.receive_command(false)).await?;
                    woken.push(id.into());
                } else if repository::ship_cancelled(tx, id, now).await? {
                    send_next(tx, &transfer.receive_command(true)).await?;
                    tracing::info!(transfer = %id, "a cancelled transfer had shipped: returning it");
                }
            }
            Event::TransferRejected(reply)
                if repository::reject(tx, reply.transfer_id, reply.reason, now).await? =>
            {
                woken.push(reply.transfer_id.into());
            }
            Event::TransferArrived(reply) => {
                repository::arrive(tx, reply.transfer_id, now).await?;
            }
            Event::TransferReceived(reply) => {
                if reply.returned {
                    repository::returned(tx, reply.transfer_id, now).await?;
                } else {
                    repository::receive(tx, reply.transfer_id, now).await?;
                }
            }
            _ => {}
        }
    }
    Ok(woken)
}

/// One transfer by id.
pub(crate) async fn find(pool: &AnyPool, id: TransferId) -> Result<Option<Transfer>, CentralError> {
    Ok(crate::decided::find(pool, id.into()).await?)
}

/// Cancels a requested transfer; `false` if it was not requested.
pub(crate) async fn cancel(
    conn: &mut AnyConnection,
    id: TransferId,
    now: Timestamp,
) -> Result<bool, CentralError> {
    Ok(repository::cancel(conn, id, now).await?)
}

/// One page of a store's transfers (or all), and the total.
pub(crate) async fn list(
    pool: &AnyPool,
    store: Option<&StoreId>,
    page: Page,
) -> Result<(Vec<Transfer>, u64), CentralError> {
    Ok(repository::list(pool, store, page).await?)
}

/// Units of a product in transit.
pub(crate) async fn in_transit(pool: &AnyPool, product: &ProductId) -> Result<u64, CentralError> {
    Ok(repository::in_transit(pool, product).await?)
}
