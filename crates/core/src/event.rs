//! Events and commands exchanged over the broker, and the envelope that carries them.
//!
//! On the wire each stream entry has two fields: `type` (e.g. `INVENTORY_ITEM_UPDATED`) and
//! `data`, the JSON [`Envelope`]: `{id, type, storeId, occurredAt, correlationId, payload}`, and
//! `traceparent` when trace export is on.
//! Item events carry the *absolute* quantity and the item's version, so applying them is
//! idempotent and order-independent: a consumer keeps the highest version it has seen.

use serde::{Deserialize, Serialize};

use crate::reservation::{
    ReservationActionCommand, ReservationActionRejected, ReservationEnded, ReservationHeld,
    ReservationRejected, ReserveCommand,
};
use crate::transfer::{
    TransferArrived, TransferReceiveCommand, TransferReceived, TransferRejected,
    TransferShipCommand, TransferShipped,
};
use crate::{
    CorrelationId, EventId, ProductId, PurchaseId, PurchaseQuantity, Quantity, StoreId, Timestamp,
    Version,
};

/// One event or command with its metadata, exactly as serialized into a stream entry's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique id (UUIDv7); consumers deduplicate by it.
    pub id: EventId,
    /// The event itself: serialized as the `type` and `payload` fields.
    #[serde(flatten)]
    pub event: Event,
    /// The store the event comes from, or the store a command is addressed to.
    pub store_id: StoreId,
    /// When the change was committed.
    pub occurred_at: Timestamp,
    /// The request that caused the event, carried through every event it causes.
    #[serde(default)]
    pub correlation_id: Option<CorrelationId>,
    /// The W3C `traceparent` of the span that emitted it, so the span that handles it joins the
    /// same trace. Absent when trace export is off (and in envelopes from older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Envelope {
    /// Wraps `event` in a new envelope stamped now, at full precision: the stamp is taken in the
    /// committing transaction, and consumers measure propagation latency from it.
    pub fn new(store_id: StoreId, event: Event, correlation_id: Option<CorrelationId>) -> Self {
        Self {
            id: EventId::new(),
            event,
            store_id,
            occurred_at: chrono::Utc::now(),
            correlation_id,
            traceparent: crate::trace::current(),
        }
    }

    /// The JSON text of the envelope, as stored in the outbox and sent in a stream entry's `data`.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses an envelope from a stream entry's `data`.
    pub fn from_json(data: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }
}

/// Everything that travels between stores and Central.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    /// Store → Central: an item was created (quantity 0).
    InventoryItemCreated(ItemState),
    /// Store → Central: an item changed (set, local sale); carries the absolute quantity.
    InventoryItemUpdated(ItemState),
    /// Central → store: apply this remote purchase if stock suffices and the deadline holds.
    InventoryItemRemotePurchase(RemotePurchaseCommand),
    /// Store → Central: the remote purchase was applied.
    RemotePurchaseConfirmed(RemotePurchaseConfirmed),
    /// Store → Central: the remote purchase was refused; nothing changed.
    RemotePurchaseRejected(RemotePurchaseRejected),
    /// Central → store: publish the current state of every item (Central rebuilds its view).
    SnapshotRequested(SnapshotRequest),
    /// Central → store: hold units for a reservation if they are available.
    ReservationRequested(ReserveCommand),
    /// Store → Central: the reservation holds its units until its expiry.
    ReservationHeld(ReservationHeld),
    /// Store → Central: the reservation was refused; nothing changed.
    ReservationRejected(ReservationRejected),
    /// Central → store: commit or release an open reservation.
    ReservationActionRequested(ReservationActionCommand),
    /// Store → Central: a reservation ended (committed, released, or expired by the store).
    ReservationEnded(ReservationEnded),
    /// Store → Central: a commit or release was refused.
    ReservationActionRejected(ReservationActionRejected),
    /// Central → sending store: ship units to another store if they are available.
    TransferShipRequested(TransferShipCommand),
    /// Store → Central: the units left the sending shelf; in transit.
    TransferShipped(TransferShipped),
    /// Store → Central: the shipment was refused; nothing moved.
    TransferRejected(TransferRejected),
    /// Central → receiving store: add the units in transit (or return them to the sender).
    TransferReceiveRequested(TransferReceiveCommand),
    /// Store → Central: the units arrived and wait for a person to confirm receipt.
    TransferArrived(TransferArrived),
    /// Store → Central: the units are on the receiving shelf.
    TransferReceived(TransferReceived),
}

