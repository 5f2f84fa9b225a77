use stockmesh_testkit::spawn_store;

#[tokio::test]
async fn purchase_answers_200_with_the_updated_item() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 10).await.expect(204);
    let item = store.api.purchase("sku-1", 4).await.expect(200).json();
    assert_eq!(item["quantity"], 6);
    assert_eq!(item["version"], 3);
    assert_eq!(item["storeId"], "store-1");
}

#[tokio::test]
async fn buying_the_last_unit_leaves_zero() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 2).await.expect(204);
    store.api.purchase("sku-1", 2).await.expect(200);
    assert_eq!(store.api.quantity("/inventory/sku-1").await, Some(0));
}

#[tokio::test]
async fn purchase_beyond_stock_is_a_409_that_names_both_figures_and_changes_nothing() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 3).await.expect(204);
    let reply = store.api.purchase("sku-1", 5).await.expect(409);
    assert_eq!(reply.content_type(), "application/problem+json");
    let problem = reply.json();
    assert_eq!(problem["title"], "Insufficient Stock");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("3 in stock") && detail.contains("5 requested"),
        "{detail}"
    );
    let item = store.api.get("/inventory/sku-1").await.json();
    assert_eq!(
        (item["quantity"].as_i64(), item["version"].as_i64()),
        (Some(3), Some(2))
    );
    let history = store.api.get("/inventory/sku-1/history").await;
    assert_eq!(history.header("x-total-count"), Some("2"));
}

#[tokio::test]
async fn purchase_of_an_unknown_product_is_a_404() {
    let store = spawn_store().await;
    let reply = store.api.purchase("ghost", 1).await.expect(404);
    assert_eq!(reply.json()["title"], "Product Not Found");
}
