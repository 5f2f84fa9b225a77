//! Transfers through crashes (issue 17), every node a separate OS process over a private
//! `redis-server` (AOF, fsync always): units leave one shelf once and arrive at the other once
//! whatever is killed in between.
//!
//! Crash points covered: the receiving store killed -9 with the transfer in flight (it completes
//! when the store returns); Central killed -9 as the transfer ships (its receipt command waits in
//! Central's outbox); `redis-server` killed -9 and restarted with the transfer in transit; the
//! receiving store disconnected while the transfer is in flight; the sending store killed -9 as it
//! decides.

use std::time::Duration;

use serde_json::{Value, json};
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::eventually;
use stockmesh_testkit::http::Api;
use stockmesh_testkit::process::ProcessCluster;

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");
const LIMIT: Duration = Duration::from_secs(20);

async fn stocked(cluster: &ProcessCluster, quantity: i64) {
    let store = &cluster.stores[0].api;
    store.create_item("p").await.expect(201);
    store.set_quantity("p", quantity).await.expect(204);
    wait_for_central(&cluster.central.api, "store-1", "p", quantity).await;
}

async fn send(central: &Api, quantity: i64) -> Value {
    let reply = central
        .post(
            "/transfers",
            &json!({"from": "store-1", "to": "store-2", "productId": "p", "quantity": quantity}),
        )
        .await;
    assert!(matches!(reply.status, 201 | 202), "{}", reply.text);
    reply.json()
}

async fn wait_received(central: &Api, id: &str) {
    eventually(&format!("transfer {id} received"), LIMIT, async || {
        central.get(&format!("/transfers/{id}")).await.json()["status"] == "RECEIVED"
    })
    .await;
}

/// Each store's ledger holds the transfer once, and the shelves add up.
async fn moved_once(cluster: &ProcessCluster, id: &str, sent: i64, stock: i64) {
    let count = |ledger: Value, kind: &str| {
        ledger
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter(|l| l["kind"] == kind && l["transferId"] == id)
                    .count()
            })
            .unwrap_or(0)
    };
    let out = cluster.stores[0]
        .api
        .get("/inventory/p/history?size=1000")
        .await
        .expect(200);
    let inbound = cluster.stores[1]
        .api
        .get("/inventory/p/history?size=1000")
        .await
        .expect(200);
    assert_eq!(count(out.json(), "transfer_out"), 1);
    assert_eq!(count(inbound.json(), "transfer_in"), 1);
    assert_eq!(
        cluster.stores[0].api.quantity("/inventory/p").await,
        Some(stock - sent)
    );
    assert_eq!(
        cluster.stores[1].api.quantity("/inventory/p").await,
        Some(sent)
    );
    wait_for_central(&cluster.central.api, "store-2", "p", sent).await;
    let product = cluster
        .central
        .api
        .get("/products/p")
        .await
        .expect(200)
        .json();
    assert_eq!(
        (product["total"].as_i64(), product["inTransit"].as_i64()),
        (Some(stock), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_completes_once_when_the_receiving_store_returns_after_a_crash() {
    let mut cluster = ProcessCluster::start(BIN, 2).await;
    stocked(&cluster, 10).await;
    cluster.stores[1].kill().await;
    let id = send(&cluster.central.api, 4).await["transferId"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually("the units in transit", LIMIT, async || {
        cluster.central.api.get("/products/p").await.json()["inTransit"] == 4
    })
    .await;
    cluster.stores[1].restart().await;
    wait_received(&cluster.central.api, &id).await;
    moved_once(&cluster, &id, 4, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_completes_once_when_central_is_killed_as_it_ships() {
    let mut cluster = ProcessCluster::start(BIN, 2).await;
    stocked(&cluster, 10).await;
    let id = send(&cluster.central.api, 4).await["transferId"]
        .as_str()
        .expect("id")
        .to_owned();
    cluster.central.kill().await;
    cluster.central.restart().await;
    wait_received(&cluster.central.api, &id).await;
    moved_once(&cluster, &id, 4, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_in_transit_survives_redis_killed_and_a_disconnected_receiver() {
    let mut cluster = ProcessCluster::start(BIN, 2).await;
    stocked(&cluster, 10).await;
    cluster.stores[1]
        .api
        .post_empty("/disconnected")
        .await
        .expect(200);
    let id = send(&cluster.central.api, 4).await["transferId"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually("the units in transit", LIMIT, async || {
        cluster.central.api.get("/products/p").await.json()["inTransit"] == 4
    })
    .await;
    cluster.redis.kill();
    cluster.redis.restart().await;
    cluster.stores[1]
        .api
        .post_empty("/connected")
        .await
        .expect(200);
    wait_received(&cluster.central.api, &id).await;
    moved_once(&cluster, &id, 4, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_shipped_at_most_once_when_the_sending_store_is_killed_as_it_decides() {
    let mut cluster = ProcessCluster::start(BIN, 2).await;
    stocked(&cluster, 10).await;
    let central = cluster.central.api.clone();
    let request = tokio::spawn(async move {
        central
            .post(
                "/transfers",
                &json!({"from": "store-1", "to": "store-2", "productId": "p", "quantity": 4}),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(3)).await;
    cluster.stores[0].kill().await;
    let reply = request.await.expect("request");
    cluster.stores[0].restart().await;
    match reply.status {
        // Recorded: the store decides it after its restart (well within the deadline).
        201 | 202 => {
            let id = reply.json()["transferId"].as_str().expect("id").to_owned();
            wait_received(&cluster.central.api, &id).await;
            moved_once(&cluster, &id, 4, 10).await;
        }
        // Refused before it was recorded (the store looked offline): nothing moved.
        503 => {
            assert_eq!(
                cluster.stores[0].api.quantity("/inventory/p").await,
                Some(10)
            );
        }
        other => panic!("answered {other}: {}", reply.text),
    }
}