impl Event {
    /// Every event type name, as [`type_name`](Self::type_name) spells them.
    pub const TYPE_NAMES: [&'static str; 18] = [
        "INVENTORY_ITEM_CREATED",
        "INVENTORY_ITEM_UPDATED",
        "INVENTORY_ITEM_REMOTE_PURCHASE",
        "REMOTE_PURCHASE_CONFIRMED",
        "REMOTE_PURCHASE_REJECTED",
        "SNAPSHOT_REQUESTED",
        "RESERVATION_REQUESTED",
        "RESERVATION_HELD",
        "RESERVATION_REJECTED",
        "RESERVATION_ACTION_REQUESTED",
        "RESERVATION_ENDED",
        "RESERVATION_ACTION_REJECTED",
        "TRANSFER_SHIP_REQUESTED",
        "TRANSFER_SHIPPED",
        "TRANSFER_REJECTED",
        "TRANSFER_RECEIVE_REQUESTED",
        "TRANSFER_ARRIVED",
        "TRANSFER_RECEIVED",
    ];

    /// The known type name equal to `name`, if any: a bounded label for what a sender wrote.
    pub fn known_type_name(name: &str) -> Option<&'static str> {
        Self::TYPE_NAMES.into_iter().find(|known| *known == name)
    }

    /// The event's type name, e.g. `INVENTORY_ITEM_UPDATED`; also the stream entry's `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::InventoryItemCreated(_) => "INVENTORY_ITEM_CREATED",
            Event::InventoryItemUpdated(_) => "INVENTORY_ITEM_UPDATED",
            Event::InventoryItemRemotePurchase(_) => "INVENTORY_ITEM_REMOTE_PURCHASE",
            Event::RemotePurchaseConfirmed(_) => "REMOTE_PURCHASE_CONFIRMED",
            Event::RemotePurchaseRejected(_) => "REMOTE_PURCHASE_REJECTED",
            Event::SnapshotRequested(_) => "SNAPSHOT_REQUESTED",
            Event::ReservationRequested(_) => "RESERVATION_REQUESTED",
            Event::ReservationHeld(_) => "RESERVATION_HELD",
            Event::ReservationRejected(_) => "RESERVATION_REJECTED",
            Event::ReservationActionRequested(_) => "RESERVATION_ACTION_REQUESTED",
            Event::ReservationEnded(_) => "RESERVATION_ENDED",
            Event::ReservationActionRejected(_) => "RESERVATION_ACTION_REJECTED",
            Event::TransferShipRequested(_) => "TRANSFER_SHIP_REQUESTED",
            Event::TransferShipped(_) => "TRANSFER_SHIPPED",
            Event::TransferRejected(_) => "TRANSFER_REJECTED",
            Event::TransferReceiveRequested(_) => "TRANSFER_RECEIVE_REQUESTED",
            Event::TransferArrived(_) => "TRANSFER_ARRIVED",
            Event::TransferReceived(_) => "TRANSFER_RECEIVED",
        }
    }
}

/// The state of one item after a change at its store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemState {
    /// The product.
    pub product_id: ProductId,
    /// Units available after the change (absolute, not a delta): what a sale can take.
    pub quantity: Quantity,
    /// Units held by open reservations after the change (absolute); on hand is the sum.
    #[serde(default)]
    pub reserved: Quantity,
    /// The item's version after the change.
    pub version: Version,
    /// When the change was committed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A remote purchase that Central asks a store to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemotePurchaseCommand {
    /// Identifies the purchase; the store applies each purchase id at most once.
    pub purchase_id: PurchaseId,
    /// The product to buy.
    pub product_id: ProductId,
    /// How many units.
    pub quantity: PurchaseQuantity,
    /// After this instant the store must refuse the purchase (the buyer has gone).
    pub deadline: Timestamp,
}

