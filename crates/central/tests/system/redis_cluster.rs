//! The whole system on a private three-master Redis Cluster: Central and two stores whose keys
//! live in their partitions. Everything a single Redis gives works alike, and a master killed -9
//! and restarted on its append-only file loses nothing acknowledged.

use std::time::Duration;

use serde_json::json;
use stockmesh_bus::broker::Outgoing;
use stockmesh_bus::topology;
use stockmesh_core::StoreId;
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::metrics::sample;
use stockmesh_testkit::{BrokerKind, TestCluster, eventually};

/// Central's consumer name here, so that its gauges are told apart from other tests' in this
/// process (metrics are process-wide).
const CENTRAL: &str = "central-on-cluster";
/// Room for a restarted master to be found again by the clients.
const RECOVERY: Duration = Duration::from_secs(30);

fn events_of(store: &str) -> String {
    topology::events_stream(&StoreId::parse(store).expect("valid id"))
}

/// Waits until Central shows `expected` of `product` at `store`, allowing for the clients'
/// back-off while a master was away.
async fn recovered_to(cluster: &TestCluster, store: &str, product: &str, expected: i64) {
    let path = format!("/inventory/{store}/{product}");
    eventually(
        &format!("Central to show {expected} of {product} at {store}"),
        RECOVERY,
        async || cluster.central.quantity(&path).await == Some(expected),
    )
    .await;
}

/// Every store Central lists as online.
async fn online(cluster: &TestCluster) -> Vec<String> {
    let stores = cluster.central.get("/stores").await.expect(200).json();
    stores
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["online"] == true)
        .filter_map(|s| s["storeId"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_and_two_stores_work_on_a_redis_cluster_and_survive_a_master_killed_and_restarted()
{
    let mut cluster = TestCluster::start_tuned(BrokerKind::RedisCluster, 2, |c| {
        c.consumer_name = CENTRAL.to_owned();
    })
    .await;
    let (s1, s2) = (cluster.store(1).clone(), cluster.store(2).clone());

    // Both stores online: their heartbeats and the registry are read from the cluster.
    let mut listed = online(&cluster).await;
    listed.sort();
    assert_eq!(listed, ["store-1", "store-2"]);

    // A local sale propagates to Central's view.
    s1.create_item("p").await.expect(201);
    s1.set_quantity("p", 10).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "p", 10).await;
    s1.purchase("p", 3).await.expect(200);
    wait_for_central(&cluster.central, "store-1", "p", 7).await;

    // A remote purchase is decided by the owning store and answered.
    s2.create_item("q").await.expect(201);
    s2.set_quantity("q", 5).await.expect(204);
    wait_for_central(&cluster.central, "store-2", "q", 5).await;
    let bought = cluster
        .central
        .post("/purchase/store-2/q", &json!({"quantity": 2}))
        .await
        .expect(200)
        .json();
    assert_eq!(bought["quantity"], 3);
    let ledger = s2.get("/inventory/q/history").await.expect(200).json();
    assert_eq!(ledger[0]["kind"], "remote_sale", "{ledger}");
    assert_eq!(ledger[0]["purchaseId"], bought["purchaseId"], "{ledger}");
    assert_eq!(s2.quantity("/inventory/q").await, Some(3));
    cluster
        .central
        .post("/purchase/store-2/q", &json!({"quantity": 4}))
        .await
        .expect(409);

    // A poison event lands in the dead letters, visible there and in the metrics, and
    // `/metrics` reports the consumer lag of every store's stream.
    let events1 = events_of("store-1");
    let poison = Outgoing {
        stream: &events1,
        event_type: "GARBAGE",
        data: "{not json",
    };
    cluster
        .broker
        .publish(&[poison], 1_000_000)
        .await
        .expect("publish");
    let dead = topology::dead_letter_stream(&events1);
    eventually("the poison dead-lettered", RECOVERY, async || {
        cluster
            .broker
            .entries(&dead)
            .await
            .is_ok_and(|d| d.len() == 1)
    })
    .await;
    let dead_entries = cluster.broker.entries(&dead).await.expect("dead letters");
    assert_eq!(dead_entries[0].event_type.as_deref(), Some("GARBAGE"));
    eventually("dead letters and lag in /metrics", RECOVERY, async || {
        let text = cluster.central.get("/metrics").await.text;
        let node = ("node", CENTRAL);
        sample(
            &text,
            "stockmesh_dead_letter_length",
            &[node, ("stream", &events1)],
        ) == Some(1.0)
            && ["store-1", "store-2"].iter().all(|store| {
                sample(
                    &text,
                    "stockmesh_consumer_lag",
                    &[node, ("stream", &events_of(store)), ("group", "central")],
                ) == Some(0.0)
            })
    })
    .await;

    // Kill -9 the master that holds store-1's partition; store-1 keeps selling meanwhile.
    let acknowledged: Vec<String> = cluster
        .broker
        .entries(&events1)
        .await
        .expect("entries")
        .into_iter()
        .map(|d| d.id)
        .collect();
    let servers = cluster.redis_cluster.as_mut().expect("a cluster");
    let master = servers
        .nodes()
        .node_of(&topology::cluster_key(&events1))
        .await
        .expect("a master holds store-1's partition");
    servers.kill(master);
    s1.purchase("p", 2).await.expect(200);
    servers.restart(master).await;

    // Nothing acknowledged is lost, and the system keeps working: the sale made during the
    // outage and a new one propagate, both stores are online, a remote purchase is answered.
    recovered_to(&cluster, "store-1", "p", 5).await;
    s1.purchase("p", 1).await.expect(200);
    recovered_to(&cluster, "store-1", "p", 4).await;
    let after: Vec<String> = cluster
        .broker
        .entries(&events1)
        .await
        .expect("entries")
        .into_iter()
        .map(|d| d.id)
        .collect();
    for id in &acknowledged {
        assert!(after.contains(id), "entry {id} lost by the restart");
    }
    assert_eq!(
        cluster.broker.entries(&dead).await.expect("dead").len(),
        1,
        "the dead letter survives"
    );
    eventually("both stores online again", RECOVERY, async || {
        online(&cluster).await.len() == 2
    })
    .await;
    let bought = cluster
        .central
        .post("/purchase/store-1/p", &json!({"quantity": 1}))
        .await
        .expect(200)
        .json();
    assert_eq!(bought["quantity"], 3);
    assert_eq!(s1.quantity("/inventory/p").await, Some(3));
    cluster.shutdown().await;
}
