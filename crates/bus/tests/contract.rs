//! The broker contract: one suite, run against the in-process adapter, a private real
//! `redis-server` and a private three-master Redis Cluster, pinning the semantics the rest of
//! stockmesh relies on. On the cluster, the streams of a case (`s`, `s1`, `s2`, `s:dead`) hash to
//! different slots, so cross-slot reads and dead letters are exercised too.

use std::sync::Arc;
use std::time::Duration;

use stockmesh_bus::broker::{Broker, Outgoing};
use stockmesh_bus::{MemoryBroker, RedisBroker, RedisConfig};
use stockmesh_core::StoreId;
use stockmesh_testkit::{RedisClusterServer, RedisServer};

const G: &str = "group";
const BIG: u64 = 1_000_000;

async fn publish(broker: &dyn Broker, stream: &str, datas: &[&str]) {
    let entries: Vec<_> = datas
        .iter()
        .map(|d| Outgoing {
            stream,
            event_type: "T",
            data: d,
        })
        .collect();
    broker.publish(&entries, BIG).await.expect("publish");
}

fn datas(deliveries: &[stockmesh_bus::Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| String::from_utf8(d.data.clone().unwrap_or_default()).unwrap_or_default())
        .collect()
}

async fn read(broker: &dyn Broker, consumer: &str, stream: &str) -> Vec<stockmesh_bus::Delivery> {
    broker
        .read_new(
            G,
            consumer,
            &[stream.to_owned()],
            100,
            Duration::from_millis(50),
        )
        .await
        .expect("read_new")
}

async fn new_entries_are_delivered_in_order_once(broker: Arc<dyn Broker>) {
    broker.ensure_group("s", G).await.expect("group");
    publish(&*broker, "s", &["a", "b", "c"]).await;
    let got = read(&*broker, "c1", "s").await;
    assert_eq!(datas(&got), ["a", "b", "c"]);
    assert!(got.iter().all(|d| d.deliveries == 1 && d.stream == "s"));
    assert!(got.iter().all(|d| d.event_type.as_deref() == Some("T")));
    assert!(read(&*broker, "c1", "s").await.is_empty(), "nothing twice");
    assert!(
        read(&*broker, "c2", "s").await.is_empty(),
        "one consumer per entry"
    );
}

async fn a_group_created_late_sees_earlier_entries_and_creation_is_idempotent(
    broker: Arc<dyn Broker>,
) {
    publish(&*broker, "s", &["early"]).await;
    broker.ensure_group("s", G).await.expect("group");
    broker.ensure_group("s", G).await.expect("group again");
    publish(&*broker, "s", &["late"]).await;
    assert_eq!(datas(&read(&*broker, "c1", "s").await), ["early", "late"]);
}

async fn unacked_entries_are_redelivered_with_a_growing_count_and_acked_ones_are_not(
    broker: Arc<dyn Broker>,
) {
    broker.ensure_group("s", G).await.expect("group");
    publish(&*broker, "s", &["a", "b"]).await;
    let first = read(&*broker, "c1", "s").await;
    broker
        .ack(G, "s", std::slice::from_ref(&first[0].id))
        .await
        .expect("ack");
    let again = broker
        .read_pending(G, "c1", "s", "0", 10)
        .await
        .expect("pending");
    assert_eq!(datas(&again), ["b"]);
    assert_eq!(again[0].deliveries, 2);
    let third = broker
        .read_pending(G, "c1", "s", "0", 10)
        .await
        .expect("pending");
    assert_eq!(third[0].deliveries, 3);
    // Reading after an id skips what precedes it.
    let after = broker
        .read_pending(G, "c1", "s", &third[0].id, 10)
        .await
        .expect("pending");
    assert!(after.is_empty());
    // Another consumer's pending list is its own.
    assert!(
        broker
            .read_pending(G, "c2", "s", "0", 10)
            .await
            .expect("pending")
            .is_empty()
    );
    broker
        .ack(G, "s", &[third[0].id.clone()])
        .await
        .expect("ack");
    assert!(
        broker
            .read_pending(G, "c1", "s", "0", 10)
            .await
            .expect("pending")
            .is_empty()
    );
    let info = broker.group_info("s", G).await.expect("info");
    assert_eq!((info.length, info.pending, info.lag), (2, 0, Some(0)));
}

