//! Reservations: units a store holds for a customer until the reservation is committed (a
//! sale), released, or expires by the store's own clock. The commands and replies that carry
//! them between Central and the owning store, and the time a reservation may live.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;
use crate::{ActionId, ItemState, ProductId, PurchaseQuantity, ReservationId, Timestamp};

/// The longest time a reservation may hold units: one day, in seconds. A hold longer than a
/// checkout is a shelf taken away from every other customer.
pub const MAX_TTL_SECONDS: u32 = 86_400;

/// How long a reservation holds its units, in whole seconds: `1..=86_400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "i64")]
pub struct Ttl(u32);

impl Ttl {
    /// A time to live of `seconds`, in `1..=MAX_TTL_SECONDS`.
    pub fn new(seconds: i64) -> Result<Self, ParseError> {
        u32::try_from(seconds)
            .ok()
            .filter(|s| (1..=MAX_TTL_SECONDS).contains(s))
            .map(Self)
            .ok_or(ParseError::OutOfRange {
                what: "ttl",
                min: 1,
                max: i64::from(MAX_TTL_SECONDS),
                value: seconds,
            })
    }

    /// The time to live in seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }

    /// The time to live as a duration.
    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.0))
    }
}

impl From<Ttl> for i64 {
    fn from(ttl: Ttl) -> i64 {
        i64::from(ttl.0)
    }
}

impl TryFrom<i64> for Ttl {
    type Error = ParseError;
    fn try_from(value: i64) -> Result<Self, ParseError> {
        Self::new(value)
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// Reads a ttl as an integer of seconds; its `expecting` text states the rule, so a string or a
/// fraction is reported with the same words as an out-of-range value.
struct TtlVisitor;

impl serde::de::Visitor<'_> for TtlVisitor {
    type Value = Ttl;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an integer of seconds from 1 to {}",
            crate::error::grouped(i64::from(MAX_TTL_SECONDS))
        )
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Ttl, E> {
        Ttl::new(value).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Ttl, E> {
        self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_i64(TtlVisitor)
    }
}

/// How a reservation ended: exactly one of these, exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationEnd {
    /// Turned into a sale.
    Committed,
    /// Given back by its holder.
    Released,
    /// Its time ran out at the store.
    Expired,
}

impl ReservationEnd {
    /// The wire and stored name, e.g. `COMMITTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationEnd::Committed => "COMMITTED",
            ReservationEnd::Released => "RELEASED",
            ReservationEnd::Expired => "EXPIRED",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Committed, Self::Released, Self::Expired]
            .into_iter()
            .find(|end| end.as_str() == name)
    }
}

/// What a holder asks of an open reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationAction {
    /// Turn it into a sale.
    Commit,
    /// Give its units back.
    Release,
}

impl ReservationAction {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationAction::Commit => "COMMIT",
            ReservationAction::Release => "RELEASE",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Commit, Self::Release]
            .into_iter()
            .find(|a| a.as_str() == name)
    }

    /// How the reservation ends when the action succeeds.
    pub fn end(self) -> ReservationEnd {
        match self {
            ReservationAction::Commit => ReservationEnd::Committed,
            ReservationAction::Release => ReservationEnd::Released,
        }
    }
}

/// Why a store refused an action on a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionRefusal {
    /// The command reached the store after its deadline.
    Expired,
    /// The store holds no such reservation.
    NotFound,
    /// The reservation had already ended (see `state`).
    Ended,
}

impl ActionRefusal {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionRefusal::Expired => "EXPIRED",
            ActionRefusal::NotFound => "NOT_FOUND",
            ActionRefusal::Ended => "ENDED",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Expired, Self::NotFound, Self::Ended]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// Central → store: hold `quantity` units of `product_id` for `ttl` from the store's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveCommand {
    /// The reservation; the store decides it once.
    pub reservation_id: ReservationId,
    /// The product.
    pub product_id: ProductId,
    /// Units to hold.
    pub quantity: PurchaseQuantity,
    /// How long to hold them, counted by the store's clock from its decision.
    pub ttl: Ttl,
    /// After this instant the store must refuse the command.
    pub deadline: Timestamp,
}

/// Store → Central: the units are held until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationHeld {
    /// The reservation.
    pub reservation_id: ReservationId,
    /// Units held.
    pub quantity: PurchaseQuantity,
    /// When the store will release them by itself.
    pub expires_at: Timestamp,
    /// The item after the hold.
    pub item: ItemState,
}

/// Store → Central: the reservation was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationRejected {
    /// The reservation.
    pub reservation_id: ReservationId,
    /// The product asked for.
    pub product_id: ProductId,
    /// Why.
    pub reason: crate::RejectionReason,
    /// The item as it stands, when it exists.
    #[serde(default)]
    pub item: Option<ItemState>,
}

/// Central → store: commit or release an open reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationActionCommand {
    /// The action; the store decides it once.
    pub action_id: ActionId,
    /// The reservation it acts on.
    pub reservation_id: ReservationId,
    /// Commit or release.
    pub action: ReservationAction,
    /// The reservation's product (recorded with the decision).
    pub product_id: ProductId,
    /// The reservation's units (recorded with the decision).
    pub quantity: PurchaseQuantity,
    /// After this instant the store must refuse the command.
    pub deadline: Timestamp,
}

/// Store → Central: a reservation ended, by an action or by its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationEnded {
    /// The reservation.
    pub reservation_id: ReservationId,
    /// The action that ended it; none for an expiry.
    #[serde(default)]
    pub action_id: Option<ActionId>,
    /// How it ended.
    pub end: ReservationEnd,
    /// Its units.
    pub quantity: PurchaseQuantity,
    /// The item after the end.
    pub item: ItemState,
}

/// Store → Central: an action was refused; nothing changed by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationActionRejected {
    /// The action.
    pub action_id: ActionId,
    /// The reservation.
    pub reservation_id: ReservationId,
    /// Why.
    pub reason: ActionRefusal,
    /// How the reservation had ended, for [`ActionRefusal::Ended`].
    #[serde(default)]
    pub state: Option<ReservationEnd>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_is_one_second_to_one_day() {
        assert!(Ttl::new(1).is_ok());
        assert!(Ttl::new(86_400).is_ok());
        for bad in [0, -1, 86_401, i64::MAX] {
            assert!(Ttl::new(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<Ttl>("0").expect_err("zero");
        assert!(
            err.to_string()
                .contains("ttl must be an integer from 1 to 86,400")
        );
        let err = serde_json::from_str::<Ttl>("\"5\"").expect_err("string");
        assert!(err.to_string().contains("from 1 to 86,400"));
    }

    #[test]
    fn names_round_trip() {
        for end in [
            ReservationEnd::Committed,
            ReservationEnd::Released,
            ReservationEnd::Expired,
        ] {
            assert_eq!(ReservationEnd::from_name(end.as_str()), Some(end));
        }
        for action in [ReservationAction::Commit, ReservationAction::Release] {
            assert_eq!(ReservationAction::from_name(action.as_str()), Some(action));
        }
        for refusal in [
            ActionRefusal::Expired,
            ActionRefusal::NotFound,
            ActionRefusal::Ended,
        ] {
            assert_eq!(ActionRefusal::from_name(refusal.as_str()), Some(refusal));
        }
    }
}
