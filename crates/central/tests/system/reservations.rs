//! Item states and reservations (issue 16) over HTTP: a hold decided by the owning store, units no
//! sale can take, commit and release exactly once, expiry by the store's own clock (also while the
//! store is disconnected), bad input, and holds racing local sales on one item.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
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

async fn send_json(
    api: &Api,
    method: Method,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    api.send(
        method,
        path,
        Some("application/json"),
        Some(body.to_string().into_bytes()),
        &headers,
    )
    .await
}

async fn reserve(central: &Api, product: &str, quantity: i64, ttl: i64) -> Reply {
    central
        .post(
            "/reservations",
            &json!({"storeId": "store-1", "productId": product, "quantity": quantity, "ttl": ttl}),
        )
        .await
}

async fn commit(central: &Api, id: &str, key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    central
        .send(
            Method::POST,
            &format!("/reservations/{id}/commit"),
            None,
            None,
            &headers,
        )
        .await
}

async fn release(central: &Api, id: &str) -> Reply {
    central
        .send(
            Method::DELETE,
            &format!("/reservations/{id}"),
            None,
            None,
            &[],
        )
        .await
}

/// `(onHand, reserved, available, quantity)` of an item JSON.
fn states(item: &Value) -> (i64, i64, i64, i64) {
    let n = |f: &str| item[f].as_i64().unwrap_or(-1);
    (n("onHand"), n("reserved"), n("available"), n("quantity"))
}

async fn store_states(cluster: &TestCluster, product: &str) -> (i64, i64, i64, i64) {
    states(
        &cluster
            .store(1)
            .get(&format!("/inventory/{product}"))
            .await
            .expect(200)
            .json(),
    )
}

async fn central_states(cluster: &TestCluster, product: &str) -> (i64, i64, i64, i64) {
    states(
        &cluster
            .central
            .get(&format!("/inventory/store-1/{product}"))
            .await
            .json(),
    )
}

async fn wait_central_states(cluster: &TestCluster, product: &str, expected: (i64, i64, i64, i64)) {
    eventually(
        &format!("Central to show {product} as {expected:?}"),
        LIMIT,
        async || central_states(cluster, product).await == expected,
    )
    .await;
}

