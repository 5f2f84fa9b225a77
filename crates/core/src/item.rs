//! An inventory item and the ledger of movements that made its quantity.

use serde::{Deserialize, Serialize};

use crate::{CorrelationId, ProductId, PurchaseId, Quantity, StoreId, Timestamp, Version};

/// One product's stock at one store, as the HTTP API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The store that holds the stock.
    pub store_id: StoreId,
    /// The product.
    pub product_id: ProductId,
    /// Units in stock.
    pub quantity: Quantity,
    /// Bumped by every change at the store.
    pub version: Version,
    /// When the store last changed the item.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
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
}

impl MovementKind {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Created => "created",
            MovementKind::Set => "set",
            MovementKind::LocalSale => "local_sale",
            MovementKind::RemoteSale => "remote_sale",
        }
    }

    /// Reads a name stored in the ledger.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Created, Self::Set, Self::LocalSale, Self::RemoteSale]
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
    /// Change in units (negative for sales).
    pub delta: i64,
    /// Units in stock after the change.
    pub quantity: Quantity,
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
            version: Version::FIRST,
            updated_at: crate::from_millis(0),
        };
        let json = serde_json::to_value(&item).expect("serialize");
        assert_eq!(json["storeId"], "store-1");
        assert_eq!(json["productId"], "p1");
        assert_eq!(json["quantity"], 3);
        assert_eq!(json["version"], 1);
        assert_eq!(json["updatedAt"], "1970-01-01T00:00:00Z");
    }
}
