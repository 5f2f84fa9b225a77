//! Which stores' `last_event_at` this Central wrote lately. A batch from a store touched less than
//! [`TOUCH_EVERY`] ago skips the statement: a busy store costs one write a second for its
//! liveness bookkeeping instead of one per batch, and `GET /stores` shows its last event to within
//! that much. A touch counts only once its transaction committed ([`Touches::record`] runs after
//! the commit), so a store is never taken as registered by a transaction that rolled back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stockmesh_core::StoreId;

/// How stale a store's `last_event_at` may grow while its events keep arriving.
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(1);

/// When each store was last touched by a committed transaction of this process.
#[derive(Debug)]
pub(crate) struct Touches {
    every: Duration,
    at: Mutex<HashMap<StoreId, Instant>>,
}

impl Default for Touches {
    fn default() -> Self {
        Self::every(TOUCH_EVERY)
    }
}

impl Touches {
    /// Touches at most once per `every` and store.
    pub fn every(every: Duration) -> Self {
        Self {
            every,
            at: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `store` must be touched by a transaction begun at `now`: never yet, or not for
    /// `every`.
    pub fn due(&self, store: &StoreId, now: Instant) -> bool {
        let Ok(at) = self.at.lock() else {
            return true;
        };
        at.get(store)
            .is_none_or(|last| now.saturating_duration_since(*last) >= self.every)
    }

    /// Notes that a transaction begun at `at` touched `stores` and committed.
    pub fn record(&self, stores: Vec<StoreId>, at: Instant) {
        if let Ok(mut touched) = self.at.lock() {
            for store in stores {
                touched.insert(store, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> StoreId {
        StoreId::parse(name).expect("valid")
    }

    #[test]
    fn a_store_is_due_until_a_committed_touch_then_again_after_the_interval() {
        let touches = Touches::every(Duration::from_secs(1));
        let start = Instant::now();
        assert!(touches.due(&store("s1"), start), "never touched");
        touches.record(vec![store("s1")], start);
        assert!(!touches.due(&store("s1"), start + Duration::from_millis(999)));
        assert!(touches.due(&store("s2"), start), "another store is its own");
        assert!(touches.due(&store("s1"), start + Duration::from_secs(1)));
    }
}