fn id_of(reply: &Reply) -> String {
    reply.json()["reservationId"]
        .as_str()
        .expect("reservation id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_shows_on_hand_reserved_and_available_at_the_store_and_at_central() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    assert_eq!(store_states(&cluster, "p").await, (10, 0, 10, 10));
    assert_eq!(central_states(&cluster, "p").await, (10, 0, 10, 10));
    let product = cluster.central.get("/products/p").await.expect(200).json();
    assert_eq!(states(&product["stores"][0]), (10, 0, 10, 10));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_holds_units_that_no_sale_can_take() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    let held = reserve(&cluster.central, "p", 7, 60).await.expect(201);
    let body = held.json();
    assert_eq!(body["status"], "HELD");
    assert!(body["expiresAt"].is_string(), "{body}");
    assert_eq!(
        held.header("location"),
        Some(format!("/reservations/{}", id_of(&held)).as_str())
    );
    assert_eq!(store_states(&cluster, "p").await, (10, 7, 3, 3));

    // Neither a local sale nor a remote purchase may take a reserved unit.
    cluster.store(1).purchase("p", 4).await.expect(409);
    let remote = cluster
        .central
        .post("/purchase/store-1/p", &json!({"quantity": 4}))
        .await;
    assert_eq!(remote.status, 409, "{}", remote.text);
    cluster.store(1).purchase("p", 3).await.expect(200);
    assert_eq!(store_states(&cluster, "p").await, (7, 7, 0, 0));
    // A second hold finds nothing available.
    let refused = reserve(&cluster.central, "p", 1, 60).await.expect(409);
    assert_eq!(refused.json()["title"], "Insufficient Stock");

    wait_central_states(&cluster, "p", (7, 7, 0, 0)).await;
    let product = cluster.central.get("/products/p").await.expect(200).json();
    assert_eq!(states(&product["stores"][0]), (7, 7, 0, 0));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shelf_count_below_the_reserved_units_is_refused_and_changes_nothing() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    reserve(&cluster.central, "p", 6, 60).await.expect(201);
    let refused = cluster.store(1).set_quantity("p", 5).await.expect(409);
    assert_eq!(refused.json()["title"], "Quantity Below Reserved");
    assert!(
        refused.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("6 units are reserved")),
        "{}",
        refused.text
    );
    assert_eq!(store_states(&cluster, "p").await, (10, 6, 4, 4));
    // A count of at least the reserved units sets on hand; the rest is available.
    cluster.store(1).set_quantity("p", 6).await.expect(204);
    assert_eq!(store_states(&cluster, "p").await, (6, 6, 0, 0));
    cluster.store(1).set_quantity("p", 20).await.expect(204);
    assert_eq!(store_states(&cluster, "p").await, (20, 6, 14, 14));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committing_a_reservation_sells_its_units_exactly_once() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    let id = id_of(&reserve(&cluster.central, "p", 4, 60).await.expect(201));

    let done = commit(&cluster.central, &id, Some("pay-1"))
        .await
        .expect(200);
    assert_eq!(done.json()["status"], "COMMITTED");
    assert_eq!(store_states(&cluster, "p").await, (6, 0, 6, 6));
    // The same key answers the same; a new commit is refused; nothing is sold twice.
    let again = commit(&cluster.central, &id, Some("pay-1"))
        .await
        .expect(200);
    assert_eq!(again.json()["status"], "COMMITTED");
    let twice = commit(&cluster.central, &id, None).await.expect(409);
    assert_eq!(twice.json()["title"], "Reservation Not Open");
    assert!(twice.text.contains("already committed"), "{}", twice.text);
    release(&cluster.central, &id).await.expect(409);
    assert_eq!(store_states(&cluster, "p").await, (6, 0, 6, 6));
    wait_central_states(&cluster, "p", (6, 0, 6, 6)).await;

    // The ledger tells the hold and the sale, each naming the reservation.
    let ledger = cluster
        .store(1)
        .get("/inventory/p/history")
        .await
        .expect(200)
        .json();
    let lines = ledger.as_array().expect("array");
    assert_eq!(lines[0]["kind"], "reserved_sale");
    assert_eq!(lines[0]["reservationId"], id.as_str());
    assert_eq!(
        (lines[0]["delta"].as_i64(), lines[0]["reserved"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(lines[1]["kind"], "reserve");
    assert_eq!(
        (lines[1]["delta"].as_i64(), lines[1]["reserved"].as_i64()),
        (Some(-4), Some(4))
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_twice_is_refused_the_second_time() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    let id = id_of(&reserve(&cluster.central, "p", 4, 60).await.expect(201));
    let released = release(&cluster.central, &id).await.expect(200);
    assert_eq!(released.json()["status"], "RELEASED");
    assert_eq!(store_states(&cluster, "p").await, (10, 0, 10, 10));
    let twice = release(&cluster.central, &id).await.expect(409);
    assert!(twice.text.contains("already released"), "{}", twice.text);
    let late = commit(&cluster.central, &id, None).await.expect(409);
    assert!(late.text.contains("already released"), "{}", late.text);
    assert_eq!(store_states(&cluster, "p").await, (10, 0, 10, 10));
    let status = cluster
        .central
        .get(&format!("/reservations/{id}"))
        .await
        .expect(200);
    assert_eq!(status.json()["status"], "RELEASED");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_holds_once() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    let body = json!({"storeId": "store-1", "productId": "p", "quantity": 3, "ttl": 60});
    let first = send_json(
        &cluster.central,
        Method::POST,
        "/reservations",
        &body,
        Some("cart-9"),
    )
    .await
    .expect(201);
    let second = send_json(
        &cluster.central,
        Method::POST,
        "/reservations",
        &body,
        Some("cart-9"),
    )
    .await
    .expect(201);
    assert_eq!(id_of(&first), id_of(&second));
    assert_eq!(store_states(&cluster, "p").await, (10, 3, 7, 7));
    let other = json!({"storeId": "store-1", "productId": "p", "quantity": 4, "ttl": 60});
    send_json(
        &cluster.central,
        Method::POST,
        "/reservations",
        &other,
        Some("cart-9"),
    )
    .await
    .expect(422);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reservation_input_is_a_4xx_naming_the_field_and_holds_nothing() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    let base = json!({"storeId": "store-1", "productId": "p", "quantity": 1, "ttl": 60});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (
            with("ttl", json!(0)),
            "ttl must be an integer from 1 to 86,400, got 0",
        ),
        (
            with("ttl", json!(-5)),
            "ttl must be an integer from 1 to 86,400, got -5",
        ),
        (
            with("ttl", json!(86_401)),
            "ttl must be an integer from 1 to 86,400, got 86401",
        ),
        (
            with("ttl", json!("60")),
            "ttl must be an integer of seconds from 1 to 86,400",
        ),
        (
            with("ttl", json!(1.5)),
            "ttl must be an integer of seconds from 1 to 86,400",
        ),
        (
            with("quantity", json!(0)),
            "quantity must be an integer from 1 to 1,000,000,000, got 0",
        ),
        (
            with("storeId", json!("a b")),
            "storeId must be 1 to 64 characters",
        ),
        (
            json!({"storeId": "store-1", "productId": "p", "quantity": 1}),
            "ttl is required",
        ),
        (
            with("extra", json!(1)),
            "extra is not a field of this request",
        ),
    ];
    for (body, detail) in cases {
        let reply = cluster.central.post("/reservations", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        let got = reply.json()["detail"].as_str().unwrap_or("").to_owned();
        assert!(
            got.contains(detail),
            "{body}: detail {got:?} lacks {detail:?}"
        );
    }
    let unknown_store = cluster
        .central
        .post("/reservations", &with("storeId", json!("store-9")))
        .await;
    assert_eq!(
        (unknown_store.status, unknown_store.json()["title"].clone()),
        (404, json!("Store Not Found"))
    );
    let unknown_product = cluster
        .central
        .post("/reservations", &with("productId", json!("q")))
        .await;
    assert_eq!(
        (
            unknown_product.status,
            unknown_product.json()["title"].clone()
        ),
        (404, json!("Product Not Found"))
    );
    cluster
        .central
        .get("/reservations/not-a-uuid")
        .await
        .expect(400);
    let missing = "0190a0a0-0000-7000-8000-000000000000";
    cluster
        .central
        .get(&format!("/reservations/{missing}"))
        .await
        .expect(404);
    commit(&cluster.central, missing, None).await.expect(404);
    release(&cluster.central, missing).await.expect(404);
    assert_eq!(store_states(&cluster, "p").await, (10, 0, 10, 10));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_after_expiry_is_refused_and_the_units_are_available_again() {
    let cluster = TestCluster::start_with(BrokerKind::InProcess, 1).await;
    stocked(&cluster, "p", 10).await;
    let id = id_of(&reserve(&cluster.central, "p", 4, 1).await.expect(201));
    assert_eq!(store_states(&cluster, "p").await, (10, 4, 6, 6));
    eventually("the store's clock to expire the hold", LIMIT, async || {
        store_states(&cluster, "p").await == (10, 0, 10, 10)
    })
    .await;
    eventually("Central to learn of the expiry", LIMIT, async || {
        cluster
            .central
            .get(&format!("/reservations/{id}"))
            .await
            .json()["status"]
            == "EXPIRED"
    })
    .await;
    let late = commit(&cluster.central, &id, None).await.expect(409);
    assert!(late.text.contains("expired"), "{}", late.text);
    assert_eq!(store_states(&cluster, "p").await, (10, 0, 10, 10));
    wait_central_states(&cluster, "p", (10, 0, 10, 10)).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_store_expires_holds_by_its_own_clock_and_central_learns_on_return() {
    let cluster = TestCluster::start(1).await;
    stocked(&cluster, "p", 10).await;
    let id = id_of(&reserve(&cluster.central, "p", 4, 1).await.expect(201));
    wait_central_states(&cluster, "p", (10, 4, 6, 6)).await;
    cluster
        .store(1)
        .post_empty("/disconnected")
        .await
        .expect(200);
    // Offline, the store frees its shelf by itself…
    eventually(
        "the disconnected store to expire the hold",
        LIMIT,
        async || store_states(&cluster, "p").await == (10, 0, 10, 10),
    )
    .await;
    // …while Central, hearing nothing, still shows the hold, and refuses new ones with a 503.
    let status = cluster
        .central
        .get(&format!("/reservations/{id}"))
        .await
        .expect(200);
    assert_eq!(status.json()["status"], "HELD");
    assert_eq!(central_states(&cluster, "p").await, (10, 4, 6, 6));
    eventually("Central to see the store offline", LIMIT, async || {
        reserve(&cluster.central, "p", 1, 60).await.status == 503
    })
    .await;
    cluster.store(1).post_empty("/connected").await.expect(200);
    eventually("the expiry to reach Central", LIMIT, async || {
        cluster
            .central
            .get(&format!("/reservations/{id}"))
            .await
            .json()["status"]
            == "EXPIRED"
    })
    .await;
    wait_central_states(&cluster, "p", (10, 0, 10, 10)).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_reservations_and_local_sales_racing_on_one_item_never_oversell() {
    const STOCK: i64 = 300;
    let cluster = TestCluster::start(1).await;
    stocked(&cluster, "hot", STOCK).await;
    let mut tasks = Vec::new();
    for i in 0..240_i64 {
        let amount = 1 + i % 3;
        let (store, central) = (cluster.store(1).clone(), cluster.central.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                (false, amount, store.purchase("hot", amount).await)
            } else {
                (true, amount, reserve(&central, "hot", amount, 600).await)
            }
        }));
    }
    let (mut held, mut sold) = (0, 0);
    let mut ids = Vec::new();
    for task in tasks {
        let (is_hold, amount, reply) = task.await.expect("task");
        match (is_hold, reply.status) {
            (true, 201) => {
                held += amount;
                ids.push(id_of(&reply));
            }
            (false, 200) => sold += amount,
            (_, 409) => assert_eq!(reply.json()["title"], "Insufficient Stock"),
            (_, status) => panic!("answered {status}: {}", reply.text),
        }
    }
    assert!(held > 0 && sold > 0, "both kinds must have taken units");
    assert!(held + sold <= STOCK, "oversold: {held} held + {sold} sold");
    assert_eq!(
        store_states(&cluster, "hot").await,
        (STOCK - sold, held, STOCK - sold - held, STOCK - sold - held)
    );
    // Every hold commits exactly once; what left the shelf is exactly what was sold and held.
    let mut commits = Vec::new();
    for id in ids {
        let central = cluster.central.clone();
        commits.push(tokio::spawn(async move {
            commit(&central, &id, None).await.status
        }));
    }
    for c in commits {
        assert_eq!(c.await.expect("commit"), 200);
    }
    let left = STOCK - sold - held;
    assert_eq!(store_states(&cluster, "hot").await, (left, 0, left, left));
    wait_central_states(&cluster, "hot", (left, 0, left, left)).await;
    cluster.shutdown().await;
}