/// A store's answer that it applied a remote purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemotePurchaseConfirmed {
    /// The purchase applied.
    pub purchase_id: PurchaseId,
    /// Units taken.
    pub quantity: PurchaseQuantity,
    /// The item after the purchase: `quantity` is what remains.
    pub item: ItemState,
}

/// A store's answer that it refused a remote purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemotePurchaseRejected {
    /// The purchase refused.
    pub purchase_id: PurchaseId,
    /// The product asked for.
    pub product_id: ProductId,
    /// Why.
    pub reason: RejectionReason,
    /// The item as it stands at the store, when it exists.
    #[serde(default)]
    pub item: Option<ItemState>,
}

/// Why a store refused a remote purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    /// The store holds fewer units than asked.
    InsufficientStock,
    /// The store does not carry the product.
    ProductNotFound,
    /// The command reached the store after its deadline.
    Expired,
}

impl RejectionReason {
    /// The reason's wire name, e.g. `INSUFFICIENT_STOCK`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::InsufficientStock => "INSUFFICIENT_STOCK",
            RejectionReason::ProductNotFound => "PRODUCT_NOT_FOUND",
            RejectionReason::Expired => "EXPIRED",
        }
    }

    /// Reads a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::InsufficientStock,
            Self::ProductNotFound,
            Self::Expired,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// Central asks a store to republish the state of its items: every item, or (a replay, the
