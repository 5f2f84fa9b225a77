//! Central trusts the stream, not the payload. What a store writes to Redis is checked against
//! what that store can rightly claim; whatever fails is ignored (or dead-lettered by the
//! consumer), counted in `stockmesh_untrusted_total{kind}` and logged, never applied.
//!
//! - An envelope naming another store than its stream's: dead-lettered by the consumer
//!   (`kind="store_mismatch"`, in `stockmesh-bus`).
//! - A reply for a purchase that belongs to another store: ignored (`kind="foreign_reply"`).
//! - An item version far beyond what the store can have reached: ignored
//!   (`kind="version_beyond"`). The bound is [`plausible_version`]: within
//!   [`MAX_VERSION_STEP`] of the version Central holds (or of zero), or at most the store's
//!   advertised watermark when its heartbeat carries one.
//! - A heartbeat from the future (`kind="heartbeat_future"`, here) or without expiry
//!   (`kind="heartbeat_no_expiry"`, in the Redis adapter): the store counts as offline.

use stockmesh_core::StoreId;

/// How far beyond Central's version of an item a new version may be. Versions grow by one per
/// change: a million changes to one item while Central was away is beyond any real store, and
/// far below what freezes an item (`i64::MAX`).
pub const MAX_VERSION_STEP: u64 = 1 << 20;

/// How far in the future (by Central's clock) a heartbeat may be stamped: clock skew.
pub const HEARTBEAT_SKEW_MS: i64 = 5_000;

/// Counts and logs one untrusted input.
pub fn untrusted(kind: &'static str, store: &StoreId, detail: &str) {
    metrics::counter!("stockmesh_untrusted_total", "kind" => kind).increment(1);
    tracing::warn!(%store, kind, detail, "ignoring untrusted input");
}

/// Whether `incoming` is a version the store can have reached, given Central's `current` one and
/// the store's advertised `watermark` (its highest version) when known.
pub fn plausible_version(current: Option<u64>, incoming: u64, watermark: Option<u64>) -> bool {
    if let Some(watermark) = watermark {
        return incoming <= watermark;
    }
    incoming <= current.unwrap_or(0).saturating_add(MAX_VERSION_STEP)
}

/// The heartbeat time Central believes: none if it is stamped in the future.
pub fn heartbeat(store: &StoreId, last: Option<i64>, now_ms: i64) -> Option<i64> {
    match last {
        Some(at) if at > now_ms.saturating_add(HEARTBEAT_SKEW_MS) => {
            untrusted(
                "heartbeat_future",
                store,
                &format!("heartbeat stamped {at}, now {now_ms}"),
            );
            None
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_stay_within_reach() {
        assert!(plausible_version(None, 1, None));
        assert!(plausible_version(Some(10), 11 + MAX_VERSION_STEP - 1, None));
        assert!(!plausible_version(None, i64::MAX as u64, None));
        assert!(!plausible_version(Some(10), 12, Some(11)));
        assert!(plausible_version(Some(10), 11, Some(11)));
    }

    #[test]
    fn a_heartbeat_from_the_future_is_not_believed() {
        let store = StoreId::parse("s").expect("valid");
        assert_eq!(heartbeat(&store, Some(1_000), 2_000), Some(1_000));
        assert_eq!(heartbeat(&store, Some(i64::MAX), 2_000), None);
    }
}
