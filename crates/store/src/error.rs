//! The Store's errors.

use stockmesh_core::{ProductId, PurchaseQuantity, Quantity};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store does not carry this product (404).
    #[error("product {0} not found at this store")]
    ProductNotFound(ProductId),
    /// A create for a product the store already carries (409).
    #[error("product {0} already exists at this store")]
    ProductAlreadyExists(ProductId),
    /// A purchase of more than is in stock (409).
    #[error(
        "insufficient stock for product {product}: {available} in stock, {requested} requested"
    )]
    InsufficientStock {
        /// The product.
        product: ProductId,
        /// Units in stock.
        available: Quantity,
        /// Units asked for.
        requested: PurchaseQuantity,
    },
    /// A shelf count below the units held by open reservations (409).
    #[error(
        "quantity of product {product} cannot be set to {requested}: {reserved} units are reserved (release or commit them first)"
    )]
    BelowReserved {
        /// The product.
        product: ProductId,
        /// Units reserved.
        reserved: Quantity,
        /// The count asked for.
        requested: Quantity,
    },
    /// A compare-and-set whose version is not the item's (412); nothing changed.
    #[error("{0}")]
    Stale(String),
    /// A batch adjustment with lines that cannot apply (409); nothing changed.
    #[error("{0}")]
    AdjustmentRefused(String),
    /// No transfer waits for receipt at this store (404).
    #[error("transfer {0} is not waiting for receipt at this store")]
    TransferNotFound(stockmesh_core::TransferId),
    /// The transfer was already received here (409).
    #[error("transfer {0} was already received")]
    TransferAlreadyReceived(stockmesh_core::TransferId),
    /// A rule the store's own code must keep was broken (500; logged, not shown).
    #[error("internal invariant broken: {0}")]
    Invariant(&'static str),
    /// The database failed (500; the cause is logged, not shown).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The group commit holding the write failed or stopped; nothing of it is durable (500;
    /// the cause is logged, not shown).
    #[error("write not done: {0}")]
    Write(#[from] stockmesh_bus::WriteError),
}
