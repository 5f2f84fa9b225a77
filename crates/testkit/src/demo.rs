//! The walk-through of the original specification's demo, as one scenario that every way of
//! running the system (in one process over Redis or the in-process broker, or as separate OS
//! processes) must pass.

use std::time::Duration;

use serde_json::json;

use crate::cluster::eventually;
use crate::http::Api;

/// How long a test may wait for a change to reach Central. Propagation takes milliseconds;
/// the margin absorbs a loaded CI machine.
pub const CONVERGENCE: Duration = Duration::from_secs(1);

async fn central_quantity(central: &Api, store: &str, product: &str) -> Option<i64> {
    central
        .quantity(&format!("/inventory/{store}/{product}"))
        .await
}

/// Waits until Central shows `expected` units of `product` at `store`.
pub async fn wait_for_central(central: &Api, store: &str, product: &str, expected: i64) {
    eventually(
        &format!("Central to show {expected} of {product} at {store}"),
        CONVERGENCE,
        async || central_quantity(central, store, product).await == Some(expected),
    )
    .await;
}

/// The spec's demo against Central and store-1.
pub async fn walk_the_spec_demo(central: &Api, store1: &Api) {
    let product = "6b1e3d3c-0f5d-4a8e-9c1a-2f0f7b0e8d11";
    let path = format!("/purchase/store-1/{product}");
    assert_eq!(
        central.get("/").await.expect(200).text,
        "Central Server: OK"
    );
    assert_eq!(
        store1.get("/").await.expect(200).text,
        "Store Server store-1: OK"
    );

    store1.create_item(product).await.expect(201);
    store1.set_quantity(product, 10).await.expect(204);
    wait_for_central(central, "store-1", product, 10).await;

    let bought = central
        .post(&path, &json!({ "quantity": 2 }))
        .await
        .expect(200)
        .json();
    assert_eq!(bought["quantity"], 8);
    assert_eq!(bought["storeId"], "store-1");
    assert_eq!(bought["productId"], product);
    assert_eq!(
        store1.quantity(&format!("/inventory/{product}")).await,
        Some(8)
    );
    assert_eq!(central_quantity(central, "store-1", product).await, Some(8));

    let refused = central
        .post(&path, &json!({ "quantity": 1000 }))
        .await
        .expect(409);
    assert_eq!(refused.json()["title"], "Insufficient Stock");

    store1.post_empty("/disconnected").await.expect(200);
    let sold = store1.purchase(product, 2).await.expect(200).json();
    assert_eq!(sold["quantity"], 6);
    // The sale waits in the store's outbox: nothing carries it while the link is down.
    eventually("the sale held in the outbox", CONVERGENCE, async || {
        let status = store1.get("/status").await.json();
        status["connectivity"] == "disconnected"
            && status["outboxPending"].as_i64().is_some_and(|n| n >= 1)
    })
    .await;
    assert_eq!(
        central_quantity(central, "store-1", product).await,
        Some(8),
        "a disconnected store publishes nothing"
    );
    let unavailable = central
        .post(&path, &json!({ "quantity": 1 }))
        .await
        .expect(503);
    assert_eq!(unavailable.json()["title"], "Store Unavailable");

    store1.post_empty("/connected").await.expect(200);
    wait_for_central(central, "store-1", product, 6).await;
    // Central takes purchases again once it sees the fresh heartbeat.
    eventually("store-1 online again", CONVERGENCE, async || {
        central.get("/stores").await.json()[0]["online"] == true
    })
    .await;

    let bought = central
        .post(&path, &json!({ "quantity": 3 }))
        .await
        .expect(200)
        .json();
    assert_eq!(bought["quantity"], 3);
    assert_eq!(
        store1.quantity(&format!("/inventory/{product}")).await,
        Some(3)
    );
    assert_eq!(central_quantity(central, "store-1", product).await, Some(3));
}