async fn idle_entries_of_a_dead_consumer_can_be_claimed(broker: Arc<dyn Broker>) {
    broker.ensure_group("s", G).await.expect("group");
    publish(&*broker, "s", &["a", "b"]).await;
    read(&*broker, "dead", "s").await;
    let none = broker
        .claim_idle(G, "alive", "s", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(none, 0, "entries not idle long enough stay put");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let moved = broker
        .claim_idle(G, "alive", "s", Duration::from_millis(20), 10)
        .await
        .expect("claim");
    assert_eq!(moved, 2);
    let mine = broker
        .read_pending(G, "alive", "s", "0", 10)
        .await
        .expect("pending");
    assert_eq!(datas(&mine), ["a", "b"]);
    assert_eq!(
        mine[0].deliveries, 2,
        "the claim and re-read count as one more delivery"
    );
    assert!(
        broker
            .read_pending(G, "dead", "s", "0", 10)
            .await
            .expect("pending")
            .is_empty()
    );
}

async fn a_pending_entry_trimmed_from_the_stream_comes_back_without_data(broker: Arc<dyn Broker>) {
    broker.ensure_group("s", G).await.expect("group");
    publish(&*broker, "s", &["first"]).await;
    let first = read(&*broker, "c1", "s").await;
    // Approximate trimming in Redis drops whole nodes of 100 entries: publish well past one.
    let filler: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
    let entries: Vec<_> = filler
        .iter()
        .map(|d| Outgoing {
            stream: "s",
            event_type: "T",
            data: d,
        })
        .collect();
    broker.publish(&entries, 10).await.expect("publish");
    let info = broker.group_info("s", G).await.expect("info");
    assert!(info.length < 301, "the stream was trimmed: {info:?}");
    let pending = broker
        .read_pending(G, "c1", "s", "0", 10)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, first[0].id);
    assert_eq!(pending[0].data, None);
    broker
        .ack(G, "s", &[pending[0].id.clone()])
        .await
        .expect("ack");
}

async fn a_dead_lettered_entry_is_copied_and_acked(broker: Arc<dyn Broker>) {
    broker.ensure_group("s", G).await.expect("group");
    publish(&*broker, "s", &["poison", "fine"]).await;
    let got = read(&*broker, "c1", "s").await;
    broker
        .dead_letter(G, &got[0], "cannot decode")
        .await
        .expect("dead letter");
    let dead = broker.entries("s:dead").await.expect("entries");
    assert_eq!(datas(&dead), ["poison"]);
    let info = broker.group_info("s:dead", G).await.expect("info");
    assert_eq!(
        info.length, 1,
        "a stream without the group still reports its length"
    );
    let pending = broker
        .read_pending(G, "c1", "s", "0", 10)
        .await
        .expect("pending");
    assert_eq!(datas(&pending), ["fine"]);
}

