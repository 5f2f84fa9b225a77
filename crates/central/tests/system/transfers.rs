//! Transfers between stores (issue 17) over HTTP: the happy path, rejection for lack of stock,
//! receipt confirmation at the receiving store, cancellation (also when the shipment crosses
//! it), bad input, listing, in-transit quantities, and the ledger at each store.

use std::time::Duration;

use serde_json::{Value, json};
use stockmesh_core::StoreId;
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::http::{Api, Reply};
use stockmesh_testkit::{BrokerKind, TestCluster, eventually};

const LIMIT: Duration = Duration::from_secs(10);

async fn stocked(cluster: &TestCluster, product: &str, quantity: i64) {
    let store = cluster.store(1);
    store.create_item(product).await.expect(201);
    store.set_quantity(product, quantity).await.expect(204);
    wait_for_central(&cluster.central, "store-1", product, quantity).await;
}

async fn send(central: &Api, quantity: i64, confirm: bool) -> Reply {
    central
        .post(
            "/transfers",
            &json!({"from": "store-1", "to": "store-2", "productId": "p", "quantity": quantity,
                    "confirmReceipt": confirm}),
        )
        .await
}

async fn transfer(central: &Api, id: &str) -> Value {
    central
        .get(&format!("/transfers/{id}"))
        .await
        .expect(200)
        .json()
}

async fn wait_status(central: &Api, id: &str, status: &str) -> Value {
    eventually(
        &format!("transfer {id} to be {status}"),
        LIMIT,
        async || transfer(central, id).await["status"] == status,
    )
    .await;
    transfer(central, id).await
}

async fn quantity(store: &Api, product: &str) -> Option<i64> {
    store.quantity(&format!("/inventory/{product}")).await
}

