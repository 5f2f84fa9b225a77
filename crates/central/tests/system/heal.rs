//! Self-healing (issue 13): Central re-converges by itself when the broker loses entries it had
//! acknowledged, on a real `redis-server` without persistence.

use std::time::Duration;

use stockmesh_testkit::demo::wait_for_central;
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
    cluster.shutdown().await;
}
