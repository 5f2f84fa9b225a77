//! An inventory item and the ledger of movements that made its quantity.

use serde::{Deserialize, Serialize};

use crate::{
    CorrelationId, ProductId, PurchaseId, Quantity, ReservationId, StoreId, Timestamp, Version,
};

/// One product's stock at one store, as the HTTP API shows it.
///
/// `quantity` is the seed's field and keeps its meaning for existing clients: the units a sale
/// can take now, i.e. `available`. The item states beside it say how that figure is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The store that holds the stock.
    pub store_id: StoreId,
    /// The product.
    pub product_id: ProductId,
    /// Units a sale can take now (= `available`; the seed's field).
    pub quantity: Quantity,
    /// On hand, reserved and available.
    #[serde(flatten)]
    pub states: Stock,
    /// Bumped by every change at the store.
    pub version: Version,
    /// When the store last changed the item.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The states of one item's units: `onHand` = `reserved` + `available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stock {
    /// Units on the shelf, whether reserved or not.
    pub on_hand: u64,
    /// Units held by open reservations: no sale but the reservation's commit may take them.
    pub reserved: Quantity,
    /// Units a sale can take: on hand − reserved.
    pub available: Quantity,
}

impl Stock {
    /// The states of an item with `available` units free and `reserved` held.
    pub fn new(available: Quantity, reserved: Quantity) -> Self {
        Self {
            on_hand: u64::from(available.get()) + u64::from(reserved.get()),
            reserved,
            available,
        }
    }
}

/// Why an item's quantity changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// The item was created with quantity 0.
    Created,
    /// The quantity was set (a delivery or a stock count).
    Set,
    /// A purchase at the store's own till.
    LocalSale,
    /// A purchase made online at Central and applied by the store.
    RemoteSale,
    /// Units set aside for a reservation (available falls, reserved rises).
    Reserve,
    /// A reservation committed: its units leave the shelf as a sale (reserved and on hand fall).
    ReservedSale,
    /// A reservation released by its holder (reserved falls, available rises).
    Release,
    /// A reservation expired by the store's clock (reserved falls, available rises).
    Expire,
    /// One line of a batch adjustment (a delivery, a write-off, a count, a return, a correction).
    Adjustment,
    /// Units shipped to another store (in transit).
    TransferOut,
    /// Units received from another store (or returned from a cancelled transfer).
    TransferIn,
}

impl MovementKind {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Created => "created",
            MovementKind::Set => "set",
            MovementKind::LocalSale => "local_sale",
            MovementKind::RemoteSale => "remote_sale",
            MovementKind::Reserve => "reserve",
            MovementKind::ReservedSale => "reserved_sale",
            MovementKind::Release => "release",
            MovementKind::Expire => "expire",
            MovementKind::Adjustment => "adjustment",
            MovementKind::TransferOut => "transfer_out",
            MovementKind::TransferIn => "transfer_in",
        }
    }

    /// Reads a name stored in the ledger.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Set,
            Self::LocalSale,
            Self::RemoteSale,
            Self::Reserve,
            Self::ReservedSale,
            Self::Release,
            Self::Expire,
            Self::Adjustment,
            Self::TransferOut,
            Self::TransferIn,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// One line of an item's ledger: what changed, by how much, and what resulted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    /// Why the quantity changed.
    pub kind: MovementKind,
    /// Change in available units (`quantity`; negative for sales and reservations).
    pub delta: i64,
    /// Units available after the change.
    pub quantity: Quantity,
    /// Units reserved after the change.
    pub reserved: Quantity,
    /// The item's version after the change.
    pub version: Version,
    /// When the change was committed.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The request that caused the change, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// The remote purchase applied, for [`MovementKind::RemoteSale`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_id: Option<PurchaseId>,
    /// The reservation concerned, for reservation movements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<ReservationId>,
    /// The transfer concerned, for `transfer_out` and `transfer_in`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<crate::TransferId>,
    /// Why: the adjustment's reason (`received`, `damaged`, `count`, `returned`, `correction`),
    /// or the kind's own reason for the other movements (`sale`, `count`, `reservation`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What it refers to: a delivery note, an order, or the purchase or reservation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Who: the authenticated subject once auth exists; until then the request's correlation
    /// id, or `store-clock` for an expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movement_kind_names_round_trip() {
        for kind in [
            MovementKind::Created,
            MovementKind::Set,
            MovementKind::LocalSale,
            MovementKind::RemoteSale,
            MovementKind::Reserve,
            MovementKind::ReservedSale,
            MovementKind::Release,
            MovementKind::Expire,
            MovementKind::Adjustment,
            MovementKind::TransferOut,
            MovementKind::TransferIn,
        ] {
            assert_eq!(MovementKind::from_name(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(MovementKind::from_name("stolen"), None);
    }

    #[test]
    fn item_json_uses_the_seed_field_names() {
        let item = Item {
            store_id: StoreId::parse("store-1").expect("valid"),
            product_id: ProductId::parse("p1").expect("valid"),
            quantity: Quantity::new(3).expect("valid"),
            states: Stock::new(
                Quantity::new(3).expect("valid"),
                Quantity::new(2).expect("valid"),
            ),
            version: Version::FIRST,
            updated_at: crate::from_millis(0),
        };
        let json = serde_json::to_value(&item).expect("serialize");
        assert_eq!(json["storeId"], "store-1");
        assert_eq!(json["productId"], "p1");
        assert_eq!(json["quantity"], 3);
        assert_eq!(json["available"], 3);
        assert_eq!(json["reserved"], 2);
        assert_eq!(json["onHand"], 5);
        assert_eq!(json["version"], 1);
        assert_eq!(json["updatedAt"], "1970-01-01T00:00:00Z");
    }
}
