//! Stock counts, amounts to buy and item versions.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// The largest stock count or purchase accepted (one billion). The bound keeps every sum that
/// the system computes (e.g. a product's total across thousands of stores) far from overflow, and
/// turns an absurd input into a clear 400 instead of a wrap-around.
pub const MAX_QUANTITY: u32 = 1_000_000_000;

/// How many units of an item a store holds: `0..=1_000_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(into = "i64")]
pub struct Quantity(u32);

impl Quantity {
    /// No units.
    pub const ZERO: Quantity = Quantity(0);

    /// A stock count in `0..=MAX_QUANTITY`.
    pub fn new(value: i64) -> Result<Self, ParseError> {
        in_range("quantity", value, 0).map(Self)
    }

    /// The count as a number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// What remains after taking `amount`, or `None` when there is not enough.
    pub fn checked_sub(self, amount: PurchaseQuantity) -> Option<Quantity> {
        self.0.checked_sub(amount.0).map(Quantity)
    }

    /// Whether at least `amount` units are in stock.
    pub fn covers(self, amount: PurchaseQuantity) -> bool {
        self.0 >= amount.0
    }
}

/// How many units one purchase takes: `1..=1_000_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "i64")]
pub struct PurchaseQuantity(u32);

impl PurchaseQuantity {
    /// An amount to buy in `1..=MAX_QUANTITY`.
    pub fn new(value: i64) -> Result<Self, ParseError> {
        in_range("quantity", value, 1).map(Self)
    }

    /// The amount as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

fn in_range(what: &'static str, value: i64, min: u32) -> Result<u32, ParseError> {
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=MAX_QUANTITY).contains(v))
        .ok_or(ParseError::OutOfRange {
            what,
            min: i64::from(min),
            max: i64::from(MAX_QUANTITY),
            value,
        })
}

/// Reads a quantity as an integer in `min..=MAX_QUANTITY`. Its `expecting` text states the rule,
/// so that a wrong type (a string, a fraction, a number too large for any integer) is reported
/// as "an integer from 1 to 1,000,000,000", the same rule as an out-of-range value.
struct RangeVisitor {
    min: u32,
}

impl<'de> serde::de::Visitor<'de> for RangeVisitor {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an integer from {} to {}",
            crate::error::grouped(i64::from(self.min)),
            crate::error::grouped(i64::from(MAX_QUANTITY))
        )
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<u32, E> {
        in_range("quantity", value, self.min).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<u32, E> {
        self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

macro_rules! quantity_conversions {
    ($name:ident, $min:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_i64(RangeVisitor { min: $min }).map(Self)
            }
        }

        impl TryFrom<i64> for $name {
            type Error = ParseError;
            fn try_from(value: i64) -> Result<Self, ParseError> {
                Self::new(value)
            }
        }

        impl From<$name> for i64 {
            fn from(q: $name) -> i64 {
                i64::from(q.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

quantity_conversions!(Quantity, 0);
quantity_conversions!(PurchaseQuantity, 1);

/// The version of an item at its store: 1 when created, one more with every change. Events carry
/// it, so a consumer keeps the highest version seen and ignores stale or repeated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Version(u64);

impl Version {
    /// The version of a newly created item.
    pub const FIRST: Version = Version(1);

    /// The version as a number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The version after one more change.
    pub fn next(self) -> Version {
        Version(self.0.saturating_add(1))
    }
}

impl TryFrom<i64> for Version {
    type Error = ParseError;
    fn try_from(value: i64) -> Result<Self, ParseError> {
        u64::try_from(value)
            .ok()
            .filter(|v| *v >= 1)
            .map(Version)
            .ok_or(ParseError::OutOfRange {
                what: "version",
                min: 1,
                max: i64::MAX,
                value,
            })
    }
}

impl From<Version> for i64 {
    fn from(v: Version) -> i64 {
        i64::try_from(v.0).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantity_accepts_zero_and_the_maximum() {
        assert_eq!(Quantity::new(0).map(Quantity::get), Ok(0));
        assert_eq!(
            Quantity::new(i64::from(MAX_QUANTITY)).map(Quantity::get),
            Ok(MAX_QUANTITY)
        );
    }

    #[test]
    fn quantity_rejects_negative_and_overflowing_values() {
        for bad in [-1, i64::from(MAX_QUANTITY) + 1, i64::MIN, i64::MAX] {
            assert!(Quantity::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn purchase_quantity_rejects_zero() {
        let err = PurchaseQuantity::new(0).expect_err("rejected");
        assert_eq!(
            err.to_string(),
            "quantity must be an integer from 1 to 1,000,000,000, got 0"
        );
    }

    #[test]
    fn quantities_deserialize_through_their_rules() {
        assert!(serde_json::from_str::<Quantity>("5").is_ok());
        assert!(serde_json::from_str::<Quantity>("-5").is_err());
        assert!(serde_json::from_str::<Quantity>("1.5").is_err());
        assert!(serde_json::from_str::<Quantity>("\"5\"").is_err());
        assert!(serde_json::from_str::<Quantity>("99999999999999999999").is_err());
        assert!(serde_json::from_str::<PurchaseQuantity>("0").is_err());
    }

    #[test]
    fn a_wrong_type_is_reported_with_the_rule() {
        let err = serde_json::from_str::<PurchaseQuantity>("\"7\"").expect_err("rejected");
        assert!(
            err.to_string()
                .contains("expected an integer from 1 to 1,000,000,000"),
            "{err}"
        );
        let err = serde_json::from_str::<Quantity>("1e30").expect_err("rejected");
        assert!(
            err.to_string()
                .contains("expected an integer from 0 to 1,000,000,000"),
            "{err}"
        );
    }

    #[test]
    fn versions_start_at_one_and_only_grow() {
        assert_eq!(Version::FIRST.next().get(), 2);
        assert!(Version::try_from(0).is_err());
        assert!(Version::FIRST < Version::FIRST.next());
    }

    proptest! {
        #[test]
        fn subtraction_never_goes_below_zero(stock in 0..=MAX_QUANTITY, take in 1..=MAX_QUANTITY) {
            let stock = Quantity::new(i64::from(stock)).expect("in range");
            let take = PurchaseQuantity::new(i64::from(take)).expect("in range");
            match stock.checked_sub(take) {
                Some(rest) => {
                    prop_assert!(stock.covers(take));
                    prop_assert_eq!(rest.get() + take.get(), stock.get());
                }
                None => prop_assert!(!stock.covers(take)),
            }
        }

        #[test]
        fn any_in_range_quantity_round_trips_through_json(q in 0..=MAX_QUANTITY) {
            let quantity = Quantity::new(i64::from(q)).expect("in range");
            let json = serde_json::to_string(&quantity).expect("serialize");
            prop_assert_eq!(json.clone(), q.to_string());
            prop_assert_eq!(serde_json::from_str::<Quantity>(&json).expect("deserialize"), quantity);
        }
    }
}
