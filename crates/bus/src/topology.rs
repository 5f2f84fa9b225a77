//! Names of streams and keys. Every name that belongs to a store carries the store id in a Redis
//! Cluster hash tag (`{store-1}`), so a store's streams, dead letters and heartbeat live on one
//! shard and can be used together.
//!
//! On a Redis Cluster the broker places these names differently ([`cluster_key`]): a store's
//! hash tag becomes a partition tag (`stockmesh:{p07}:store-1:events`), one of
//! [`CLUSTER_PARTITIONS`], so that one blocking read covers every store of a partition. The names
//! the rest of stockmesh uses, and the keys of a single Redis, never change.

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

/// The key naming the database whose Central replicas own the `central` consumer group, with a
/// TTL the live replicas renew (see `Broker::claim_central`).
pub const CENTRAL_DATABASE: &str = "stockmesh:central:database";

/// Recovers the store id from a stream or key name built by this module.
pub fn store_of(name: &str) -> Option<StoreId> {
    let start = name.find('{')? + 1;
    let end = start + name[start..].find('}')?;
    StoreId::parse(&name[start..end]).ok()
}

/// How many hash-tag partitions share the store keys on a Redis Cluster. Fixed: every node of a
/// deployment must place a store's keys alike, and changing it would move every key. Sixteen
/// bounds Central's concurrent blocking reads (one per partition) while spreading the partitions
/// over the masters of a small cluster.
pub const CLUSTER_PARTITIONS: u16 = 16;

/// The Redis Cluster hash slot (0..16384) of `key`: CRC16 of its hash tag, or of the whole key
/// when it has none (the rule every Redis Cluster client follows).
pub fn hash_slot(key: &str) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key).unwrap_or(key).as_bytes()) % 16384
}

/// The non-empty text between the first `{` and the next `}`, if any.
fn hash_tag(key: &str) -> Option<&str> {
    let start = key.find('{')? + 1;
    let len = key[start..].find('}')?;
    (len > 0).then(|| &key[start..start + len])
}

/// The partition (0..[`CLUSTER_PARTITIONS`]) of a store's hash tag.
pub fn partition_of(tag: &str) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes()) % CLUSTER_PARTITIONS
}

/// Where `name` lives on a Redis Cluster: a hash-tagged name (`stockmesh:{store-1}:events`)
/// moves into its store's partition (`stockmesh:{p07}:store-1:events`), keeping the store's own
/// prefix for access control; names without a tag stay as they are.
pub fn cluster_key(name: &str) -> String {
    let Some(tag) = hash_tag(name) else {
        return name.to_owned();
    };
    let open = name.find('{').unwrap_or(0);
    let rest = &name[open + tag.len() + 2..];
    format!("{}{{p{:02}}}:{tag}{rest}", &name[..open], partition_of(tag))
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

    #[test]
    fn hash_slots_follow_the_cluster_rule() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(hash_slot("foo"), 12182);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_eq!(hash_slot("foo{}{bar}"), hash_slot("foo{}{bar}"));
        assert_ne!(
            hash_slot("foo{}{bar}"),
            hash_slot("bar"),
            "an empty tag is no tag"
        );
    }

    #[test]
    fn on_a_cluster_a_store_keeps_its_prefix_inside_a_partition() {
        let store = StoreId::parse("store-1").expect("valid");
        let p = partition_of("store-1");
        assert!(p < CLUSTER_PARTITIONS);
        let events = cluster_key(&events_stream(&store));
        assert_eq!(events, format!("stockmesh:{{p{p:02}}}:store-1:events"));
        assert_eq!(
            cluster_key(&dead_letter_stream(&events_stream(&store))),
            dead_letter_stream(&events)
        );
        // Every key of the store shares one slot; untagged names do not move.
        let slot = hash_slot(&events);
        assert_eq!(hash_slot(&cluster_key(&commands_stream(&store))), slot);
        assert_eq!(hash_slot(&cluster_key(&heartbeat_key(&store))), slot);
        assert_eq!(cluster_key(STORE_REGISTRY), STORE_REGISTRY);
        assert_eq!(cluster_key("s:dead"), "s:dead");
    }
}
