use serde_json::json;
use stockmesh_testkit::spawn_store;

#[tokio::test]
async fn health_check_answers_plain_text_with_the_store_id() {
    let store = spawn_store().await;
    let reply = store.api.get("/").await.expect(200);
    assert_eq!(reply.text, "Store Server store-1: OK");
    assert!(reply.content_type().starts_with("text/plain"));
}

#[tokio::test]
async fn create_returns_201_with_the_item_at_zero_and_a_location() {
    let store = spawn_store().await;
    let reply = store.api.create_item("sku-1").await.expect(201);
    assert_eq!(reply.header("location"), Some("/inventory/sku-1"));
    let item = reply.json();
    assert_eq!(item["storeId"], "store-1");
    assert_eq!(item["productId"], "sku-1");
    assert_eq!(item["quantity"], 0);
    assert_eq!(item["version"], 1);
    assert!(item["updatedAt"].is_string());
}

#[tokio::test]
async fn creating_a_product_twice_is_a_409_product_already_exists() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    let reply = store.api.create_item("sku-1").await.expect(409);
    assert_eq!(reply.content_type(), "application/problem+json");
    let problem = reply.json();
    assert_eq!(problem["title"], "Product Already Exists");
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["instance"], "/inventory");
}

#[tokio::test]
async fn get_returns_the_item_or_a_404_product_not_found() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    let item = store.api.get("/inventory/sku-1").await.expect(200).json();
    assert_eq!(item["productId"], "sku-1");

    let reply = store.api.get("/inventory/missing").await.expect(404);
    let problem = reply.json();
    assert_eq!(problem["title"], "Product Not Found");
    assert_eq!(problem["instance"], "/inventory/missing");
    assert!(problem["detail"].as_str().unwrap_or("").contains("missing"));
}

#[tokio::test]
async fn set_quantity_answers_204_and_bumps_the_version() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    let reply = store.api.set_quantity("sku-1", 10).await.expect(204);
    assert!(reply.text.is_empty());
    let item = store.api.get("/inventory/sku-1").await.json();
    assert_eq!(item["quantity"], 10);
    assert_eq!(item["version"], 2);
    store.api.set_quantity("sku-1", 0).await.expect(204);
    assert_eq!(store.api.quantity("/inventory/sku-1").await, Some(0));
}

#[tokio::test]
async fn set_quantity_of_an_unknown_product_is_a_404() {
    let store = spawn_store().await;
    let reply = store.api.set_quantity("ghost", 3).await.expect(404);
    assert_eq!(reply.json()["title"], "Product Not Found");
}

#[tokio::test]
async fn list_is_a_bare_array_ordered_by_product_with_total_and_links() {
    let store = spawn_store().await;
    for id in ["c", "a", "e", "b", "d"] {
        store.api.create_item(id).await.expect(201);
    }
    let reply = store.api.get("/inventory?page=1&size=2").await.expect(200);
    assert_eq!(reply.header("x-total-count"), Some("5"));
    let ids: Vec<_> = reply
        .json()
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|i| i["productId"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["c", "d"]);
    let link = reply.header("link").expect("a Link header");
    assert!(
        link.contains("</inventory?page=2&size=2>; rel=\"next\""),
        "{link}"
    );
    assert!(
        link.contains("</inventory?page=0&size=2>; rel=\"prev\""),
        "{link}"
    );

    let all = store.api.get("/inventory").await.expect(200).json();
    assert_eq!(all.as_array().map(Vec::len), Some(5));
    let beyond = store.api.get("/inventory?page=9&size=2").await.expect(200);
    assert_eq!(beyond.json(), json!([]));
}

#[tokio::test]
async fn history_lists_every_movement_newest_first() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 10).await.expect(204);
    store.api.purchase("sku-1", 3).await.expect(200);
    store.api.set_quantity("sku-1", 4).await.expect(204);

    let reply = store.api.get("/inventory/sku-1/history").await.expect(200);
    assert_eq!(reply.header("x-total-count"), Some("4"));
    let moves = reply.json();
    let summary: Vec<_> = moves
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or_default().to_owned(),
                m["delta"].as_i64().unwrap_or(i64::MIN),
                m["quantity"].as_i64().unwrap_or(-1),
                m["version"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("set".to_owned(), -3, 4, 4),
            ("local_sale".to_owned(), -3, 7, 3),
            ("set".to_owned(), 10, 10, 2),
            ("created".to_owned(), 0, 0, 1),
        ]
    );
    assert!(moves[0]["at"].is_string());

    let page = store
        .api
        .get("/inventory/sku-1/history?page=1&size=3")
        .await
        .expect(200)
        .json();
    assert_eq!(page[0]["kind"], "created");
    store.api.get("/inventory/ghost/history").await.expect(404);
}

#[tokio::test]
async fn every_change_leaves_an_outbox_row_with_the_documented_envelope() {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 5).await.expect(204);
    store.api.purchase("sku-1", 2).await.expect(200);

    let pool = store.raw_db().await;
    let rows: Vec<(String, String, String, Option<i64>)> =
        sqlx::query_as("SELECT stream, event_type, data, published_at FROM outbox ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("outbox readable");
    let types: Vec<_> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        types,
        [
            "INVENTORY_ITEM_CREATED",
            "INVENTORY_ITEM_UPDATED",
            "INVENTORY_ITEM_UPDATED"
        ]
    );
    for (stream, event_type, data, published) in &rows {
        assert_eq!(stream, "stockmesh:{store-1}:events");
        assert_eq!(*published, None, "nothing publishes yet");
        let envelope: serde_json::Value = serde_json::from_str(data).expect("JSON envelope");
        assert_eq!(envelope["type"], event_type.as_str());
        assert_eq!(envelope["storeId"], "store-1");
        assert!(envelope["id"].is_string());
        assert!(envelope["occurredAt"].is_string());
        assert!(envelope["correlationId"].is_string());
    }
    let last: serde_json::Value = serde_json::from_str(&rows[2].2).expect("JSON");
    assert_eq!(
        last["payload"]["quantity"], 3,
        "absolute quantity, not a delta"
    );
    assert_eq!(last["payload"]["version"], 3);
}

#[tokio::test]
async fn the_request_id_is_echoed_and_carried_into_the_event_and_ledger() {
    let store = spawn_store().await;
    let reply = store
        .api
        .send(
            reqwest::Method::POST,
            "/inventory",
            Some("application/json"),
            Some(br#"{"productId":"sku-9"}"#.to_vec()),
            &[("x-request-id", "trace-me-42")],
        )
        .await
        .expect(201);
    assert_eq!(reply.header("x-request-id"), Some("trace-me-42"));
    let history = store.api.get("/inventory/sku-9/history").await.json();
    assert_eq!(history[0]["correlationId"], "trace-me-42");
    let pool = store.raw_db().await;
    let data: String = sqlx::query_scalar("SELECT data FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("one row");
    assert!(data.contains("\"correlationId\":\"trace-me-42\""), "{data}");
}
