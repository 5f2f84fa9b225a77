//! Every malformed input is a clear 4xx problem and changes nothing.

use reqwest::Method;
use serde_json::json;
use stockmesh_testkit::{TestStore, spawn_store};

async fn store_with_item() -> TestStore {
    let store = spawn_store().await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 5).await.expect(204);
    store
}

/// The state a bad request must leave untouched: the item, the ledger size and the outbox size.
async fn fingerprint(store: &TestStore) -> (String, i64, i64) {
    let item = store.api.get("/inventory").await.text;
    let pool = store.raw_db().await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect("readable")
        }
    };
    (
        item,
        count("SELECT COUNT(*) FROM movements").await,
        count("SELECT COUNT(*) FROM outbox").await,
    )
}

#[track_caller]
fn assert_problem(reply: &stockmesh_testkit::http::Reply, status: u16, detail_has: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "{}",
        reply.text
    );
    let problem = reply.json();
    assert_eq!(problem["status"], status);
    for field in ["type", "title", "detail", "instance"] {
        assert!(
            problem[field].is_string(),
            "problem lacks {field}: {}",
            reply.text
        );
    }
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(detail_has),
        "detail {detail:?} should mention {detail_has:?}"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400s_that_change_nothing() {
    let store = store_with_item().await;
    let before = fingerprint(&store).await;
    let cases: &[(&str, &str, &[u8], &str)] = &[
        (
            "PUT",
            "/inventory/sku-1",
            b"{\"quantity\":",
            "the body is not valid JSON",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"not json",
            "the body is not valid JSON",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"{\"quantity\":\"7\"}",
            "quantity must be an integer from 0 to 1,000,000,000",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"{\"quantity\":1.5}",
            "quantity must be an integer from 0 to 1,000,000,000",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"{\"quantity\":-1}",
            "quantity must be an integer from 0 to 1,000,000,000, got",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"{\"quantity\":1000000001}",
            "quantity must be an integer from 0 to 1,000,000,000, got",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"{\"quantity\":99999999999999999999999}",
            "quantity must be an integer from 0 to 1,000,000,000",
        ),
        ("PUT", "/inventory/sku-1", b"{}", "quantity is required"),
        (
            "PUT",
            "/inventory/sku-1",
            b"{\"quantity\":1,\"extra\":2}",
            "extra is not a field of this request (allowed: quantity)",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"[]",
            "the body must be a JSON object",
        ),
        (
            "PUT",
            "/inventory/sku-1",
            b"null",
            "the body must be a JSON object",
        ),
        (
            "POST",
            "/purchase/sku-1",
            b"{\"quantity\":0}",
            "quantity must be an integer from 1 to 1,000,000,000, got",
        ),
        (
            "POST",
            "/purchase/sku-1",
            b"{\"quantity\":-3}",
            "quantity must be an integer from 1 to 1,000,000,000, got",
        ),
        (
            "POST",
            "/purchase/sku-1",
            b"{\"quantity\":true}",
            "quantity must be an integer from 1 to 1,000,000,000",
        ),
        (
            "POST",
            "/purchase/sku-1",
            b"{\"qty\":1}",
            "qty is not a field of this request",
        ),
        (
            "POST",
            "/inventory",
            b"{\"productId\":\"\"}",
            "productId must be",
        ),
        (
            "POST",
            "/inventory",
            b"{\"productId\":\"has space\"}",
            "productId must be",
        ),
        (
            "POST",
            "/inventory",
            b"{\"productId\":5}",
            "productId must be a string",
        ),
        ("POST", "/inventory", b"{}", "productId is required"),
        (
            "POST",
            "/inventory",
            b"{\"productId\":\"ok\",\"quantity\":3}",
            "quantity is not a field of this request (allowed: productId)",
        ),
    ];
    for (method, path, body, detail) in cases {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let reply = store
            .api
            .send(
                method,
                path,
                Some("application/json"),
                Some(body.to_vec()),
                &[],
            )
            .await;
        assert_problem(&reply, 400, detail);
        assert_eq!(reply.json()["title"], "Bad Request");
        let said = reply.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for internal in ["line 1", "column", "i64", "struct", "EOF", "`"] {
            assert!(!said.contains(internal), "{said:?} quotes the parser");
        }
    }
    assert_eq!(fingerprint(&store).await, before);
}

#[tokio::test]
async fn a_product_id_longer_than_64_characters_is_refused() {
    let store = spawn_store().await;
    let long = "x".repeat(65);
    let reply = store.api.create_item(&long).await;
    assert_problem(&reply, 400, "productId must be 1 to 64");
    let reply = store.api.get(&format!("/inventory/{long}")).await;
    assert_problem(&reply, 400, "productId must be 1 to 64");
}

#[tokio::test]
async fn invalid_product_ids_in_the_path_are_400s() {
    let store = store_with_item().await;
    let before = fingerprint(&store).await;
    for path in [
        "/inventory/bad%20id",
        "/inventory/%7Bx%7D",
        "/inventory/%C3%A9",
    ] {
        assert_problem(&store.api.get(path).await, 400, "productId must be");
    }
    let reply = store
        .api
        .put("/inventory/bad%20id", &json!({ "quantity": 1 }))
        .await;
    assert_problem(&reply, 400, "productId must be");
    let reply = store.api.purchase("a%2Fb", 1).await;
    assert_problem(&reply, 400, "productId must be");
    assert_eq!(fingerprint(&store).await, before);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_a_415() {
    let store = store_with_item().await;
    let before = fingerprint(&store).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let reply = store
            .api
            .send(
                Method::PUT,
                "/inventory/sku-1",
                content_type,
                Some(b"{\"quantity\":1}".to_vec()),
                &[],
            )
            .await;
        assert_problem(&reply, 415, "Content-Type: application/json");
    }
    assert_eq!(fingerprint(&store).await, before);
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let store = store_with_item().await;
    let before = fingerprint(&store).await;
    let huge = format!("{{\"quantity\":1,\"pad\":\"{}\"}}", "x".repeat(64 * 1024));
    let reply = store
        .api
        .send(
            Method::PUT,
            "/inventory/sku-1",
            Some("application/json"),
            Some(huge.into_bytes()),
            &[],
        )
        .await;
    assert_problem(&reply, 413, "exceeds the limit");
    assert_eq!(fingerprint(&store).await, before);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_and_an_unknown_route_a_404() {
    let store = store_with_item().await;
    let reply = store
        .api
        .send(Method::DELETE, "/inventory/sku-1", None, None, &[])
        .await;
    assert_problem(&reply, 405, "DELETE is not allowed");
    let reply = store.api.get("/purchase/sku-1").await;
    assert_problem(&reply, 405, "GET is not allowed");
    let reply = store.api.get("/nowhere").await;
    assert_problem(&reply, 404, "no route");
}

#[tokio::test]
async fn bad_page_and_size_are_400s() {
    let store = store_with_item().await;
    for query in [
        "size=0",
        "size=1001",
        "page=-1",
        "size=-2",
        "page=abc",
        "size=1.5",
    ] {
        let reply = store.api.get(&format!("/inventory?{query}")).await;
        assert_problem(&reply, 400, "");
        let reply = store
            .api
            .get(&format!("/inventory/sku-1/history?{query}"))
            .await;
        assert_problem(&reply, 400, "");
    }
    let reply = store.api.get("/inventory?size=1001").await;
    assert_problem(&reply, 400, "size must be between 1 and 1000");
}
