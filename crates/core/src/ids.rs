//! Identifiers. Each parses once at the edge; inside the system an invalid one cannot exist.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ParseError, excerpt};

/// The longest store or product identifier accepted.
pub const MAX_ID_LEN: usize = 64;

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `value` is a dot-segment (`.` or `..`), which a URL path normaliser would remove or
/// resolve: `/inventory/..` is `/` to a proxy, so such an id could not be addressed, and a
/// `Location` naming it would point elsewhere.
fn is_dot_segment(value: &str) -> bool {
    matches!(value, "." | "..")
}

fn check_id(what: &'static str, value: &str) -> Result<(), ParseError> {
    if value.is_empty()
        || value.len() > MAX_ID_LEN
        || !value.chars().all(is_id_char)
        || is_dot_segment(value)
    {
        return Err(ParseError::InvalidId {
            what,
            max: MAX_ID_LEN,
            value: excerpt(value),
        });
    }
    Ok(())
}

/// Declares a string identifier of 1..=64 characters of `A-Za-z0-9._-`, other than `.` and `..`.
/// Every such character is unreserved in a URI (RFC 3986), so an id is its own path segment.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier: 1 to 64 characters of `A-Za-z0-9._-`, neither `.` nor `..`.
            pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                check_id($what, &value)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, ParseError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::id_schema($what, crate::ids::MAX_ID_LEN)
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(value: &str) -> Result<Self, ParseError> {
                Self::parse(value)
            }
        }
    };
}

string_id!(
    /// A store's identifier, e.g. `store-1`. It names the store's broker streams, so it never
    /// holds the `{` `}` of a Redis Cluster hash tag.
    StoreId,
    "storeId"
);

string_id!(
    /// A product's identifier, e.g. a SKU or a UUID.
    ProductId,
    "productId"
);

/// Declares a UUID identifier.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = uuid::Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the textual form of a UUID.
            pub fn parse(value: &str) -> Result<Self, ParseError> {
                Uuid::parse_str(value)
                    .map(Self)
                    .map_err(|_| ParseError::InvalidUuid { what: $what, value: excerpt(value) })
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(value: &str) -> Result<Self, ParseError> {
                Self::parse(value)
            }
        }
    };
}

uuid_id!(
    /// The identifier of one event or command; consumers deduplicate by it.
    EventId,
    "eventId"
);

uuid_id!(
    /// The identifier of one remote purchase; the store deduplicates commands by it.
    PurchaseId,
    "purchaseId"
);

uuid_id!(
    /// The identifier of one store-decided request of any kind (today a remote purchase): the
    /// store decides each id once, and Central wakes the client waiting for it.
    RequestId,
    "requestId"
);

uuid_id!(
    /// The identifier of one reservation: the store holds it once and ends it once.
    ReservationId,
    "reservationId"
);

uuid_id!(
    /// The identifier of one action on a reservation (commit or release): a store-decided
    /// request of its own, so that a retried action is decided once.
    ActionId,
    "actionId"
);

uuid_id!(
    /// The identifier of one transfer between stores: the sending store ships it once.
    TransferId,
    "transferId"
);

impl TransferId {
    /// The request id of this transfer's receipt: derived from the transfer id alone (a
    /// redelivered receive command maps to it again) yet distinct from the shipment's id, so the
    /// receiving store decides it once even when it is also the sender (a returned transfer).
    pub fn receipt_request(self) -> RequestId {
        let mut bytes = *self.0.as_bytes();
        bytes[15] ^= 0x01;
        RequestId(Uuid::from_bytes(bytes))
    }
}

impl From<TransferId> for RequestId {
    fn from(id: TransferId) -> Self {
        Self(id.as_uuid())
    }
}

impl From<ReservationId> for RequestId {
    fn from(id: ReservationId) -> Self {
        Self(id.as_uuid())
    }
}

impl From<ActionId> for RequestId {
    fn from(id: ActionId) -> Self {
        Self(id.as_uuid())
    }
}

impl From<PurchaseId> for RequestId {
    fn from(purchase: PurchaseId) -> Self {
        Self(purchase.as_uuid())
    }
}

/// The longest correlation id accepted from a client.
pub const MAX_CORRELATION_LEN: usize = 128;

/// Ties together an HTTP request and every event it causes, across services.
///
/// Taken from the client (`traceparent` or `X-Request-Id`) when it is printable ASCII of at most
/// 128 characters, otherwise generated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// A fresh correlation id (a UUIDv7 in simple form).
    pub fn generate() -> Self {
        Self(Uuid::now_v7().simple().to_string())
    }

    /// Accepts a client-supplied id if it is 1..=128 visible ASCII characters.
    pub fn from_client(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= MAX_CORRELATION_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn product_id_accepts_the_allowed_alphabet() {
        for ok in [
            "a",
            "SKU-1",
            "x.y_z-0",
            "6b1e3d3c-0f5d-4a8e-9c1a-2f0f7b0e8d11",
        ] {
            assert_eq!(
                ProductId::parse(ok).map(|p| p.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn product_id_rejects_empty_long_and_foreign_characters() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        for bad in [
            "",
            " ",
            "a b",
            "a/b",
            "{x}",
            "é",
            "a\n",
            ".",
            "..",
            "%2e",
            long.as_str(),
        ] {
            assert!(ProductId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn ids_made_of_dots_other_than_dot_segments_are_accepted() {
        for ok in ["...", ".a", "a..", ".hidden", "v1.2"] {
            assert!(ProductId::parse(ok).is_ok(), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn the_longest_id_is_accepted() {
        assert!(StoreId::parse("s".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn ids_deserialize_through_their_rules() {
        assert!(serde_json::from_str::<ProductId>("\"ok-1\"").is_ok());
        let err = serde_json::from_str::<ProductId>("\"no way\"").expect_err("rejected");
        assert!(err.to_string().contains("productId must be"), "{err}");
    }

    #[test]
    fn correlation_ids_from_clients_are_bounded_and_printable() {
        assert!(CorrelationId::from_client("abc-123").is_some());
        assert!(CorrelationId::from_client("").is_none());
        assert!(CorrelationId::from_client("a b").is_none());
        assert!(CorrelationId::from_client(&"x".repeat(129)).is_none());
    }

    #[test]
    fn purchase_ids_round_trip_through_text() {
        let id = PurchaseId::new();
        assert_eq!(PurchaseId::parse(&id.to_string()), Ok(id));
        assert!(PurchaseId::parse("nope").is_err());
    }

    proptest! {
        #[test]
        fn any_valid_id_round_trips(s in "[A-Za-z0-9._-]{1,64}") {
            prop_assume!(s != "." && s != "..");
            let id = ProductId::parse(s.clone()).expect("valid");
            prop_assert_eq!(id.as_str(), s.as_str());
            let json = serde_json::to_string(&id).expect("serialize");
            prop_assert_eq!(serde_json::from_str::<ProductId>(&json).expect("deserialize"), id);
        }

        #[test]
        fn any_id_with_a_foreign_character_is_rejected(
            prefix in "[A-Za-z0-9]{0,10}",
            bad in "[^A-Za-z0-9._-]",
            suffix in "[A-Za-z0-9]{0,10}",
        ) {
            let candidate = format!("{prefix}{bad}{suffix}");
            prop_assert!(StoreId::parse(candidate).is_err());
        }
    }
}
