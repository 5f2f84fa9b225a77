//! Local and remote purchases racing on one item: the store decides every one, so stock never
//! goes below zero, every 200 is applied exactly once, every refusal not at all, and what left
//! the shelf equals the sum of the confirmed purchases.

use std::time::Duration;

use serde_json::json;
use stockmesh_testkit::demo::wait_for_central;
use stockmesh_testkit::{TestCluster, eventually};

/// Local buyers alone ask for about 400 units and remote ones as many: with 600 in stock both
/// kinds sell, and the last units are fought over.
const STOCK: i64 = 600;

#[derive(Debug)]
enum Scope {
    Local,
    Remote,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_local_and_remote_purchases_never_oversell_and_count_exactly() {
    let cluster = TestCluster::start(1).await;
    let store = cluster.store(1).clone();
    let central = cluster.central.clone();
    store.create_item("hot").await.expect(201);
    store.set_quantity("hot", STOCK).await.expect(204);
    wait_for_central(&central, "store-1", "hot", STOCK).await;

    let mut buyers = Vec::new();
    for i in 0..400_i64 {
        let amount = 1 + i % 3;
        let (store, central) = (store.clone(), central.clone());
        buyers.push(tokio::spawn(async move {
            if i % 2 == 0 {
                (Scope::Local, amount, store.purchase("hot", amount).await)
            } else {
                let reply = central
                    .post("/purchase/store-1/hot", &json!({ "quantity": amount }))
                    .await;
                (Scope::Remote, amount, reply)
            }
        }));
    }
    let (mut local_sold, mut remote_sold) = (0, 0);
    let (mut local_ok, mut remote_ok) = (0, 0);
    let mut remote_ids = Vec::new();
    for buyer in buyers {
        let (scope, amount, reply) = buyer.await.expect("buyer task");
        match (scope, reply.status) {
            (Scope::Local, 200) => {
                local_sold += amount;
                local_ok += 1;
            }
            (Scope::Remote, 200) => {
                remote_sold += amount;
                remote_ok += 1;
                let body = reply.json();
                remote_ids.push(body["purchaseId"].as_str().expect("purchase id").to_owned());
            }
            (_, 409) => assert_eq!(reply.json()["title"], "Insufficient Stock"),
            (scope, status) => panic!("{scope:?} purchase answered {status}: {}", reply.text),
        }
    }
    assert!(
        local_ok > 0 && remote_ok > 0,
        "both kinds must have sold something"
    );
    assert!(local_sold + remote_sold <= STOCK, "oversold");

    let remaining = STOCK - local_sold - remote_sold;
    assert_eq!(store.quantity("/inventory/hot").await, Some(remaining));
    wait_for_central(&central, "store-1", "hot", remaining).await;

    // The store's ledger adds up line by line, and holds one remote sale per confirmed id.
    let ledger = store
        .get("/inventory/hot/history?size=1000")
        .await
        .expect(200)
        .json();
    let moves = ledger.as_array().expect("array");
    let figure = |m: &serde_json::Value, field: &str| m[field].as_i64().expect("a number");
    for pair in moves.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert_eq!(
            figure(older, "quantity") + figure(newer, "delta"),
            figure(newer, "quantity"),
            "the ledger adds up: {older} then {newer}"
        );
    }
    let remote_moves: Vec<&str> = moves
        .iter()
        .filter(|m| m["kind"] == "remote_sale")
        .filter_map(|m| m["purchaseId"].as_str())
        .collect();
    assert_eq!(remote_moves.len(), remote_ids.len());
    for id in &remote_ids {
        assert_eq!(
            remote_moves.iter().filter(|m| *m == id).count(),
            1,
            "{id} applied once"
        );
    }
    let local_moves = moves.iter().filter(|m| m["kind"] == "local_sale").count();
    assert_eq!(local_moves, local_ok);
    let shelf: i64 = moves
        .iter()
        .filter(|m| m["kind"] != "set" && m["kind"] != "created")
        .map(|m| -m["delta"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(shelf, local_sold + remote_sold, "what left the shelf");

    // Every confirmed purchase reads CONFIRMED at Central; nothing stays pending.
    for id in &remote_ids {
        let purchase = central
            .get(&format!("/purchases/{id}"))
            .await
            .expect(200)
            .json();
        assert_eq!(purchase["status"], "CONFIRMED");
    }
    eventually("no pending purchase", Duration::from_secs(2), async || {
        let central_db = cluster.central_db().await;
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM purchases WHERE status = 'PENDING'")
                .fetch_one(&central_db)
                .await
                .expect("count");
        pending == 0
    })
    .await;
    cluster.shutdown().await;
}
