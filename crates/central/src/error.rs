//! Central's errors.

use stockmesh_core::{
    ProductId, PurchaseId, PurchaseQuantity, Quantity, RejectionReason, ReservationId, StoreId,
};

/// Why a Central operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    /// Central knows no such store (404).
    #[error("store {0} is not known to Central")]
    StoreNotFound(StoreId),
    /// The store does not carry the product (404).
    #[error("product {product} not found at store {store}")]
    ProductNotFound {
        /// The store.
        store: StoreId,
        /// The product.
        product: ProductId,
    },
    /// The product is carried by no store (404).
    #[error("product {0} is carried by no store")]
    ProductUnknown(ProductId),
    /// No such purchase (404).
    #[error("purchase {0} not found")]
    PurchaseNotFound(PurchaseId),
    /// The store is offline, disconnected, or did not get the purchase in time (503).
    #[error("store {store} is unavailable: {why}")]
    StoreUnavailable {
        /// The store.
        store: StoreId,
        /// Why.
        why: String,
    },
    /// The command reached the store after its deadline; nothing was bought (503).
    #[error(
        "store {0} is unavailable: the purchase reached it after its deadline; nothing was bought"
    )]
    PurchaseExpired(StoreId),
    /// No such reservation (404).
    #[error("reservation {0} not found")]
    ReservationNotFound(ReservationId),
    /// The reservation is not held, so it cannot be committed or released (409).
    #[error("reservation {reservation} is {state}")]
    ReservationNotOpen {
        /// The reservation.
        reservation: ReservationId,
        /// Its state, in words ("already committed", "expired", …).
        state: &'static str,
    },
    /// A request reached the store after its deadline; nothing changed (503).
    #[error("store {0} is unavailable: the request reached it after its deadline; nothing changed")]
    CommandExpired(StoreId),
    /// The store has fewer available (unreserved) units than asked (409).
    #[error(
        "insufficient stock for product {product} at store {store}: fewer than {requested} units available"
    )]
    NotAvailable {
        /// The store.
        store: StoreId,
        /// The product.
        product: ProductId,
        /// Units asked for.
        requested: PurchaseQuantity,
    },
    /// No such transfer (404).
    #[error("transfer {0} not found")]
    TransferNotFound(stockmesh_core::TransferId),
    /// The transfer has left the requested state: it cannot be cancelled (409).
    #[error("transfer {transfer} cannot be cancelled: it is {state}")]
    TransferNotCancellable {
        /// The transfer.
        transfer: stockmesh_core::TransferId,
        /// Its state, in words.
        state: &'static str,
    },
    /// The store holds fewer units than asked (409).
    #[error(
        "insufficient stock for product {product} at store {store}: {available} available, {requested} requested"
    )]
    InsufficientStock {
        /// The store.
        store: StoreId,
        /// The product.
        product: ProductId,
        /// Units available.
        available: Quantity,
        /// Units asked for.
        requested: PurchaseQuantity,
    },
    /// An `Idempotency-Key` reused with a different request (422).
    #[error("Idempotency-Key was first used for a different purchase ({0})")]
    IdempotencyMismatch(String),
    /// Another request with the same `Idempotency-Key` is still being recorded (400).
    #[error("Idempotency-Key is in use by a request still being recorded; retry")]
    IdempotencyKeyInFlight,
    /// A rule Central's own code must keep was broken (500; logged, not shown).
    #[error("internal invariant broken: {0}")]
    Invariant(&'static str),
    /// The database failed (500; logged, not shown).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The group commit holding the write failed or stopped; nothing of it is durable (500;
    /// logged, not shown).
    #[error("write not done: {0}")]
    Write(#[from] stockmesh_bus::WriteError),
}

impl CentralError {
    /// How a store's refusal of a hold or a shipment reads for the client: the reason the store
    /// gave (none recorded reads as not enough units), naming the store, product and units.
    pub(crate) fn refused_by_store(
        reason: Option<RejectionReason>,
        store: StoreId,
        product: ProductId,
        requested: PurchaseQuantity,
    ) -> Self {
        match reason {
            Some(RejectionReason::ProductNotFound) => {
                CentralError::ProductNotFound { store, product }
            }
            Some(RejectionReason::Expired) => CentralError::CommandExpired(store),
            Some(RejectionReason::InsufficientStock) | None => CentralError::NotAvailable {
                store,
                product,
                requested,
            },
        }
    }
}
