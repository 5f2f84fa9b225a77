//! Batch adjustments with reasons (all or nothing, one event per changed item, every bad line
//! named), compare-and-set with `If-Match`, and a ledger that says who and why (issue 16).

use reqwest::Method;
use serde_json::{Value, json};
use stockmesh_testkit::http::{Api, Reply};
use stockmesh_testkit::spawn_store;

async fn adjust(api: &Api, lines: Value, headers: &[(&str, &str)]) -> Reply {
    api.send(
        Method::POST,
        "/inventory/adjustments",
        Some("application/json"),
        Some(json!({ "lines": lines }).to_string().into_bytes()),
        headers,
    )
    .await
}

async fn item(api: &Api, product: &str) -> Value {
    api.get(&format!("/inventory/{product}"))
        .await
        .expect(200)
        .json()
}

async fn ledger(api: &Api, product: &str) -> Vec<Value> {
    api.get(&format!("/inventory/{product}/history"))
        .await
        .expect(200)
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_batch_applies_every_line_with_its_reason_reference_and_actor() {
    let store = spawn_store().await;
    store.api.create_item("a").await.expect(201);
    store.api.create_item("b").await.expect(201);
    let lines = json!([
        {"productId": "a", "delta": 10, "reason": "received", "reference": "DN-1"},
        {"productId": "b", "quantity": 5, "reason": "count"},
        {"productId": "a", "delta": -2, "reason": "damaged"},
    ]);
    let reply = adjust(&store.api, lines, &[("x-request-id", "clerk-7")])
        .await
        .expect(200);
    let items = reply.json();
    assert_eq!(items.as_array().map(Vec::len), Some(2), "{items}");
    assert_eq!((item(&store.api, "a").await["quantity"].as_i64()), Some(8));
    assert_eq!((item(&store.api, "a").await["version"].as_i64()), Some(3));
    assert_eq!((item(&store.api, "b").await["onHand"].as_i64()), Some(5));

    let a = ledger(&store.api, "a").await;
    assert_eq!(a[0]["kind"], "adjustment");
    assert_eq!(
        (a[0]["reason"].clone(), a[0]["delta"].as_i64()),
        (json!("damaged"), Some(-2))
    );
    assert_eq!(
        (a[1]["reason"].clone(), a[1]["reference"].clone()),
        (json!("received"), json!("DN-1"))
    );
    assert_eq!(a[0]["actor"], "clerk-7");
    assert_eq!(a[2]["kind"], "created");

    // One event per changed item: two creates, then one per item of the batch.
    let db = store.raw_db().await;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&db)
        .await
        .expect("outbox");
    assert_eq!(events, 4);
}

#[tokio::test]
async fn a_batch_with_bad_lines_names_each_and_changes_nothing() {
    let store = spawn_store().await;
    store.api.create_item("a").await.expect(201);
    store.api.set_quantity("a", 3).await.expect(204);
    let lines = json!([
        {"productId": "a", "delta": 1, "reason": "received"},
        {"productId": "a", "delta": 0, "reason": "received"},
        {"productId": "a", "delta": 1, "reason": "stolen"},
        {"productId": "a", "delta": 1, "quantity": 2, "reason": "count"},
        {"productId": "a", "reason": "count"},
        {"productId": "a", "delta": 1, "reason": "count", "why": "x"},
    ]);
    let reply = adjust(&store.api, lines, &[]).await.expect(400);
    let detail = reply.json()["detail"].as_str().unwrap_or("").to_owned();
    for expected in [
        "lines[1]: delta must be a non-zero integer",
        "lines[2]: reason must be one of received, damaged, count, returned, correction",
        "lines[3]: give exactly one of delta or quantity",
        "lines[4]: give exactly one of delta or quantity",
        "lines[5]: why is not a field",
    ] {
        assert!(detail.contains(expected), "{detail:?} lacks {expected:?}");
    }
    assert!(!detail.contains("lines[0]"), "{detail}");

    // Lines that parse but cannot apply: 409 naming them; the good line is rolled back too.
    let lines = json!([
        {"productId": "a", "delta": 5, "reason": "received"},
        {"productId": "zz", "delta": 1, "reason": "received"},
    ]);
    let reply = adjust(&store.api, lines, &[]).await.expect(409);
    assert!(
        reply.text.contains("lines[1]: product zz not found"),
        "{}",
        reply.text
    );
    let lines = json!([
        {"productId": "a", "delta": 5, "reason": "received"},
        {"productId": "a", "delta": -20, "reason": "damaged"},
    ]);
    let reply = adjust(&store.api, lines, &[]).await.expect(409);
    assert!(reply.text.contains("lines[1]: delta -20"), "{}", reply.text);
    assert_eq!(item(&store.api, "a").await["quantity"], 3);
    assert_eq!(item(&store.api, "a").await["version"], 2);

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"productId": "a", "delta": 1, "reason": "received"}))
        .collect();
    let reply = adjust(&store.api, Value::Array(too_many), &[])
        .await
        .expect(400);
    assert!(
        reply
            .text
            .contains("lines must hold 1 to 1000 lines, got 1001"),
        "{}",
        reply.text
    );
    adjust(&store.api, json!([]), &[]).await.expect(400);
    assert_eq!(ledger(&store.api, "a").await.len(), 2);
}

