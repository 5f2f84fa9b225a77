//! Readiness follows the broker, and one correlation id can be followed from Central's request to
//! the store's ledger and back to Central's purchase record.

use std::time::Duration;

use reqwest::Method;
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::{TestCluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_while_redis_is_down_and_200_when_it_returns() {
    let mut cluster = TestCluster::start(1).await;
    for api in [&cluster.central, cluster.store(1)] {
        api.get("/healthz").await.expect(200);
        assert_eq!(
            api.get("/readyz").await.expect(200).json()["status"],
            "ready"
        );
    }
    cluster.redis.as_mut().expect("redis").kill();
    for api in [cluster.central.clone(), cluster.store(1).clone()] {
        let reply = api.get("/readyz").await.expect(503);
        assert_eq!(reply.json()["title"], "Not Ready");
        let detail = reply.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains("broker unreachable"), "{detail}");
        api.get("/healthz").await.expect(200);
    }
    // The store still sells without its broker.
    cluster.store(1).create_item("p").await.expect(201);

    cluster.redis.as_mut().expect("redis").restart().await;
    for api in [cluster.central.clone(), cluster.store(1).clone()] {
        eventually("ready again", Duration::from_secs(5), async || {
            api.get("/readyz").await.status == 200
        })
        .await;
    }
    wait_for_central(&cluster.central, "store-1", "p", 0).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_correlation_id_runs_from_the_purchase_request_through_the_store_and_back() {
    let cluster = TestCluster::start(1).await;
    let store = cluster.store(1);
    store.create_item("p").await.expect(201);
    store.set_quantity("p", 5).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "p", 5).await;

    let reply = cluster
        .central
        .send(
            Method::POST,
            "/purchase/store-1/p",
            Some("application/json"),
            Some(br#"{"quantity":2}"#.to_vec()),
            &[("x-request-id", "checkout-7f3a")],
        )
        .await
        .expect(200);
    assert_eq!(reply.header("x-request-id"), Some("checkout-7f3a"));
    let purchase_id = reply.json()["purchaseId"].as_str().expect("id").to_owned();

    let ledger = store.get("/inventory/p/history").await.expect(200).json();
    let sale = &ledger[0];
    assert_eq!(sale["kind"], "remote_sale");
    assert_eq!(sale["purchaseId"], purchase_id.as_str());
    assert_eq!(
        sale["correlationId"], "checkout-7f3a",
        "the store's movement"
    );

    let record = cluster
        .central
        .get(&format!("/purchases/{purchase_id}"))
        .await
        .expect(200)
        .json();
    assert_eq!(
        record["correlationId"], "checkout-7f3a",
        "Central's purchase record"
    );
    assert_eq!(record["status"], "CONFIRMED");

    // The reply event that came back carries it too.
    let events = cluster
        .broker
        .entries("stockmesh:{store-1}:events")
        .await
        .expect("entries");
    let reply_event = events
        .iter()
        .filter_map(|e| e.data.as_deref())
        .filter_map(|d| serde_json::from_slice::<serde_json::Value>(d).ok())
        .find(|e| e["type"] == "REMOTE_PURCHASE_CONFIRMED")
        .expect("the reply is in the stream");
    assert_eq!(reply_event["correlationId"], "checkout-7f3a");

    // A W3C traceparent gives its trace id when there is no X-Request-Id.
    let traced = cluster
        .central
        .send(
            Method::POST,
            "/purchase/store-1/p",
            Some("application/json"),
            Some(br#"{"quantity":1}"#.to_vec()),
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
        )
        .await
        .expect(200);
    assert_eq!(
        traced.header("x-request-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let ledger = store.get("/inventory/p/history").await.json();
    assert_eq!(
        ledger[0]["correlationId"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    cluster.shutdown().await;
}
