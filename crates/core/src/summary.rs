//! What a store advertises of its inventory so that Central can tell, cheaply, whether its view
//! still matches (DESIGN §9): a watermark and a digest.
//!
//! - `changes`, the watermark, is the sum of the versions of every item. Every change bumps one
//!   item's version by one and a new item starts at version 1, so it counts the changes the store
//!   has committed: the sequence number of its last change. Central keeps the same sum over what it
//!   applied; the view never holds a version the store has not reached, so Central is behind
//!   exactly when its sum is smaller, whichever entries were lost, newest or in the middle.
//! - `items` and `digest` describe the whole inventory: the item count and an order-independent
//!   hash (a wrapping sum of one hash per `(product, version)`). They catch what the watermark
//!   cannot (e.g. an item Central holds that the store does not), and are compared only once the
//!   store is quiet, since they move with every change.

use serde::{Deserialize, Serialize};

/// A store's advertised figures, or Central's figures for what it applied of that store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateSummary {
    /// The watermark: the sum of the versions of every item (the number of changes committed).
    pub changes: u64,
    /// How many items.
    pub items: u64,
    /// The digest of every `(product, version)`, when computed (a store computes it once quiet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<u64>,
}

impl StateSummary {
    /// The JSON text, as advertised in the broker.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses an advertisement.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Accumulates the order-independent digest of a set of `(product, version)` pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest(u64);

impl Digest {
    /// Adds one item.
    pub fn add(&mut self, product: &str, version: u64) {
        self.0 = self.0.wrapping_add(item_hash(product, version));
    }

    /// The digest so far.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// A 64-bit hash of one `(product, version)` (FNV-1a, then a final mix so that sums of hashes of
/// similar names do not collide): stable across processes and versions of Rust.
pub fn item_hash(product: &str, version: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in product
        .as_bytes()
        .iter()
        .chain(&[0])
        .chain(&version.to_le_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finaliser.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_order_and_sees_a_version_change() {
        let mut a = Digest::default();
        a.add("p", 3);
        a.add("q", 1);
        let mut b = Digest::default();
        b.add("q", 1);
        b.add("p", 3);
        assert_eq!(a, b);
        let mut c = Digest::default();
        c.add("q", 1);
        c.add("p", 4);
        assert_ne!(a, c);
        assert_ne!(item_hash("p", 1), item_hash("p", 2));
        assert_ne!(item_hash("ab", 1), item_hash("a", 1));
    }

    #[test]
    fn a_summary_round_trips_and_a_digest_is_optional() {
        let summary = StateSummary {
            changes: 12,
            items: 3,
            digest: Some(u64::MAX),
        };
        assert_eq!(
            StateSummary::from_json(&summary.to_json()).ok(),
            Some(summary)
        );
        let busy = StateSummary::from_json(r#"{"changes":5,"items":1}"#).expect("parses");
        assert_eq!(busy.digest, None);
        assert!(StateSummary::from_json(r#"{"changes":-1,"items":1}"#).is_err());
    }
}
