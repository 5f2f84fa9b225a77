//! Central's API: the view, stores, products, and every path of a remote purchase.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::{BrokerKind, TestCluster, eventually};

async fn stocked(cluster: &TestCluster, store: usize, product: &str, quantity: i64) {
    let api = cluster.store(store);
    api.create_item(product).await.expect(201);
    api.set_quantity(product, quantity).await.expect(204);
    wait_for_central(
        &cluster.central,
        &format!("store-{store}"),
        product,
        quantity,
    )
    .await;
}

async fn buy(
    cluster: &TestCluster,
    path: &str,
    quantity: i64,
    key: Option<&str>,
) -> stockmesh_testkit::http::Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    cluster
        .central
        .send(
            Method::POST,
            path,
            Some("application/json"),
            Some(json!({ "quantity": quantity }).to_string().into_bytes()),
            &headers,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_lists_filters_and_pages_across_stores() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    stocked(&cluster, 1, "a", 1).await;
    stocked(&cluster, 1, "b", 2).await;
    stocked(&cluster, 2, "a", 3).await;

    let all = cluster.central.get("/inventory").await.expect(200);
    assert_eq!(all.header("x-total-count"), Some("3"));
    let by_product = cluster
        .central
        .get("/inventory?productId=a")
        .await
        .expect(200);
    assert_eq!(by_product.header("x-total-count"), Some("2"));
    let page = cluster
        .central
        .get("/inventory?storeId=store-1&size=1&page=0")
        .await
        .expect(200);
    assert_eq!(page.json()[0]["productId"], "a");
    let link = page.header("link").expect("Link header");
    assert!(
        link.contains("</inventory?storeId=store-1&page=1&size=1>; rel=\"next\""),
        "{link}"
    );

    let item = cluster
        .central
        .get("/inventory/store-2/a")
        .await
        .expect(200)
        .json();
    assert_eq!(
        (item["quantity"].as_i64(), item["version"].as_i64()),
        (Some(3), Some(2))
    );
    let missing = cluster
        .central
        .get("/inventory/store-2/b")
        .await
        .expect(404);
    assert_eq!(missing.json()["title"], "Product Not Found");
    let unknown = cluster
        .central
        .get("/inventory/store-9/a")
        .await
        .expect(404);
    assert_eq!(unknown.json()["title"], "Store Not Found");

    let product = cluster.central.get("/products/a").await.expect(200).json();
    assert_eq!(product["total"], 4);
    assert_eq!(product["onlineTotal"], 4);
    assert_eq!(product["stores"].as_array().map(Vec::len), Some(2));
    assert_eq!(product["stores"][0]["online"], true);
    assert!(product["stores"][0]["ageMs"].is_number());
    cluster.central.get("/products/zzz").await.expect(404);

    let stores = cluster.central.get("/stores").await.expect(200).json();
    assert_eq!(stores[0]["storeId"], "store-1");
    assert_eq!(stores[0]["items"], 2);
    assert!(stores[0]["heartbeatAgeMs"].is_number());
    assert!(stores[0]["lastEventAt"].is_string());
    cluster.shutdown().await;
}

