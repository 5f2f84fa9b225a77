//! A remote purchase as Central records it, and the idempotency key that guards retries.

use serde::Serialize;
use stockmesh_core::{
    CorrelationId, Item, ItemState, ProductId, PurchaseId, PurchaseQuantity, RejectionReason,
    StoreId, Timestamp,
};

/// Where a remote purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PurchaseStatus {
    /// Sent to the store; no answer yet.
    Pending,
    /// The store applied it.
    Confirmed,
    /// Refused (by Central's pre-check or by the store); nothing changed.
    Rejected,
}

impl PurchaseStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Pending => "PENDING",
            PurchaseStatus::Confirmed => "CONFIRMED",
            PurchaseStatus::Rejected => "REJECTED",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Confirmed, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One remote purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    /// Its id.
    pub purchase_id: PurchaseId,
    /// The store that must supply it.
    pub store_id: StoreId,
    /// The product.
    pub product_id: ProductId,
    /// Units bought.
    pub quantity: PurchaseQuantity,
    /// Where it stands.
    pub status: PurchaseStatus,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectionReason>,
    /// The item after the purchase (confirmed) or as the store had it (rejected), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
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
}

impl Purchase {
    /// The item as a store reply described it.
    pub fn item_from(store: &StoreId, state: &ItemState) -> Item {
        Item {
            store_id: store.clone(),
            product_id: state.product_id.clone(),
            quantity: state.quantity,
            version: state.version,
            updated_at: state.updated_at,
        }
    }

    /// What the request asked for, to tell a genuine retry from a reused key.
    pub fn fingerprint(store: &StoreId, product: &ProductId, quantity: PurchaseQuantity) -> String {
        format!("{store}/{product}/{quantity}")
    }
}

/// The client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a header value.
    pub fn parse(value: &str) -> Result<Self, String> {
        let ok =
            !value.is_empty() && value.len() <= 255 && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err("Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned())
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_bounded_and_visible() {
        assert!(IdempotencyKey::parse("order-42").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            PurchaseStatus::Pending,
            PurchaseStatus::Confirmed,
            PurchaseStatus::Rejected,
        ] {
            assert_eq!(PurchaseStatus::from_name(s.as_str()), Some(s));
        }
    }
}