async fn a_blocked_read_returns_as_soon_as_an_entry_arrives(broker: Arc<dyn Broker>) {
    broker.ensure_group("s", G).await.expect("group");
    let reader = {
        let broker = broker.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let got = broker
                .read_new(G, "c1", &["s".to_owned()], 10, Duration::from_secs(5))
                .await
                .expect("read");
            (got, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish(&*broker, "s", &["wake"]).await;
    let (got, waited) = reader.await.expect("reader");
    assert_eq!(datas(&got), ["wake"]);
    assert!(waited < Duration::from_secs(4), "woke after {waited:?}");
    // An empty wait returns empty after the block time.
    let none = broker
        .read_new(G, "c1", &["s".to_owned()], 10, Duration::from_millis(50))
        .await
        .expect("read");
    assert!(none.is_empty());
}

async fn reads_span_several_streams(broker: Arc<dyn Broker>) {
    broker.ensure_group("s1", G).await.expect("group");
    broker.ensure_group("s2", G).await.expect("group");
    publish(&*broker, "s1", &["one"]).await;
    publish(&*broker, "s2", &["two"]).await;
    let got = broker
        .read_new(
            G,
            "c",
            &["s1".into(), "s2".into()],
            10,
            Duration::from_millis(50),
        )
        .await
        .expect("read");
    let mut by_stream: Vec<_> = got
        .iter()
        .map(|d| (d.stream.clone(), datas(std::slice::from_ref(d))[0].clone()))
        .collect();
    by_stream.sort();
    assert_eq!(
        by_stream,
        [("s1".into(), "one".into()), ("s2".into(), "two".into())]
    );
}

async fn heartbeats_expire_can_be_withdrawn_and_register_the_store(broker: Arc<dyn Broker>) {
    let store = StoreId::parse("store-9").expect("valid");
    assert_eq!(broker.last_beat(&store).await.expect("beat"), None);
    broker
        .beat(&store, 1234, Duration::from_secs(60))
        .await
        .expect("beat");
    assert_eq!(broker.last_beat(&store).await.expect("beat"), Some(1234));
    assert_eq!(
        broker.stores().await.expect("stores"),
        std::slice::from_ref(&store)
    );
    broker.withdraw(&store).await.expect("withdraw");
    assert_eq!(broker.last_beat(&store).await.expect("beat"), None);
    broker
        .beat(&store, 5678, Duration::from_millis(50))
        .await
        .expect("beat");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        broker.last_beat(&store).await.expect("beat"),
        None,
        "expired"
    );
    assert_eq!(
        broker.stores().await.expect("stores"),
        [store],
        "still registered"
    );
}

async fn group_info_reports_length_pending_and_lag(broker: Arc<dyn Broker>) {
    assert_eq!(
        broker.group_info("nothing", G).await.expect("info"),
        Default::default()
    );
    broker.ensure_group("s", G).await.expect("group");
    publish(&*broker, "s", &["a", "b", "c"]).await;
    let info = broker.group_info("s", G).await.expect("info");
    assert_eq!((info.length, info.pending, info.lag), (3, 0, Some(3)));
    assert!(info.oldest_unacked_age_ms.is_some());
    broker
        .read_new(G, "c", &["s".into()], 2, Duration::from_millis(10))
        .await
        .expect("read");
    let info = broker.group_info("s", G).await.expect("info");
    assert_eq!((info.pending, info.lag), (2, Some(1)));
}

/// Whatever must live as long as the broker (a server, a cluster).
type Keep = Box<dyn std::any::Any>;

async fn memory() -> (Arc<dyn Broker>, Option<Keep>) {
    (Arc::new(MemoryBroker::new()), None)
}

async fn redis() -> (Arc<dyn Broker>, Option<Keep>) {
    let server = RedisServer::start().await;
    let broker = RedisBroker::new(RedisConfig::new(server.url())).expect("broker");
    (Arc::new(broker), Some(Box::new(server)))
}

async fn redis_cluster() -> (Arc<dyn Broker>, Option<Keep>) {
    let cluster = RedisClusterServer::start().await;
    let broker = RedisBroker::new(RedisConfig::cluster(cluster.seeds())).expect("broker");
    assert_eq!(broker.kind(), "redis-cluster");
    (Arc::new(broker), Some(Box::new(cluster)))
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $case() {
                    let (broker, _server) = super::memory().await;
                    super::$case(broker).await;
                }
            )*
        }
        mod redis_streams {
            $(
                #[tokio::test]
                async fn $case() {
                    let (broker, _server) = super::redis().await;
                    super::$case(broker).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test]
                async fn $case() {
                    let (broker, _cluster) = super::redis_cluster().await;
                    super::$case(broker).await;
                }
            )*
        }
    };
}

contract!(
    new_entries_are_delivered_in_order_once,
    a_group_created_late_sees_earlier_entries_and_creation_is_idempotent,
    unacked_entries_are_redelivered_with_a_growing_count_and_acked_ones_are_not,
    idle_entries_of_a_dead_consumer_can_be_claimed,
    a_pending_entry_trimmed_from_the_stream_comes_back_without_data,
    a_dead_lettered_entry_is_copied_and_acked,
    a_blocked_read_returns_as_soon_as_an_entry_arrives,
    reads_span_several_streams,
    heartbeats_expire_can_be_withdrawn_and_register_the_store,
    group_info_reports_length_pending_and_lag,
);
