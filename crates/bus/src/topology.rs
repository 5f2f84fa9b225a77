//! Names of streams and keys. Every name that belongs to a store carries the store id in a Redis
//! Cluster hash tag (`{store-1}`), so a store's streams, dead letters and heartbeat live on one
//! shard and can be used together.

use stockmesh_core::StoreId;

/// The prefix of every key stockmesh writes.
pub const PREFIX: &str = "stockmesh";

/// The consumer group in which Central reads every store's events stream.
pub const CENTRAL_GROUP: &str = "central";

/// The consumer group in which a store reads its commands stream.
pub const STORE_GROUP: &str = "store";

/// Store → Central: item events and purchase replies.
pub fn events_stream(store: &StoreId) -> String {
    format!("{PREFIX}:{{{store}}}:events")
}

/// Central → store: remote purchase commands and snapshot requests.
pub fn commands_stream(store: &StoreId) -> String {
    format!("{PREFIX}:{{{store}}}:commands")
}

/// Where entries of `stream` that could not be processed are parked, with the reason.
pub fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}:dead")
}

/// The key holding a store's last heartbeat time (unix ms), with a TTL.
pub fn heartbeat_key(store: &StoreId) -> String {
    format!("{PREFIX}:{{{store}}}:heartbeat")
}

/// The key holding a store's advertised state summary (watermark and digest), with a TTL.
pub fn summary_key(store: &StoreId) -> String {
    format!("{PREFIX}:{{{store}}}:summary")
}

/// The set of every store that has ever announced itself; Central discovers stores here.
pub const STORE_REGISTRY: &str = "stockmesh:stores";

/// Recovers the store id from a stream or key name built by this module.
pub fn store_of(name: &str) -> Option<StoreId> {
    let start = name.find('{')? + 1;
    let end = start + name[start..].find('}')?;
    StoreId::parse(&name[start..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_carry_a_hash_tag() {
        let store = StoreId::parse("store-1").expect("valid");
        assert_eq!(events_stream(&store), "stockmesh:{store-1}:events");
        assert_eq!(commands_stream(&store), "stockmesh:{store-1}:commands");
        assert_eq!(
            dead_letter_stream(&events_stream(&store)),
            "stockmesh:{store-1}:events:dead"
        );
        assert_eq!(heartbeat_key(&store), "stockmesh:{store-1}:heartbeat");
        assert_eq!(store_of(&commands_stream(&store)), Some(store));
        assert_eq!(store_of("no-tag"), None);
    }
}