fn keys(reply: &stockmesh_testkit::http::Reply) -> Vec<String> {
    reply
        .json()
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["storeId"].as_str().unwrap_or_default(),
                i["productId"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_pages_by_cursor_once_in_order_while_items_arrive() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 2).await;
    for store in 1..=2 {
        for product in ["a", "c", "e"] {
            stocked(&cluster, store, product, 1).await;
        }
    }

    let first = cluster.central.get("/inventory?size=2").await.expect(200);
    assert_eq!(keys(&first), ["store-1/a", "store-1/c"]);
    let next = first.header("x-next-cursor").expect("more follow");
    assert_eq!(next, "store-1~c");
    // Behind the cursor (never seen), ahead of it in the same store and in the next one.
    stocked(&cluster, 1, "b", 1).await;
    stocked(&cluster, 1, "d", 1).await;
    stocked(&cluster, 2, "b", 1).await;

    let mut seen = keys(&first);
    let mut cursor = next.to_owned();
    loop {
        let reply = cluster
            .central
            .get(&format!("/inventory?size=2&after={cursor}"))
            .await
            .expect(200);
        assert_eq!(reply.header("x-total-count"), Some("9"));
        seen.extend(keys(&reply));
        match reply.header("x-next-cursor") {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "store-1/a",
            "store-1/c",
            "store-1/d",
            "store-1/e",
            "store-2/a",
            "store-2/b",
            "store-2/c",
            "store-2/e"
        ],
        "every item once, in (store, product) order"
    );

    // Narrowed lists take the same cursor.
    let in_store = cluster
        .central
        .get("/inventory?storeId=store-2&after=store-1~z")
        .await
        .expect(200);
    assert_eq!(
        keys(&in_store),
        ["store-2/a", "store-2/b", "store-2/c", "store-2/e"]
    );
    assert_eq!(in_store.header("x-total-count"), Some("4"));
    let after_store = cluster
        .central
        .get("/inventory?storeId=store-1&after=store-2~a")
        .await
        .expect(200);
    assert_eq!(keys(&after_store), Vec::<String>::new());
    assert_eq!(after_store.header("x-total-count"), Some("5"));
    let in_store_mid = cluster
        .central
        .get("/inventory?storeId=store-1&after=store-1~c&size=1")
        .await
        .expect(200);
    assert_eq!(keys(&in_store_mid), ["store-1/d"]);
    assert_eq!(
        in_store_mid.header("link"),
        Some(
            "</inventory?storeId=store-1&size=1>; rel=\"first\", \
             </inventory?storeId=store-1&after=store-1~d&size=1>; rel=\"next\""
        )
    );
    let by_product = cluster
        .central
        .get("/inventory?productId=b&after=store-1~b")
        .await
        .expect(200);
    assert_eq!(keys(&by_product), ["store-2/b"]);
    assert_eq!(by_product.header("x-total-count"), Some("2"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cursor_or_a_cursor_with_a_page_is_a_400_that_names_after() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    for bad in [
        "store-1",
        "store-1~",
        "~a",
        "a~b~c",
        "..~a",
        "store-1%7Ea%20b",
    ] {
        let reply = cluster
            .central
            .get(&format!("/inventory?after={bad}"))
            .await
            .expect(400);
        assert_eq!(reply.content_type(), "application/problem+json");
        let detail = reply.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            detail,
            "after must be the cursor of a previous page: storeId~productId, as X-Next-Cursor gave it",
            "{bad:?}"
        );
    }
    let both = cluster
        .central
        .get("/inventory?page=1&after=store-1~a")
        .await
        .expect(400);
    let detail = both.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.starts_with("after cannot be combined with page"),
        "{detail}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_refusals_come_at_once_and_change_nothing() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, 1, "p", 5).await;
    let unknown_store = buy(&cluster, "/purchase/store-9/p", 1, None)
        .await
        .expect(404);
    assert_eq!(unknown_store.json()["title"], "Store Not Found");
    let unknown_product = buy(&cluster, "/purchase/store-1/nope", 1, None)
        .await
        .expect(404);
    assert_eq!(unknown_product.json()["title"], "Product Not Found");
    let too_many = buy(&cluster, "/purchase/store-1/p", 6, None)
        .await
        .expect(409);
    let detail = too_many.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.contains("5 available") && detail.contains("6 requested"),
        "{detail}"
    );
    for (body, wanted) in [
        (&b"{\"quantity\":0}"[..], 400),
        (b"{\"quantity\":-1}", 400),
        (b"{\"quantity\":\"1\"}", 400),
        (b"{\"quantity\":1,\"x\":1}", 400),
        (b"nope", 400),
    ] {
        let reply = cluster
            .central
            .send(
                Method::POST,
                "/purchase/store-1/p",
                Some("application/json"),
                Some(body.to_vec()),
                &[],
            )
            .await;
        assert_eq!(reply.status, wanted, "{}", reply.text);
        assert_eq!(reply.content_type(), "application/problem+json");
    }
    let bad_path = buy(&cluster, "/purchase/bad%20store/p", 1, None)
        .await
        .expect(400);
    assert!(
        bad_path.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("storeId must be")
    );
    let bad_key = buy(&cluster, "/purchase/store-1/p", 1, Some("has space"))
        .await
        .expect(400);
    assert!(
        bad_key.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Idempotency-Key")
    );
    cluster
        .central
        .get("/purchases/not-a-uuid")
        .await
        .expect(400);
    cluster
        .central
        .get("/purchases/01a20da2-2d32-7027-8bb1-a45c55536cd1")
        .await
        .expect(404);
    cluster
        .central
        .send(Method::DELETE, "/stores", None, None, &[])
        .await
        .expect(405);
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(5));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_idempotency_key_buys_once_and_a_reused_key_is_a_422() {
    let cluster = TestCluster::start(1).await;
    stocked(&cluster, 1, "p", 10).await;
    let first = buy(&cluster, "/purchase/store-1/p", 3, Some("order-1"))
        .await
        .expect(200)
        .json();
    let retry = buy(&cluster, "/purchase/store-1/p", 3, Some("order-1"))
        .await
        .expect(200)
        .json();
    assert_eq!(first, retry, "the retry answers the first outcome");
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(7));

    let mismatch = buy(&cluster, "/purchase/store-1/p", 4, Some("order-1"))
        .await
        .expect(422);
    assert_eq!(mismatch.json()["title"], "Idempotency Key Mismatch");

    // A refusal is also the first outcome: a retry does not buy even once stock has arrived.
    buy(&cluster, "/purchase/store-1/p", 50, Some("order-2"))
        .await
        .expect(409);
    cluster.store(1).set_quantity("p", 100).await.expect(204);
    wait_for_central(&cluster.central, "store-1", "p", 100).await;
    buy(&cluster, "/purchase/store-1/p", 50, Some("order-2"))
        .await
        .expect(409);
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(100));

    // Concurrent retries of one key still buy once.
    let tries: Vec<_> = (0..10)
        .map(|_| {
            let central = cluster.central.clone();
            tokio::spawn(async move {
                central
                    .send(
                        Method::POST,
                        "/purchase/store-1/p",
                        Some("application/json"),
                        Some(br#"{"quantity":1}"#.to_vec()),
                        &[("idempotency-key", "order-3")],
                    )
                    .await
                    .status
            })
        })
        .collect();
    for attempt in tries {
        let status = attempt.await.expect("task");
        assert_eq!(status, 200, "every retry answers the first outcome");
    }
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(99));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_wait_limit_a_purchase_answers_202_and_resolves_later() {
    let cluster = TestCluster::start_tuned(BrokerKind::Redis, 1, |c| {
        c.purchase.wait = Duration::ZERO;
    })
    .await;
    stocked(&cluster, 1, "p", 4).await;
    let accepted = buy(&cluster, "/purchase/store-1/p", 3, None)
        .await
        .expect(202);
    let location = accepted.header("location").expect("Location").to_owned();
    assert!(location.starts_with("/purchases/"));
    assert_eq!(accepted.json()["status"], "PENDING");
    eventually(
        "the purchase to resolve",
        Duration::from_secs(2),
        async || cluster.central.get(&location).await.json()["status"] == "CONFIRMED",
    )
    .await;
    let purchase = cluster.central.get(&location).await.expect(200).json();
    assert_eq!(purchase["item"]["quantity"], 1);
    assert_eq!(purchase["quantity"], 3);
    assert!(purchase["resolvedAt"].is_string());
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(1));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_reaches_the_store_after_its_deadline_buys_nothing() {
    let cluster = TestCluster::start_tuned(BrokerKind::InProcess, 1, |c| {
        c.purchase.deadline = Duration::ZERO;
    })
    .await;
    stocked(&cluster, 1, "p", 4).await;
    let late = buy(&cluster, "/purchase/store-1/p", 1, None)
        .await
        .expect(503);
    assert!(
        late.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("deadline")
    );
    assert_eq!(cluster.store(1).quantity("/inventory/p").await, Some(4));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_shuts_down_is_offline_at_once() {
    let mut cluster = TestCluster::start(2).await;
    stocked(&cluster, 2, "p", 4).await;
    cluster.stop_store(2).await;
    let refused = buy(&cluster, "/purchase/store-2/p", 1, None)
        .await
        .expect(503);
    assert_eq!(refused.json()["title"], "Store Unavailable");
    // Central checks the store is known, then online, then the product: an offline store
    // answers 503 whatever the product, and an unknown store 404.
    let unknown_product = buy(&cluster, "/purchase/store-2/nope", 1, None)
        .await
        .expect(503);
    assert_eq!(unknown_product.json()["title"], "Store Unavailable");
    buy(&cluster, "/purchase/store-9/p", 1, None)
        .await
        .expect(404);
    let stores = cluster.central.get("/stores").await.json();
    assert_eq!(stores[1]["online"], false);
    let product = cluster.central.get("/products/p").await.json();
    assert_eq!(
        (product["total"].as_i64(), product["onlineTotal"].as_i64()),
        (Some(4), Some(0))
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_catches_up_after_a_restart_and_rebuilds_a_lost_database_from_snapshots() {
    stockmesh_testkit::init_logs();
    let mut cluster = TestCluster::start(2).await;
    stocked(&cluster, 1, "a", 5).await;
    stocked(&cluster, 2, "b", 7).await;

    cluster.stop_central().await;
    cluster.store(1).set_quantity("a", 9).await.expect(204);
    cluster.store(1).create_item("c").await.expect(201);
    cluster.restart_central().await;
    wait_for_central(&cluster.central, "store-1", "a", 9).await;
    wait_for_central(&cluster.central, "store-1", "c", 0).await;

    // Central loses its database: it asks each store for a snapshot and rebuilds.
    cluster.stop_central().await;
    cluster.lose_central_database().await;
    cluster.restart_central().await;
    wait_for_central(&cluster.central, "store-1", "a", 9).await;
    wait_for_central(&cluster.central, "store-1", "c", 0).await;
    wait_for_central(&cluster.central, "store-2", "b", 7).await;
    let item = cluster.central.get("/inventory/store-1/a").await.json();
    assert_eq!(
        item["version"], 3,
        "the rebuilt view holds the store's version"
    );
    cluster.shutdown().await;
}

/// Remote purchases recorded together in one group commit each stand or fail alone: a retry
/// whose key another request of the same group took fails its own insert, rolls back only that,
/// and answers the first outcome; every other purchase of the group is recorded and bought.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_recorded_in_one_group_stand_or_fail_alone() {
    let cluster = TestCluster::start_tuned(BrokerKind::Redis, 1, |c| {
        c.db.group = stockmesh_bus::GroupCommit {
            max_requests: 256,
            max_wait: Duration::from_millis(10),
        };
    })
    .await;
    stocked(&cluster, 1, "p", 100).await;
    let central = std::sync::Arc::new(cluster.central.clone());
    let tries: Vec<_> = (0..40)
        .map(|i| {
            let central = central.clone();
            tokio::spawn(async move {
                let key = if i % 2 == 0 {
                    "same-order".to_owned()
                } else {
                    format!("order-{i}")
                };
                let reply = central
                    .send(
                        Method::POST,
                        "/purchase/store-1/p",
                        Some("application/json"),
                        Some(br#"{"quantity":1}"#.to_vec()),
                        &[("idempotency-key", &key)],
                    )
                    .await;
                (key, reply.status, reply.json()["purchaseId"].clone())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for attempt in tries {
        answers.push(attempt.await.expect("task"));
    }
    assert!(
        answers.iter().all(|(_, status, _)| *status == 200),
        "every purchase and retry answered 200: {answers:?}"
    );
    let same: std::collections::HashSet<_> = answers
        .iter()
        .filter(|(key, _, _)| key == "same-order")
        .map(|(_, _, id)| id.to_string())
        .collect();
    assert_eq!(same.len(), 1, "the retries share one purchase: {same:?}");
    assert_eq!(
        cluster.store(1).quantity("/inventory/p").await,
        Some(100 - 21),
        "twenty distinct orders and one shared order bought once each"
    );
    let db = &cluster
        .central_service()
        .expect("central runs in this process")
        .database()
        .reader;
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM purchases")
        .fetch_one(db)
        .await
        .expect("readable");
    assert_eq!(recorded, 21, "one record per order, none for a retry");
    cluster.shutdown().await;
}
