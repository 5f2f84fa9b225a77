//! Central on PostgreSQL, whatever `STOCKMESH_TEST_CENTRAL_DB` says: the view, remote purchases
//! with their idempotency keys, reservations and transfers, a restart, and the loss of the whole
//! database, end to end over a private `redis-server`, with the rows checked where they live.
//! (CI also runs every Central test on PostgreSQL: `STOCKMESH_TEST_CENTRAL_DB=postgres`.)

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::{BrokerKind, TestCluster, eventually};

async fn buy(cluster: &TestCluster, quantity: i64, key: &str) -> stockmesh_testkit::http::Reply {
    cluster
        .central
        .send(
            Method::POST,
            "/purchase/store-1/p",
            Some("application/json"),
            Some(json!({ "quantity": quantity }).to_string().into_bytes()),
            &[("idempotency-key", key)],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_on_postgres_keeps_the_view_purchases_reservations_and_transfers_across_a_restart()
{
    let mut cluster = TestCluster::start_on_postgres(BrokerKind::Redis, 2).await;
    for (i, quantity) in [(1, 10), (2, 4)] {
        let store = cluster.store(i);
        store.create_item("p").await.expect(201);
        store.set_quantity("p", quantity).await.expect(204);
        wait_for_central(&cluster.central, &format!("store-{i}"), "p", quantity).await;
    }

    let first = buy(&cluster, 3, "order-1").await.expect(200).json();
    assert!(first["purchaseId"].is_string(), "{first}");
    let retry = buy(&cluster, 3, "order-1").await.expect(200).json();
    assert_eq!(first, retry, "a retried key answers the first outcome");
    buy(&cluster, 4, "order-1").await.expect(422);
    buy(&cluster, 50, "order-2").await.expect(409);
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(7));

    let held = cluster
        .central
        .post(
            "/reservations",
            &json!({"storeId": "store-1", "productId": "p", "quantity": 2, "ttl": 600}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(held["status"], "HELD");
    let moved = cluster
        .central
        .post(
            "/transfers",
            &json!({"from": "store-2", "to": "store-1", "productId": "p", "quantity": 1}),
        )
        .await
        .json();
    let transfer = moved["transferId"]
        .as_str()
        .expect("transfer id")
        .to_owned();
    let central = cluster.central.clone();
    eventually(
        "the transfer to be received",
        Duration::from_secs(10),
        async || {
            central.get(&format!("/transfers/{transfer}")).await.json()["status"] == "RECEIVED"
        },
    )
    .await;

    let product = cluster.central.get("/products/p").await.expect(200).json();
    assert_eq!(product["inTransit"], 0, "{product}");

    // The rows are in PostgreSQL, each once.
    let db = cluster.central_db().await;
    let server: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&db)
        .await
        .expect("version");
    assert!(server.starts_with("PostgreSQL"), "{server}");
    let purchases: Vec<(String, String)> =
        sqlx::query_as("SELECT idempotency_key, status FROM purchases ORDER BY idempotency_key")
            .fetch_all(&db)
            .await
            .expect("purchases");
    assert_eq!(
        purchases,
        [
            ("order-1".to_owned(), "CONFIRMED".to_owned()),
            ("order-2".to_owned(), "REJECTED".to_owned())
        ]
    );
    db.close().await;

    cluster.restart_central().await;
    let again = buy(&cluster, 3, "order-1").await.expect(200).json();
    assert_eq!(first, again, "the outcome outlives the restart");
    wait_for_central(&cluster.central, "store-1", "p", 6).await;
    wait_for_central(&cluster.central, "store-2", "p", 3).await;
    let reservation = held["reservationId"].as_str().expect("reservation id");
    let kept = cluster
        .central
        .get(&format!("/reservations/{reservation}"))
        .await
        .expect(200)
        .json();
    assert_eq!(kept["status"], "HELD");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_on_postgres_rebuilds_a_lost_database_from_the_stores() {
    let mut cluster = TestCluster::start_on_postgres(BrokerKind::Redis, 2).await;
    for (i, quantity) in [(1, 5), (2, 8)] {
        let store = cluster.store(i);
        store.create_item("p").await.expect(201);
        store.set_quantity("p", quantity).await.expect(204);
        wait_for_central(&cluster.central, &format!("store-{i}"), "p", quantity).await;
    }
    cluster.stop_central().await;
    cluster.lose_central_database().await;
    cluster.restart_central().await;
    wait_for_central(&cluster.central, "store-1", "p", 5).await;
    wait_for_central(&cluster.central, "store-2", "p", 8).await;
    let product = cluster.central.get("/products/p").await.expect(200).json();
    assert_eq!(product["total"], 13, "{product}");
    cluster.shutdown().await;
}