fn id_of(reply: &Reply) -> String {
    reply.json()["transferId"]
        .as_str()
        .expect("transfer id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_units_once_to_a_store_that_did_not_carry_the_product() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    stocked(&cluster, "p", 10).await;
    let reply = send(&cluster.central, 4, false).await.expect(201);
    let id = id_of(&reply);
    assert_eq!(
        reply.header("location"),
        Some(format!("/transfers/{id}").as_str())
    );
    let done = wait_status(&cluster.central, &id, "RECEIVED").await;
    assert!(
        done["shippedAt"].is_string() && done["receivedAt"].is_string(),
        "{done}"
    );
    assert_eq!(quantity(cluster.store(1), "p").await, Some(6));
    assert_eq!(quantity(cluster.store(2), "p").await, Some(4));

    let out = cluster
        .store(1)
        .get("/inventory/p/history")
        .await
        .expect(200)
        .json();
    assert_eq!(
        (out[0]["kind"].clone(), out[0]["transferId"].clone()),
        (json!("transfer_out"), json!(id))
    );
    let inbound = cluster
        .store(2)
        .get("/inventory/p/history")
        .await
        .expect(200)
        .json();
    assert_eq!(
        (inbound[0]["kind"].clone(), inbound[0]["transferId"].clone()),
        (json!("transfer_in"), json!(id))
    );
    assert_eq!(inbound[0]["delta"], 4);
    assert_eq!(
        inbound.as_array().map(Vec::len),
        Some(2),
        "created, then received once"
    );

    wait_for_central(&cluster.central, "store-2", "p", 4).await;
    let product = cluster.central.get("/products/p").await.expect(200).json();
    assert_eq!(
        (product["total"].as_i64(), product["inTransit"].as_i64()),
        (Some(10), Some(0))
    );
    let listed = cluster
        .central
        .get("/transfers?storeId=store-2")
        .await
        .expect(200);
    assert_eq!(listed.header("x-total-count"), Some("1"));
    assert_eq!(listed.json()[0]["transferId"], id.as_str());
    let none = cluster
        .central
        .get("/transfers?storeId=store-9")
        .await
        .expect(200);
    assert_eq!(none.header("x-total-count"), Some("0"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_of_more_than_is_available_is_rejected_and_moves_nothing() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    stocked(&cluster, "p", 10).await;
    cluster
        .central
        .post(
            "/reservations",
            &json!({"storeId": "store-1", "productId": "p", "quantity": 3, "ttl": 60}),
        )
        .await
        .expect(201);
    let refused = send(&cluster.central, 8, false).await.expect(409);
    assert_eq!(refused.json()["title"], "Insufficient Stock");
    assert_eq!(quantity(cluster.store(1), "p").await, Some(7));
    cluster.store(2).get("/inventory/p").await.expect(404);
    let all = cluster.central.get("/transfers").await.expect(200).json();
    assert_eq!(all[0]["status"], "REJECTED");
    assert_eq!(all[0]["reason"], "INSUFFICIENT_STOCK");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_asking_for_confirmation_waits_in_transit_until_received() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    stocked(&cluster, "p", 10).await;
    let id = id_of(&send(&cluster.central, 4, true).await.expect(201));
    eventually("the units to arrive at store-2", LIMIT, async || {
        transfer(&cluster.central, &id).await["arrivedAt"].is_string()
    })
    .await;
    assert_eq!(
        transfer(&cluster.central, &id).await["status"],
        "IN_TRANSIT"
    );
    cluster.store(2).get("/inventory/p").await.expect(404);
    let product = cluster.central.get("/products/p").await.expect(200).json();
    assert_eq!(product["inTransit"], 4);

    let item = cluster
        .store(2)
        .post_empty(&format!("/transfers/{id}/receive"))
        .await
        .expect(200);
    assert_eq!(item.json()["quantity"], 4);
    let again = cluster
        .store(2)
        .post_empty(&format!("/transfers/{id}/receive"))
        .await
        .expect(409);
    assert_eq!(again.json()["title"], "Transfer Already Received");
    cluster
        .store(1)
        .post_empty(&format!("/transfers/{id}/receive"))
        .await
        .expect(404);
    wait_status(&cluster.central, &id, "RECEIVED").await;
    assert_eq!(quantity(cluster.store(2), "p").await, Some(4));
    let product = cluster.central.get("/products/p").await.expect(200).json();
    assert_eq!(product["inTransit"], 0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transfer_whose_shipment_crossed_the_cancel_returns_to_its_sender() {
    let mut cluster = TestCluster::start_tuned(BrokerKind::InProcess, 2, |c| {
        c.purchase.wait = Duration::from_millis(300);
    })
    .await;
    stocked(&cluster, "p", 10).await;
    // store-1 stops consuming but still looks online (as a store that crashed moments ago).
    cluster.stop_store(1).await;
    let store1 = StoreId::parse("store-1").expect("valid");
    let now = stockmesh_core::now().timestamp_millis();
    cluster
        .broker
        .beat(&store1, now, Duration::from_secs(30))
        .await
        .expect("beat");
    let pending = send(&cluster.central, 4, false).await.expect(202);
    let id = id_of(&pending);
    assert_eq!(pending.json()["status"], "REQUESTED");
    let cancelled = cluster
        .central
        .post_empty(&format!("/transfers/{id}/cancel"))
        .await
        .expect(200);
    assert_eq!(cancelled.json()["status"], "CANCELLED");
    cluster
        .central
        .post_empty(&format!("/transfers/{id}/cancel"))
        .await
        .expect(409);

    // The store returns and ships what it was asked before it hears of the cancel: the units
    // come back to it.
    cluster.restart_store(1).await;
    eventually("the shipment to return to store-1", LIMIT, async || {
        transfer(&cluster.central, &id).await["returnedAt"].is_string()
    })
    .await;
    let t = transfer(&cluster.central, &id).await;
    assert_eq!(t["status"], "CANCELLED");
    assert_eq!(quantity(cluster.store(1), "p").await, Some(10));
    cluster.store(2).get("/inventory/p").await.expect(404);
    let ledger = cluster
        .store(1)
        .get("/inventory/p/history")
        .await
        .expect(200)
        .json();
    assert_eq!(
        (ledger[0]["kind"].clone(), ledger[0]["reason"].clone()),
        (json!("transfer_in"), json!("returned"))
    );
    assert_eq!(ledger[1]["kind"], "transfer_out");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_transit_transfer_cannot_be_cancelled() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    stocked(&cluster, "p", 10).await;
    let id = id_of(&send(&cluster.central, 4, true).await.expect(201));
    let refused = cluster
        .central
        .post_empty(&format!("/transfers/{id}/cancel"))
        .await
        .expect(409);
    assert_eq!(refused.json()["title"], "Transfer Not Cancellable");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transfer_input_is_a_4xx_and_records_nothing() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    stocked(&cluster, "p", 10).await;
    let base = json!({"from": "store-1", "to": "store-2", "productId": "p", "quantity": 1});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (
            with("to", json!("store-1")),
            400,
            "to must name another store than from",
        ),
        (
            with("quantity", json!(0)),
            400,
            "quantity must be an integer from 1 to 1,000,000,000, got 0",
        ),
        (
            with("quantity", json!(-3)),
            400,
            "quantity must be an integer from 1",
        ),
        (
            with("to", json!("store-9")),
            404,
            "store store-9 is not known",
        ),
        (
            with("from", json!("store-9")),
            404,
            "store store-9 is not known",
        ),
        (
            with("productId", json!("q")),
            404,
            "product q not found at store store-1",
        ),
        (with("via", json!("x")), 400, "via is not a field"),
    ];
    for (body, status, detail) in cases {
        let reply = cluster.central.post("/transfers", &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert!(
            reply.text.contains(detail),
            "{body}: {} lacks {detail:?}",
            reply.text
        );
    }
    cluster.central.get("/transfers/nope").await.expect(400);
    cluster
        .central
        .get("/transfers/0190a0a0-0000-7000-8000-000000000000")
        .await
        .expect(404);
    let all = cluster.central.get("/transfers").await.expect(200);
    assert_eq!(all.header("x-total-count"), Some("0"));
    assert_eq!(quantity(cluster.store(1), "p").await, Some(10));
    cluster.shutdown().await;
}
