//! # stockmesh-core
//!
//! The domain of stockmesh, free of I/O: every other crate speaks these types.
//!
//! ## Layout
//! - [`ids`]: identifiers that parse once at the edge ([`StoreId`], [`ProductId`], [`PurchaseId`],
//!   [`EventId`], [`CorrelationId`]).
//! - [`quantity`]: stock counts ([`Quantity`]), amounts to buy ([`PurchaseQuantity`]) and item
//!   [`Version`]s.
//! - [`item`]: an inventory item and its movement ledger.
//! - [`page`]: which slice of a long list to return ([`Page`]).
//! - [`cursor`]: keyset paging: the key a page starts after ([`Seek`], [`ViewKey`]) and the page
//!   it returns ([`Slice`]).
//! - [`reservation`]: reservations' time to live, ends, actions, and their commands and replies.
//! - [`transfer`]: the commands and replies of transfers between stores.
//! - [`event`]: the events and commands exchanged between stores and Central, and their
//!   [`Envelope`] on the wire.
//! - [`summary`]: the watermark and digest a store advertises, for anti-entropy.
//! - [`error`]: why a value failed to parse.
//! - [`schema`]: the OpenAPI schemas of the types whose rules serde does not show.
//! - [`trace`]: the W3C `traceparent` that envelopes carry across nodes.

pub mod cursor;
pub mod error;
pub mod event;
pub mod ids;
pub mod item;
pub mod page;
pub mod quantity;
pub mod reservation;
pub mod schema;
pub mod summary;
pub mod trace;
pub mod transfer;

pub use cursor::{Cursor, Seek, Slice, ViewKey};
pub use error::ParseError;
pub use event::{
    Envelope, Event, ItemState, RejectionReason, RemotePurchaseCommand, RemotePurchaseConfirmed,
    RemotePurchaseRejected,
};
pub use ids::{
    ActionId, CorrelationId, EventId, ProductId, PurchaseId, RequestId, ReservationId, StoreId,
    TransferId,
};
pub use item::{Item, Movement, MovementKind, Stock};
pub use page::Page;
pub use quantity::{PurchaseQuantity, Quantity, Version};
pub use reservation::{
    ActionRefusal, ReservationAction, ReservationActionCommand, ReservationActionRejected,
    ReservationEnd, ReservationEnded, ReservationHeld, ReservationRejected, ReserveCommand, Ttl,
};
pub use summary::StateSummary;
pub use transfer::{
    TransferArrived, TransferReceiveCommand, TransferReceived, TransferRejected,
    TransferShipCommand, TransferShipped,
};

/// A point in time, always UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The current time, truncated to whole milliseconds so that a value survives a round trip through
/// storage (which keeps milliseconds) unchanged.
pub fn now() -> Timestamp {
    let now = chrono::Utc::now();
    from_millis(now.timestamp_millis())
}

/// The latest instant: the deadline of a command that must never be refused as late.
pub fn never() -> Timestamp {
    chrono::DateTime::<chrono::Utc>::MAX_UTC
}

/// A timestamp from milliseconds since the Unix epoch (out-of-range values clamp to the epoch).
pub fn from_millis(millis: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}
