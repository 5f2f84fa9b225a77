//! Self-healing (issue 13): Central re-converges by itself when the broker loses entries it had
//! acknowledged, on a real `redis-server` without persistence.

use std::time::Duration;

use serde_json::{Value, json};
use stockmesh_bus::{faults, topology};
use stockmesh_core::StoreId;
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::metrics::sample;
use stockmesh_testkit::{TestCluster, eventually};

/// How long a test cluster may take to heal: its heartbeat beats every 100 ms and Central's
/// grace period is 300 ms, so this leaves room for a loaded machine.
const HEALED: Duration = Duration::from_secs(10);

/// Waits until the store's relay has published and stamped every outbox row.
async fn outbox_drained(store: &stockmesh_testkit::Api) {
    eventually(
        "the store's outbox drained",
        Duration::from_secs(10),
        async || store.get("/status").await.json()["outboxPending"] == 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_converges_after_redis_restarts_empty_while_it_was_down() {
    let mut cluster = TestCluster::start_volatile(1, |_| {}).await;
    let store = cluster.store(1).clone();
    store.create_item("p").await.expect(201);
    store.set_quantity("p", 100).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "p", 100).await;
    snapshot_sent(&cluster, &store).await;

    cluster.stop_central().await;
    for _ in 0..6 {
        store.purchase("p", 1).await.expect(200);
    }
    outbox_drained(&store).await;
    let redis = cluster.redis.as_mut().expect("redis");
    redis.kill();
    redis.restart().await;
    cluster.restart_central().await;

    let central = cluster.central.clone();
    eventually("Central to show 94 again", HEALED, async || {
        central.quantity("/inventory/store-1/p").await == Some(94)
    })
    .await;
    eventually("the repair to show in the metrics", HEALED, async || {
        let text = central.get("/metrics").await.text;
        let labels = [
            ("store", "store-1"),
            ("cause", "behind"),
            ("kind", "replay"),
        ];
        sample(&text, "stockmesh_repairs_total", &labels).is_some_and(|n| n >= 1.0)
            && sample(
                &text,
                "stockmesh_repair_last_completed_timestamp_seconds",
                &[("store", "store-1")],
            )
            .is_some()
            && sample(
                &text,
                "stockmesh_repair_items_corrected_total",
                &[("store", "store-1")],
            )
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_converges_after_the_newest_entries_of_a_stream_are_lost() {
    let mut cluster = TestCluster::start_volatile(1, |_| {}).await;
    let store = cluster.store(1).clone();
    for product in ["p", "q"] {
        store.create_item(product).await.expect(201);
        store.set_quantity(product, 50).await.expect(204);
    }
    wait_for_central(&cluster.central, "store-1", "q", 50).await;
    snapshot_sent(&cluster, &store).await;

    cluster.stop_central().await;
    for _ in 0..4 {
        store.purchase("p", 2).await.expect(200);
    }
    store.purchase("q", 5).await.expect(200);
    outbox_drained(&store).await;
    // As a failover to a replica that had not received them would: the relay was told they
    // were appended, and they are gone.
    let url = cluster.redis.as_ref().expect("redis").url();
    let stream = topology::events_stream(&StoreId::parse("store-1").expect("valid"));
    let lost = faults::drop_newest(&url, &stream, 3)
        .await
        .expect("dropped");
    assert_eq!(lost, 3);
    eprintln!(
        "ENTRIES {:?}",
        cluster
            .broker
            .entries(&stream)
            .await
            .expect("e")
            .iter()
            .map(
                |d| String::from_utf8_lossy(d.data.as_deref().unwrap_or_default())
                    .chars()
                    .take(200)
                    .collect::<String>()
            )
            .collect::<Vec<_>>()
    );
    cluster.restart_central().await;

    let central = cluster.central.clone();
    eventually("Central to show 42 of p and 45 of q", HEALED, async || {
        central.quantity("/inventory/store-1/p").await == Some(42)
            && central.quantity("/inventory/store-1/q").await == Some(45)
    })
    .await;
    cluster.shutdown().await;
}

/// Waits until the snapshot Central asked for when the store was new has been consumed and sent,
/// so that it cannot bring back what a fault then deletes.
async fn snapshot_sent(cluster: &TestCluster, store: &stockmesh_testkit::Api) {
    let commands = topology::commands_stream(&StoreId::parse("store-1").expect("valid"));
    eventually("the first snapshot sent", HEALED, async || {
        let group = cluster
            .broker
            .group_info(&commands, topology::STORE_GROUP)
            .await
            .unwrap_or_default();
        group.length >= 1
            && group.pending == 0
            && group.lag == Some(0)
            && store.get("/status").await.json()["resyncing"] == false
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_restored_from_an_older_backup_is_behind_not_new_and_catches_up() {
    let mut cluster = TestCluster::start(1).await;
    let store = cluster.store(1).clone();
    store.create_item("p").await.expect(201);
    store.set_quantity("p", 30).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "p", 30).await;

    cluster.stop_central().await;
    let last_night = cluster.backup_central().await;
    cluster.restart_central().await;
    store.purchase("p", 7).await.expect(200);
    store.create_item("later").await.expect(201);
    store.set_quantity("later", 3).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "later", 3).await;

    cluster.stop_central().await;
    cluster.restore_central(&last_night).await;
    cluster.restart_central().await;

    let central = cluster.central.clone();
    eventually("the restored Central to catch up", HEALED, async || {
        central.quantity("/inventory/store-1/p").await == Some(23)
            && central.quantity("/inventory/store-1/later").await == Some(3)
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_carries_on_after_redis_restarts_empty_or_is_flushed_under_it() {
    let mut cluster = TestCluster::start_volatile(1, |_| {}).await;
    let store = cluster.store(1).clone();
    store.create_item("p").await.expect(201);
    store.set_quantity("p", 20).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "p", 20).await;
    let id = StoreId::parse("store-1").expect("valid");

    for (round, fault) in ["restart", "flushall"].into_iter().enumerate() {
        let redis = cluster.redis.as_mut().expect("redis");
        if fault == "restart" {
            redis.kill();
            redis.restart().await;
        } else {
            faults::flush_all(&redis.url()).await.expect("flushed");
        }
        // The heartbeat re-registers the store; Central's consumer and the store's recreate
        // their groups (NOGROUP) and carry on: a remote purchase goes through both.
        let broker = cluster.broker.clone();
        eventually("the store registered again", HEALED, async || {
            broker.stores().await.is_ok_and(|s| s.contains(&id))
        })
        .await;
        cluster.wait_until_all_online().await;
        let reply = cluster
            .central
            .post("/purchase/store-1/p", &json!({ "quantity": 1 }))
            .await;
        assert_eq!(reply.status, 200, "after {fault}: {:?}", reply.json());
        store.purchase("p", 1).await.expect(200);
        let expected = 20 - 2 * (i64::try_from(round).expect("small") + 1);
        wait_for_central(&cluster.central, "store-1", "p", expected).await;
        // The consumer acks just after the commit Central's view shows: wait for it.
        let stream = topology::events_stream(&id);
        eventually(
            &format!("nothing pending after {fault}"),
            HEALED,
            async || {
                broker
                    .group_info(&stream, topology::CENTRAL_GROUP)
                    .await
                    .is_ok_and(|groups| groups.pending == 0)
            },
        )
        .await;
    }
    cluster.shutdown().await;
}

/// Central's purchase timing for the lost-command tests: a short wait so that the client gets 202
/// quickly, and the given deadline.
fn quick_purchases(deadline: Duration) -> impl FnOnce(&mut stockmesh_central::CentralConfig) {
    move |config| {
        config.purchase.wait = Duration::from_millis(300);
        config.purchase.deadline = deadline;
    }
}

/// Makes Central believe store-1 is online although it is stopped (so that a purchase is sent to
/// a store that cannot receive it yet).
async fn pretend_online(cluster: &TestCluster) {
    let id = StoreId::parse("store-1").expect("valid");
    let now = chrono::Utc::now().timestamp_millis();
    cluster
        .broker
        .beat(&id, now, Duration::from_secs(30))
        .await
        .expect("beat");
}

/// Starts a cluster whose store-1 holds 10 of `p`, stops the store, and buys 2 at Central while
/// it is away: returns the cluster and the purchase id (answered 202).
async fn purchase_while_the_store_is_away(deadline: Duration) -> (TestCluster, String) {
    let mut cluster = TestCluster::start_volatile(1, quick_purchases(deadline)).await;
    let store = cluster.store(1).clone();
    store.create_item("p").await.expect(201);
    store.set_quantity("p", 10).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "p", 10).await;
    snapshot_sent(&cluster, &store).await;
    cluster.stop_store(1).await;
    pretend_online(&cluster).await;
    let reply = cluster
        .central
        .post("/purchase/store-1/p", &json!({ "quantity": 2 }))
        .await
        .expect(202);
    let id = reply.json()["purchaseId"]
        .as_str()
        .expect("purchase id")
        .to_owned();
    (cluster, id)
}

async fn restart_redis_empty(cluster: &mut TestCluster) {
    let redis = cluster.redis.as_mut().expect("redis");
    redis.kill();
    redis.restart().await;
}

async fn wait_for_status(central: &stockmesh_testkit::Api, id: &str, status: &str) -> Value {
    let path = format!("/purchases/{id}");
    eventually(&format!("purchase {status}"), HEALED, async || {
        central.get(&path).await.json()["status"] == status
    })
    .await;
    central.get(&path).await.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_whose_command_was_lost_is_sent_again_and_decided_once() {
    let (mut cluster, id) = purchase_while_the_store_is_away(Duration::from_secs(30)).await;
    restart_redis_empty(&mut cluster).await;
    cluster.restart_store(1).await;

    let body = wait_for_status(&cluster.central, &id, "CONFIRMED").await;
    assert_eq!(body["item"]["quantity"], 8);
    wait_for_central(&cluster.central, "store-1", "p", 8).await;
    let history = cluster.store(1).get("/inventory/p/history").await.json();
    let remote_sales = history
        .as_array()
        .expect("movements")
        .iter()
        .filter(|m| m["kind"] == "REMOTE_SALE" || m["kind"] == "remote_sale")
        .count();
    assert_eq!(remote_sales, 1, "{history}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_whose_reply_was_lost_is_asked_about_and_resolved_without_a_second_sale() {
    let (mut cluster, id) = purchase_while_the_store_is_away(Duration::from_secs(30)).await;
    cluster.stop_central().await;
    cluster.restart_store(1).await;
    let store = cluster.store(1).clone();
    eventually("the store to decide", HEALED, async || {
        store.quantity("/inventory/p").await == Some(8)
    })
    .await;
    outbox_drained(&store).await;
    restart_redis_empty(&mut cluster).await;
    cluster.restart_central().await;

    let body = wait_for_status(&cluster.central, &id, "CONFIRMED").await;
    assert_eq!(body["item"]["quantity"], 8);
    assert_eq!(store.quantity("/inventory/p").await, Some(8));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_lost_past_its_deadline_is_refused_by_the_store_not_left_pending() {
    let (mut cluster, id) = purchase_while_the_store_is_away(Duration::from_secs(1)).await;
    restart_redis_empty(&mut cluster).await;
    // The store comes back after the deadline: asked again, it refuses and records the refusal.
    let purchase = cluster
        .central
        .get(&format!("/purchases/{id}"))
        .await
        .json();
    let deadline =
        chrono::DateTime::parse_from_rfc3339(purchase["deadline"].as_str().expect("deadline"))
            .expect("a timestamp");
    eventually("the deadline to pass", HEALED, async || {
        chrono::Utc::now() > deadline
    })
    .await;
    cluster.restart_store(1).await;

    let body = wait_for_status(&cluster.central, &id, "REJECTED").await;
    assert_eq!(body["reason"], "EXPIRED");
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(10));
    cluster.shutdown().await;
}