#[tokio::test]
async fn a_thousand_lines_apply_in_one_batch() {
    let store = spawn_store().await;
    store.api.create_item("a").await.expect(201);
    let lines: Vec<Value> = (0..1000)
        .map(|i| json!({"productId": "a", "delta": 1, "reason": "received", "reference": format!("DN-{i}")}))
        .collect();
    adjust(&store.api, Value::Array(lines), &[])
        .await
        .expect(200);
    assert_eq!(item(&store.api, "a").await["quantity"], 1000);
}

#[tokio::test]
async fn a_stale_if_match_answers_412_and_changes_nothing() {
    let store = spawn_store().await;
    store.api.create_item("a").await.expect(201);
    let reply = store.api.get("/inventory/a").await.expect(200);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let set = |version: &'static str, quantity: i64| {
        let api = store.api.clone();
        async move {
            api.send(
                Method::PUT,
                "/inventory/a",
                Some("application/json"),
                Some(json!({ "quantity": quantity }).to_string().into_bytes()),
                &[("if-match", version)],
            )
            .await
        }
    };
    set("\"1\"", 5).await.expect(204);
    let stale = set("\"1\"", 9).await.expect(412);
    assert_eq!(stale.json()["title"], "Precondition Failed");
    assert!(
        stale.text.contains("is at version 2, not 1"),
        "{}",
        stale.text
    );
    assert_eq!(item(&store.api, "a").await["quantity"], 5);
    set("not-a-version", 9).await.expect(400);

    let line = json!([{"productId": "a", "delta": 1, "reason": "received"}]);
    adjust(&store.api, line.clone(), &[("if-match", "\"1\"")])
        .await
        .expect(412);
    adjust(&store.api, line.clone(), &[("if-match", "\"2\"")])
        .await
        .expect(200);
    let versioned = json!([{"productId": "a", "delta": 1, "reason": "received", "version": 2}]);
    adjust(&store.api, versioned, &[]).await.expect(412);
    assert_eq!(item(&store.api, "a").await["quantity"], 6);
    // If-Match names one item: a batch over two products must version each line instead.
    store.api.create_item("b").await.expect(201);
    let two = json!([
        {"productId": "a", "delta": 1, "reason": "received"},
        {"productId": "b", "delta": 1, "reason": "received"},
    ]);
    adjust(&store.api, two, &[("if-match", "\"3\"")])
        .await
        .expect(400);
}

#[tokio::test]
async fn every_movement_records_its_reason_and_actor() {
    let store = spawn_store().await;
    store.api.create_item("a").await.expect(201);
    store
        .api
        .send(
            Method::PUT,
            "/inventory/a",
            Some("application/json"),
            Some(json!({ "quantity": 4 }).to_string().into_bytes()),
            &[("x-request-id", "count-42")],
        )
        .await
        .expect(204);
    store.api.purchase("a", 1).await.expect(200);
    let lines = ledger(&store.api, "a").await;
    assert_eq!(
        (lines[0]["kind"].clone(), lines[0]["reason"].clone()),
        (json!("local_sale"), json!("sale"))
    );
    assert_eq!(
        (lines[1]["reason"].clone(), lines[1]["actor"].clone()),
        (json!("count"), json!("count-42"))
    );
    assert!(lines.iter().all(|l| l["actor"].is_string()), "{lines:?}");
}