/// cheaper repair) those changed after an instant. The store sends it in pages.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotRequest {
    /// Only items the store changed after this instant (its own clock); every item when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_after: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(
            StoreId::parse("store-1").expect("valid"),
            Event::InventoryItemUpdated(ItemState {
                product_id: ProductId::parse("p1").expect("valid"),
                quantity: Quantity::new(7).expect("valid"),
                reserved: Quantity::ZERO,
                version: Version::FIRST.next(),
                updated_at: crate::from_millis(1_700_000_000_123),
            }),
            CorrelationId::from_client("req-1"),
        )
    }

    #[test]
    fn envelope_has_the_documented_wire_shape() {
        let envelope = sample();
        let json: serde_json::Value =
            serde_json::from_str(&envelope.to_json()).expect("valid json");
        assert_eq!(json["type"], "INVENTORY_ITEM_UPDATED");
        assert_eq!(json["storeId"], "store-1");
        assert_eq!(json["correlationId"], "req-1");
        assert_eq!(json["payload"]["productId"], "p1");
        assert_eq!(json["payload"]["quantity"], 7);
        assert_eq!(json["payload"]["version"], 2);
        assert!(json["id"].as_str().is_some_and(|id| id.len() == 36));
        assert!(json["occurredAt"].is_string());
    }

    #[test]
    fn envelope_round_trips() {
        let envelope = sample();
        let back = Envelope::from_json(envelope.to_json().as_bytes()).expect("decodes");
        assert_eq!(back, envelope);
    }

    #[test]
    fn every_event_round_trips_with_its_type_name() {
        let store = StoreId::parse("s").expect("valid");
        let product = ProductId::parse("p").expect("valid");
        let state = ItemState {
            product_id: product.clone(),
            quantity: Quantity::ZERO,
            reserved: Quantity::ZERO,
            version: Version::FIRST,
            updated_at: crate::from_millis(5),
        };
        let events = [
            Event::InventoryItemCreated(state.clone()),
            Event::InventoryItemUpdated(state.clone()),
            Event::InventoryItemRemotePurchase(RemotePurchaseCommand {
                purchase_id: PurchaseId::new(),
                product_id: product.clone(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                deadline: crate::from_millis(10),
            }),
            Event::RemotePurchaseConfirmed(RemotePurchaseConfirmed {
                purchase_id: PurchaseId::new(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                item: state.clone(),
            }),
            Event::RemotePurchaseRejected(RemotePurchaseRejected {
                purchase_id: PurchaseId::new(),
                product_id: product.clone(),
                reason: RejectionReason::Expired,
                item: None,
            }),
            Event::SnapshotRequested(SnapshotRequest::default()),
            Event::ReservationRequested(crate::reservation::ReserveCommand {
                reservation_id: crate::ReservationId::new(),
                product_id: product.clone(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                ttl: crate::Ttl::new(30).expect("valid"),
                deadline: crate::from_millis(10),
            }),
            Event::ReservationHeld(ReservationHeld {
                reservation_id: crate::ReservationId::new(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                expires_at: crate::from_millis(10),
                item: state.clone(),
            }),
            Event::ReservationRejected(ReservationRejected {
                reservation_id: crate::ReservationId::new(),
                product_id: product.clone(),
                reason: RejectionReason::InsufficientStock,
                item: None,
            }),
            Event::ReservationActionRequested(ReservationActionCommand {
                action_id: crate::ActionId::new(),
                reservation_id: crate::ReservationId::new(),
                action: crate::ReservationAction::Commit,
                product_id: product.clone(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                deadline: crate::from_millis(10),
            }),
            Event::ReservationEnded(ReservationEnded {
                reservation_id: crate::ReservationId::new(),
                action_id: None,
                end: crate::ReservationEnd::Expired,
                quantity: PurchaseQuantity::new(2).expect("valid"),
                item: state.clone(),
            }),
            Event::ReservationActionRejected(ReservationActionRejected {
                action_id: crate::ActionId::new(),
                reservation_id: crate::ReservationId::new(),
                reason: crate::ActionRefusal::Ended,
                state: Some(crate::ReservationEnd::Released),
            }),
            Event::TransferShipRequested(TransferShipCommand {
                transfer_id: crate::TransferId::new(),
                product_id: product.clone(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                to: store.clone(),
                deadline: crate::from_millis(10),
            }),
            Event::TransferShipped(TransferShipped {
                transfer_id: crate::TransferId::new(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                item: state.clone(),
            }),
            Event::TransferRejected(TransferRejected {
                transfer_id: crate::TransferId::new(),
                product_id: product.clone(),
                reason: RejectionReason::InsufficientStock,
                item: None,
            }),
            Event::TransferReceiveRequested(TransferReceiveCommand {
                transfer_id: crate::TransferId::new(),
                product_id: product.clone(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                from: store.clone(),
                confirm: true,
                returning: false,
            }),
            Event::TransferArrived(TransferArrived {
                transfer_id: crate::TransferId::new(),
            }),
            Event::TransferReceived(TransferReceived {
                transfer_id: crate::TransferId::new(),
                quantity: PurchaseQuantity::new(2).expect("valid"),
                returned: false,
                item: state.clone(),
            }),
        ];
        for event in events {
            let name = event.type_name();
            let envelope = Envelope::new(store.clone(), event, None);
            let json: serde_json::Value =
                serde_json::from_str(&envelope.to_json()).expect("valid json");
            assert_eq!(json["type"], name);
            assert_eq!(Event::known_type_name(name), Some(name));
            let back = Envelope::from_json(envelope.to_json().as_bytes()).expect("decodes");
            assert_eq!(back, envelope);
        }
    }

    #[test]
    fn an_unknown_type_name_is_not_known() {
        assert_eq!(Event::known_type_name("SOMETHING_ELSE"), None);
        assert_eq!(Event::known_type_name(""), None);
    }

    #[test]
    fn an_invalid_payload_does_not_decode() {
        let bad = r#"{"id":"0190a0a0-0000-7000-8000-000000000000","type":"INVENTORY_ITEM_UPDATED",
            "storeId":"s","occurredAt":"2024-01-01T00:00:00Z",
            "payload":{"productId":"p","quantity":-1,"version":1,"updatedAt":"2024-01-01T00:00:00Z"}}"#;
        assert!(Envelope::from_json(bad.as_bytes()).is_err());
        assert!(Envelope::from_json(b"not json").is_err());
        let unknown_type = bad.replace("INVENTORY_ITEM_UPDATED", "SOMETHING_ELSE");
        assert!(Envelope::from_json(unknown_type.as_bytes()).is_err());
    }

    #[test]
    fn rejection_reasons_round_trip() {
        for r in [
            RejectionReason::InsufficientStock,
            RejectionReason::ProductNotFound,
            RejectionReason::Expired,
        ] {
            assert_eq!(RejectionReason::from_name(r.as_str()), Some(r));
        }
    }
}
