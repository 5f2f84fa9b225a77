//! Group commit through the store's routes: requests sent together share transactions (the
//! writer waits up to 10 ms to gather them), and each request refused by its own check — an
//! oversold purchase, a stale count, an adjustment whose last line cannot apply after its first
//! one was written — fails alone: its neighbours' sales stand, and it leaves nothing behind.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use stockmesh_bus::GroupCommit;
use stockmesh_testkit::store::spawn_store_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_inside_a_group_fail_alone() {
    let store = spawn_store_with(|config| {
        config.db.group = GroupCommit {
            max_requests: 256,
            max_wait: Duration::from_millis(10),
        };
    })
    .await;
    store.api.create_item("a").await.expect(201);
    store.api.create_item("empty").await.expect(201);
    store.api.set_quantity("a", 100).await.expect(204);

    let api = Arc::new(store.api.clone());
    let mut tasks = Vec::new();
    for i in 0..60 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let reply = match i % 4 {
                // Sells one unit of a: done.
                0 | 1 => api.purchase("a", 1).await,
                // Nothing to sell: refused with 409.
                2 if i % 8 == 2 => api.purchase("empty", 1).await,
                // A count at a version a is long past: refused with 412.
                2 => {
                    api.send(
                        Method::PUT,
                        "/inventory/a",
                        Some("application/json"),
                        Some(json!({"quantity": 5}).to_string().into_bytes()),
                        &[("if-match", "\"1\"")],
                    )
                    .await
                }
                // Adds 1,000 to a, then takes a unit `empty` lacks: refused whole with 409.
                _ => {
                    let lines = json!([
                        {"productId": "a", "delta": 1000, "reason": "received"},
                        {"productId": "empty", "delta": -1, "reason": "damaged"},
                    ]);
                    api.post("/inventory/adjustments", &json!({ "lines": lines }))
                        .await
                }
            };
            (i % 4, i % 8, reply.status)
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("client task"));
    }
    for (kind, sub, status) in &statuses {
        let expected = match (kind, sub) {
            (0 | 1, _) => 200,
            (2, 2) => 409,
            (2, _) => 412,
            _ => 409,
        };
        assert_eq!(*status, expected, "request kind {kind}: {statuses:?}");
    }

    let sold = statuses.iter().filter(|(kind, _, _)| *kind < 2).count();
    assert_eq!(sold, 30);
    assert_eq!(
        store.api.quantity("/inventory/a").await,
        Some(100 - 30),
        "every sale stands and no refused adjustment added its 1,000"
    );
    assert_eq!(store.api.quantity("/inventory/empty").await, Some(0));

    let db = store.raw_db().await;
    let count = async |sql: &'static str| -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&db)
            .await
            .expect("readable")
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM movements WHERE kind = 'local_sale'").await,
        30
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM movements WHERE kind IN ('adjustment', 'set')").await,
        1,
        "only the first count; nothing of the refused requests"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox").await,
        2 + 1 + 30,
        "one event per done change: two creates, one count, the sales"
    );
    assert_eq!(
        count("SELECT MAX(version) FROM items WHERE product_id = 'a'").await,
        2 + 30,
        "versions count only done changes"
    );
}
