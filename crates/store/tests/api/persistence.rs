use stockmesh_testkit::spawn_store;

#[tokio::test]
async fn state_ledger_and_outbox_survive_a_restart() {
    let mut store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.create_item("sku-2").await.expect(201);
    store.api.set_quantity("sku-1", 9).await.expect(204);
    store.api.purchase("sku-1", 4).await.expect(200);

    let before_items = store.api.get("/inventory").await.json();
    let before_history = store.api.get("/inventory/sku-1/history").await.json();
    let outbox = |pool: sqlx::AnyPool| async move {
        sqlx::query_as::<_, (i64, String, String)>(
            "SELECT seq, event_id, data FROM outbox ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .expect("outbox readable")
    };
    let before_outbox = outbox(store.raw_db().await).await;
    assert_eq!(before_outbox.len(), 4);

    store.restart().await;

    assert_eq!(store.api.get("/inventory").await.json(), before_items);
    assert_eq!(
        store.api.get("/inventory/sku-1/history").await.json(),
        before_history
    );
    assert_eq!(outbox(store.raw_db().await).await, before_outbox);
    // The store goes on from where it was.
    let item = store.api.purchase("sku-1", 1).await.expect(200).json();
    assert_eq!(
        (item["quantity"].as_i64(), item["version"].as_i64()),
        (Some(4), Some(4))
    );
}
