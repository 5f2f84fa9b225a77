//! Provisioned stores only: ids in the registry that no admin provisioned are ignored, counted
//! and never turned into streams; a provisioned store's first change reaches Central at once.

use std::time::{Duration, Instant};

use serde_json::json;
use stockmesh_core::StoreId;
use stockmesh_store::{StoreConfig, StoreNode};
use stockmesh_testkit::cluster::test_heartbeat;
use stockmesh_testkit::{Api, TestCluster, eventually};

async fn untrusted(central: &Api, kind: &str) -> f64 {
    let text = central.get("/metrics").await.expect(200).text;
    text.lines()
        .filter(|l| {
            l.starts_with("stockmesh_untrusted_total") && l.contains(&format!("kind=\"{kind}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_provisioned_stores_exist_and_a_new_one_is_read_at_once() {
    let cluster = TestCluster::start(1).await;
    let url = cluster.redis.as_ref().expect("redis").url();
    let mut conn = redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");

    // 2,000 ids dropped into the registry: ignored, no stream made, /stores still answers.
    let mut sadd = redis::cmd("SADD");
    sadd.arg("stockmesh:stores");
    for i in 0..2000 {
        sadd.arg(format!("fake-{i}"));
    }
    let _: i64 = sadd.query_async(&mut conn).await.expect("SADD");
    eventually("unknown ids counted", Duration::from_secs(5), async || {
        untrusted(&cluster.central, "unknown_store").await >= 2000.0
    })
    .await;
    let started = Instant::now();
    let stores = cluster.central.get("/stores").await.expect(200).json();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(stores.as_array().map(Vec::len), Some(1), "{stores}");
    let exists: i64 = redis::cmd("EXISTS")
        .arg("stockmesh:{fake-7}:events")
        .query_async(&mut conn)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0);

    // A store that starts without being provisioned is not read.
    let dir = tempfile::tempdir().expect("dir");
    let id = StoreId::parse("store-new").expect("valid");
    let store = StoreNode::start(
        StoreConfig {
            heartbeat: test_heartbeat(),
            ..StoreConfig::new(
                id.clone(),
                stockmesh_bus::DbConfig::new(dir.path().join("s.db").display().to_string()),
            )
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        Some(cluster.broker.clone()),
    )
    .await
    .expect("store starts");
    let api = Api::new(format!("http://{}", store.addr()));
    api.create_item("early").await.expect(201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cluster
            .central
            .get("/inventory/store-new/early")
            .await
            .status,
        404
    );
    let stores = cluster.central.get("/stores").await.json();
    assert_eq!(stores.as_array().map(Vec::len), Some(1), "{stores}");

    // Provisioned: 201 (then 200), and read at once — its waiting events too.
    cluster
        .central
        .post("/stores", &json!({"storeId": "store-new"}))
        .await
        .expect(201);
    cluster
        .central
        .post("/stores", &json!({"storeId": "store-new"}))
        .await
        .expect(200);
    eventually(
        "the earlier event arrives",
        Duration::from_secs(2),
        async || {
            cluster
                .central
                .get("/inventory/store-new/early")
                .await
                .status
                == 200
        },
    )
    .await;
    api.create_item("first").await.expect(201);
    let started = Instant::now();
    eventually(
        "the first change at Central",
        Duration::from_secs(2),
        async || {
            cluster
                .central
                .get("/inventory/store-new/first")
                .await
                .status
                == 200
        },
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "took {took:?}");
    store.shutdown().await;
    cluster.shutdown().await;
}
