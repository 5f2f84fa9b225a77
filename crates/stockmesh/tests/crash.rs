//! Group commit keeps every acknowledged write: a store process killed with SIGKILL under
//! concurrent load loses none of the writes it answered 2xx, and their events still reach Central.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stockmesh_testkit::eventually;
use stockmesh_testkit::http::Api;
use stockmesh_testkit::process::ProcessCluster;
use tokio::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");
const PRODUCTS: usize = 4;
const CLIENTS: usize = 16;
const STOCK: i64 = 1_000_000;

fn product(i: usize) -> String {
    format!("sku-{}", i % PRODUCTS)
}

/// What the clients were told: each product's versions that a purchase answered 200 with.
#[derive(Default)]
struct Acknowledged {
    sales: BTreeMap<String, BTreeSet<i64>>,
    sold: usize,
}

/// One client: purchases of one unit, back to back, until told to stop or the store is gone.
async fn buyer(
    base: String,
    client: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acknowledged>>,
) {
    let http = reqwest::Client::new();
    let mut i = client;
    while !stop.load(Ordering::Relaxed) {
        let sku = product(i);
        i += CLIENTS;
        let sent = http
            .post(format!("{base}/purchase/{sku}"))
            .json(&json!({"quantity": 1}))
            .send()
            .await;
        // A request cut by the kill has no answer: it may or may not have been done.
        let Ok(response) = sent else { continue };
        if response.status().as_u16() != 200 {
            continue;
        }
        let Ok(body) = response.json::<Value>().await else {
            continue;
        };
        let version = body["version"]
            .as_i64()
            .unwrap_or_else(|| panic!("a 200 purchase names the item's version: {body}"));
        let mut acked = acked.lock().await;
        acked.sales.entry(sku).or_default().insert(version);
        acked.sold += 1;
    }
}

/// Every movement of `sku`'s ledger, all pages.
async fn ledger(api: &Api, sku: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 0.. {
        let reply = api
            .get(&format!("/inventory/{sku}/history?page={page}&size=1000"))
            .await
            .expect(200);
        let moves = reply.json().as_array().cloned().unwrap_or_default();
        if moves.is_empty() {
            break;
        }
        all.extend(moves);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_killed_under_load_keeps_every_acknowledged_write_and_central_hears_it() {
    let mut cluster = ProcessCluster::start(BIN, 1).await;
    for i in 0..PRODUCTS {
        let api = &cluster.stores[0].api;
        api.create_item(&product(i)).await.expect(201);
        api.set_quantity(&product(i), STOCK).await.expect(204);
    }
    let base = cluster.stores[0].api.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(buyer(base.clone(), c, stop.clone(), acked.clone())))
        .collect();
    let under_load = async || acked.lock().await.sold >= 500;
    eventually(
        "500 purchases acknowledged",
        Duration::from_secs(60),
        under_load,
    )
    .await;
    cluster.stores[0].kill().await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }
    let acked = std::mem::take(&mut *acked.lock().await);

    cluster.stores[0].restart().await;
    let store = &cluster.stores[0].api;
    let mut sold_in_ledger = 0;
    for i in 0..PRODUCTS {
        let sku = product(i);
        let moves = ledger(store, &sku).await;
        let sales: BTreeSet<i64> = moves
            .iter()
            .filter(|m| m["kind"] == "local_sale")
            .filter_map(|m| m["version"].as_i64())
            .collect();
        let told = acked.sales.get(&sku).cloned().unwrap_or_default();
        let lost: Vec<_> = told.difference(&sales).collect();
        assert!(
            lost.is_empty(),
            "{sku}: purchases answered 200 are missing after the kill (versions {lost:?})"
        );
        let item = store
            .get(&format!("/inventory/{sku}"))
            .await
            .expect(200)
            .json();
        let quantity = item["quantity"].as_i64().expect("quantity");
        assert_eq!(
            quantity,
            STOCK - i64::try_from(sales.len()).expect("small"),
            "{sku}: the shelf agrees with the ledger"
        );
        sold_in_ledger += sales.len();
        let version = item["version"].as_i64().expect("version");
        let central = &cluster.central.api;
        let path = format!("/inventory/store-1/{sku}");
        eventually(
            &format!("Central sees {sku} at version {version}"),
            Duration::from_secs(30),
            async || {
                let reply = central.get(&path).await;
                reply.status == 200 && reply.json()["version"].as_i64() == Some(version)
            },
        )
        .await;
    }
    assert!(
        sold_in_ledger >= acked.sold,
        "every acknowledged sale is in the ledger ({sold_in_ledger} there, {} acknowledged)",
        acked.sold
    );
}
