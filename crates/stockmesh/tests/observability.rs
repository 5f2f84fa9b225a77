//! `GET /metrics` of real processes moves as the system works: every metric SPEC.md names.

use std::time::Duration;

use serde_json::json;
use stockmesh_bus::broker::{Broker, Outgoing};
use stockmesh_bus::{RedisBroker, RedisConfig};
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::metrics::sample;
use stockmesh_testkit::process::ProcessCluster;
use stockmesh_testkit::{Api, eventually};

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");

async fn scrape(api: &Api) -> String {
    let reply = api.get("/metrics").await.expect(200);
    assert!(reply.content_type().starts_with("text/plain"));
    reply.text
}

async fn value(api: &Api, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&scrape(api).await, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_what_the_system_does() {
    let cluster = ProcessCluster::start(BIN, 1).await;
    let (central, store) = (&cluster.central.api, &cluster.stores[0].api);
    let s1 = [("node", "store-1")];

    store.create_item("p").await.expect(201);
    store.set_quantity("p", 10).await.expect(204);
    wait_for_central(central, "store-1", "p", 10).await;
    // A store counts a publish or a beat once Redis acknowledged it, which may come after Central
    // has already read the event or seen the heartbeat. Central asks a store it provisions for a
    // snapshot, which may publish the item's state once more.
    eventually("the store's counters", Duration::from_secs(5), async || {
        let text = scrape(store).await;
        sample(
            &text,
            "stockmesh_events_published_total",
            &[("type", "INVENTORY_ITEM_UPDATED")],
        )
        .unwrap_or(0.0)
            >= 1.0
            && sample(&text, "stockmesh_heartbeats_sent_total", &s1).unwrap_or(0.0) >= 1.0
    })
    .await;
    let text = scrape(store).await;
    assert_eq!(
        sample(
            &text,
            "stockmesh_inventory_mutations_total",
            &[("node", "store-1"), ("kind", "created")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "stockmesh_inventory_mutations_total",
            &[("kind", "set")]
        ),
        Some(1.0)
    );
    assert!(sample(&text, "stockmesh_heartbeats_sent_total", &s1).unwrap_or(0.0) >= 1.0);
    assert_eq!(
        sample(
            &text,
            "stockmesh_http_requests_total",
            &[("route", "/inventory"), ("status", "201")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "stockmesh_http_request_duration_seconds_count",
            &[("route", "/inventory/{product_id}")]
        )
        .is_some()
    );
    assert!(
        sample(
            &text,
            "stockmesh_events_published_total",
            &[("type", "INVENTORY_ITEM_UPDATED")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(sample(&text, "stockmesh_link_connected", &s1), Some(1.0));

    // Disconnected: the outbox grows, Central sees the store offline and refuses purchases. A
    // snapshot Central asked for may still be on its way out: start from an empty outbox.
    eventually("an empty outbox", Duration::from_secs(5), async || {
        sample(&scrape(store).await, "stockmesh_outbox_pending", &s1) == Some(0.0)
    })
    .await;
    store.post_empty("/disconnected").await.expect(200);
    for _ in 0..3 {
        store.purchase("p", 1).await.expect(200);
    }
    let text = scrape(store).await;
    assert_eq!(sample(&text, "stockmesh_outbox_pending", &s1), Some(3.0));
    assert_eq!(sample(&text, "stockmesh_link_connected", &s1), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "stockmesh_purchases_total",
            &[("scope", "local"), ("outcome", "confirmed")]
        ),
        Some(3.0)
    );
    let refused = central
        .post("/purchase/store-1/p", &json!({"quantity": 1}))
        .await
        .expect(503);
    assert_eq!(refused.json()["title"], "Store Unavailable");
    let text = scrape(central).await;
    assert_eq!(
        sample(
            &text,
            "stockmesh_purchases_total",
            &[("scope", "remote"), ("outcome", "unavailable")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "stockmesh_store_online", &[("store", "store-1")]),
        Some(0.0)
    );

    // Reconnected: the outbox drains to 0, the lag returns to 0.
    store.post_empty("/connected").await.expect(200);
    wait_for_central(central, "store-1", "p", 7).await;
    eventually("the outbox drained", Duration::from_secs(2), async || {
        value(store, "stockmesh_outbox_pending", &s1).await == 0.0
    })
    .await;
    let events = [("stream", "stockmesh:{store-1}:events")];
    eventually(
        "Central's lag and pending at 0",
        Duration::from_secs(2),
        async || {
            let text = scrape(central).await;
            sample(&text, "stockmesh_consumer_lag", &events) == Some(0.0)
                && sample(&text, "stockmesh_consumer_pending", &events) == Some(0.0)
        },
    )
    .await;
    let text = scrape(central).await;
    assert!(sample(&text, "stockmesh_stream_length", &events).unwrap_or(0.0) >= 5.0);
    assert_eq!(
        sample(&text, "stockmesh_store_online", &[("store", "store-1")]),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "stockmesh_store_heartbeat_age_seconds",
            &[("store", "store-1")]
        )
        .is_some_and(|age| age < 1.0)
    );
    assert!(
        sample(
            &text,
            "stockmesh_events_consumed_total",
            &[("type", "INVENTORY_ITEM_UPDATED"), ("outcome", "applied")]
        )
        .unwrap_or(0.0)
            >= 4.0
    );
    assert!(
        sample(
            &text,
            "stockmesh_propagation_seconds_count",
            &[("type", "INVENTORY_ITEM_UPDATED")]
        )
        .unwrap_or(0.0)
            >= 4.0
    );
    assert!(sample(&text, "stockmesh_event_handling_seconds_count", &[]).unwrap_or(0.0) >= 1.0);

    // A remote purchase: confirmed at Central, a remote sale at the store, a latency sample.
    central
        .post("/purchase/store-1/p", &json!({"quantity": 2}))
        .await
        .expect(200);
    central
        .post("/purchase/store-1/p", &json!({"quantity": 99}))
        .await
        .expect(409);
    let text = scrape(central).await;
    assert_eq!(
        sample(
            &text,
            "stockmesh_purchases_total",
            &[("scope", "remote"), ("outcome", "confirmed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "stockmesh_purchases_total",
            &[("scope", "remote"), ("outcome", "insufficient")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "stockmesh_remote_purchase_seconds_count", &[]),
        Some(3.0)
    );
    let text = scrape(store).await;
    assert_eq!(
        sample(
            &text,
            "stockmesh_inventory_mutations_total",
            &[("kind", "remote_sale")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "stockmesh_events_consumed_total",
            &[
                ("type", "INVENTORY_ITEM_REMOTE_PURCHASE"),
                ("outcome", "applied")
            ]
        ),
        Some(1.0)
    );
    store.purchase("p", 100).await.expect(409);
    assert_eq!(
        value(
            store,
            "stockmesh_purchases_total",
            &[("scope", "local"), ("outcome", "insufficient")]
        )
        .await,
        1.0
    );

    // A poison entry: dead-lettered, counted, and the dead-letter stream's length shows it.
    let broker = RedisBroker::new(RedisConfig::new(cluster.redis.url())).expect("broker");
    let poison = Outgoing {
        stream: "stockmesh:{store-1}:events",
        event_type: "GARBAGE",
        data: "{not json",
    };
    broker.publish(&[poison], 1_000_000).await.expect("publish");
    eventually(
        "the poison dead-lettered",
        Duration::from_secs(2),
        async || value(central, "stockmesh_dead_letter_length", &events).await == 1.0,
    )
    .await;
    assert_eq!(
        value(
            central,
            "stockmesh_events_consumed_total",
            &[("type", "unknown"), ("outcome", "dead_lettered")]
        )
        .await,
        1.0
    );
}
