//! Central trusts the stream, not the payload: each forgery of issue 11, written with raw
//! `XADD`/`SET` on the cluster's private redis-server, is ignored or dead-lettered and counted;
//! nothing of it is applied.

use std::time::Duration;

use serde_json::{Value, json};
use stockmesh_testkit::{TestCluster, eventually};

async fn redis(cluster: &TestCluster) -> redis::aio::MultiplexedConnection {
    let url = cluster.redis.as_ref().expect("a Redis cluster").url();
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

fn envelope(store: &str, kind: &str, payload: Value) -> String {
    json!({
        "id": uuid_v7(),
        "type": kind,
        "payload": payload,
        "storeId": store,
        "occurredAt": "2026-01-01T00:00:00Z",
    })
    .to_string()
}

fn uuid_v7() -> String {
    // Any fresh UUID: the consumer deduplicates by it.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let hex = format!("{nanos:032x}");
    format!(
        "{}-{}-7{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

async fn xadd(conn: &mut redis::aio::MultiplexedConnection, stream: &str, kind: &str, data: &str) {
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("type")
        .arg(kind)
        .arg("data")
        .arg(data)
        .query_async(conn)
        .await
        .expect("XADD");
}

async fn untrusted(cluster: &TestCluster, kind: &str) -> f64 {
    let text = cluster.central.get("/metrics").await.expect(200).text;
    text.lines()
        .filter(|l| {
            l.starts_with("stockmesh_untrusted_total") && l.contains(&format!("kind=\"{kind}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn quantity_at_central(cluster: &TestCluster, store: &str, product: &str) -> Value {
    cluster
        .central
        .get(&format!("/inventory/{store}/{product}"))
        .await
        .json()["quantity"]
        .clone()
}

fn item(product: &str, quantity: i64, version: u64) -> Value {
    json!({"productId": product, "quantity": quantity, "version": version, "updatedAt": "2026-01-01T00:00:00Z"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_events_on_a_store_stream_are_never_applied() {
    let cluster = TestCluster::start(2).await;
    let mut conn = redis(&cluster).await;
    let store1 = cluster.store(1);
    store1.create_item("p1").await.expect(201);
    store1.set_quantity("p1", 10).await.expect(204);
    eventually("p1 = 10 at Central", Duration::from_secs(5), async || {
        quantity_at_central(&cluster, "store-1", "p1").await == 10
    })
    .await;

    // 1. A version far beyond the store's reach would freeze the item: ignored.
    xadd(
        &mut conn,
        "stockmesh:{store-1}:events",
        "INVENTORY_ITEM_UPDATED",
        &envelope(
            "store-1",
            "INVENTORY_ITEM_UPDATED",
            item("p1", 0, i64::MAX as u64),
        ),
    )
    .await;
    eventually(
        "the far version counted",
        Duration::from_secs(5),
        async || untrusted(&cluster, "version_beyond").await >= 1.0,
    )
    .await;
    assert_eq!(quantity_at_central(&cluster, "store-1", "p1").await, 10);
    store1.set_quantity("p1", 11).await.expect(204);
    eventually(
        "a real change still lands",
        Duration::from_secs(5),
        async || quantity_at_central(&cluster, "store-1", "p1").await == 11,
    )
    .await;

    // 2. An envelope naming store-2 on store-1's stream: dead-lettered, store-2 untouched.
    xadd(
        &mut conn,
        "stockmesh:{store-1}:events",
        "INVENTORY_ITEM_CREATED",
        &envelope("store-2", "INVENTORY_ITEM_CREATED", item("forged", 777, 1)),
    )
    .await;
    eventually(
        "the mismatch dead-lettered",
        Duration::from_secs(5),
        async || {
            let len: usize = redis::cmd("XLEN")
                .arg("stockmesh:{store-1}:events:dead")
                .query_async(&mut conn)
                .await
                .unwrap_or(0);
            len >= 1
        },
    )
    .await;
    assert_eq!(
        cluster
            .central
            .get("/inventory/store-2/forged")
            .await
            .status,
        404
    );
    cluster.shutdown().await;
}

/// Stops store-2 and keeps its heartbeat fresh by hand, so that Central sends it purchases
/// nobody answers.
async fn silence_store_2(cluster: &mut TestCluster) -> tokio::task::JoinHandle<()> {
    cluster.stop_store(2).await;
    let mut conn = redis(cluster).await;
    tokio::spawn(async move {
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as i64;
            let _: Result<(), _> = redis::cmd("SET")
                .arg("stockmesh:{store-2}:heartbeat")
                .arg(now)
                .arg("PX")
                .arg(1000)
                .query_async(&mut conn)
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_for_another_stores_purchase_is_ignored_and_overdue_purchases_expire() {
    let mut cluster = TestCluster::start_tuned(stockmesh_testkit::BrokerKind::Redis, 2, |c| {
        c.purchase.wait = Duration::from_millis(200);
        c.purchase.deadline = Duration::from_secs(1);
    })
    .await;
    cluster.store(2).create_item("p2").await.expect(201);
    cluster.store(2).set_quantity("p2", 5).await.expect(204);
    eventually("p2 at Central", Duration::from_secs(5), async || {
        quantity_at_central(&cluster, "store-2", "p2").await == 5
    })
    .await;
    let beating = silence_store_2(&mut cluster).await;
    let reply = cluster
        .central
        .post("/purchase/store-2/p2", &json!({"quantity": 2}))
        .await
        .expect(202);
    let purchase = reply.json()["purchaseId"].as_str().expect("id").to_owned();

    // store-1's stream answers store-2's purchase: ignored and counted.
    let mut conn = redis(&cluster).await;
    let forged = json!({"purchaseId": purchase, "quantity": 2, "item": item("p2", 3, 2)});
    xadd(
        &mut conn,
        "stockmesh:{store-1}:events",
        "REMOTE_PURCHASE_CONFIRMED",
        &envelope("store-1", "REMOTE_PURCHASE_CONFIRMED", forged),
    )
    .await;
    eventually(
        "the foreign reply counted",
        Duration::from_secs(5),
        async || untrusted(&cluster, "foreign_reply").await >= 1.0,
    )
    .await;
    let status = cluster
        .central
        .get(&format!("/purchases/{purchase}"))
        .await
        .json();
    assert_ne!(status["status"], "CONFIRMED", "{status}");

    // Past its deadline (1 s) and the grace (1 s), the purchase is resolved though the store
    // still looks online.
    eventually("the purchase expired", Duration::from_secs(6), async || {
        let status = cluster
            .central
            .get(&format!("/purchases/{purchase}"))
            .await
            .json();
        status["status"] == "REJECTED" && status["reason"] == "EXPIRED"
    })
    .await;
    beating.abort();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_from_the_future_or_without_expiry_is_not_believed() {
    let mut cluster = TestCluster::start(2).await;
    cluster.stop_store(2).await;
    let mut conn = redis(&cluster).await;
    let online = async |cluster: &TestCluster| {
        let stores = cluster.central.get("/stores").await.json();
        stores
            .as_array()
            .and_then(|s| s.iter().find(|s| s["storeId"] == "store-2"))
            .map(|s| s["online"] == true)
    };
    // The largest timestamp, without expiry.
    let _: () = redis::cmd("SET")
        .arg("stockmesh:{store-2}:heartbeat")
        .arg(i64::MAX)
        .query_async(&mut conn)
        .await
        .expect("SET");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(online(&cluster).await, Some(false));
    // An hour ahead, with an expiry.
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        + 3_600_000;
    let _: () = redis::cmd("SET")
        .arg("stockmesh:{store-2}:heartbeat")
        .arg(future)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .expect("SET");
    assert_eq!(online(&cluster).await, Some(false));
    assert!(untrusted(&cluster, "heartbeat_future").await >= 1.0);
    cluster.shutdown().await;
}
