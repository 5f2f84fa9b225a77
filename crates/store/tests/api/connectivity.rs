use stockmesh_testkit::spawn_store;

#[tokio::test]
async fn disconnect_and_connect_flip_the_state_shown_by_status() {
    let store = spawn_store().await;
    let status = store.api.get("/status").await.expect(200).json();
    assert_eq!(status["storeId"], "store-1");
    assert_eq!(status["connectivity"], "connected");

    let reply = store.api.post_empty("/disconnected").await.expect(200);
    assert_eq!(reply.json()["connectivity"], "disconnected");
    assert_eq!(
        store.api.get("/status").await.json()["connectivity"],
        "disconnected"
    );
    assert!(!store.node().service().connectivity().is_connected());

    store.api.post_empty("/connected").await.expect(200);
    assert_eq!(
        store.api.get("/status").await.json()["connectivity"],
        "connected"
    );
    assert!(store.node().service().connectivity().is_connected());
}

#[tokio::test]
async fn a_disconnected_store_keeps_selling_and_queues_its_events() {
    let store = spawn_store().await;
    store.api.post_empty("/disconnected").await.expect(200);
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 5).await.expect(204);
    store.api.purchase("sku-1", 1).await.expect(200);
    let status = store.api.get("/status").await.json();
    assert_eq!(status["outboxPending"], 3);
    assert!(status["outboxOldestAgeMs"].is_number());
}
