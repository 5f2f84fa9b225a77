use std::sync::Arc;

use stockmesh_testkit::spawn_store;

/// 200 buyers race for 50 units, one unit each: exactly 50 succeed, the rest get 409, and stock
/// ends at 0 with exactly 50 sales in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_purchases_never_oversell() {
    let store = spawn_store().await;
    store.api.create_item("hot").await.expect(201);
    store.api.set_quantity("hot", 50).await.expect(204);

    let api = Arc::new(store.api.clone());
    let buyers: Vec<_> = (0..200)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.purchase("hot", 1).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for buyer in buyers {
        statuses.push(buyer.await.expect("buyer task"));
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((ok, refused), (50, 150), "statuses: {statuses:?}");
    assert_eq!(store.api.quantity("/inventory/hot").await, Some(0));

    let pool = store.raw_db().await;
    let sales: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM movements WHERE kind = 'local_sale'")
        .fetch_one(&pool)
        .await
        .expect("ledger readable");
    assert_eq!(sales, 50);
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("outbox readable");
    assert_eq!(events, 52, "one event per committed change");
}

/// Mixed amounts: whatever the interleaving, the units sold never exceed the stock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_purchases_of_mixed_amounts_sell_at_most_the_stock() {
    let store = spawn_store().await;
    store.api.create_item("hot").await.expect(201);
    store.api.set_quantity("hot", 100).await.expect(204);
    let api = Arc::new(store.api.clone());
    let buyers: Vec<_> = (0..120)
        .map(|i| {
            let api = api.clone();
            let amount = 1 + (i % 4);
            tokio::spawn(async move { (amount, api.purchase("hot", amount).await.status) })
        })
        .collect();
    let mut sold = 0;
    for buyer in buyers {
        let (amount, status) = buyer.await.expect("buyer task");
        assert!(status == 200 || status == 409, "unexpected status {status}");
        if status == 200 {
            sold += amount;
        }
    }
    assert!(sold <= 100);
    assert_eq!(store.api.quantity("/inventory/hot").await, Some(100 - sold));
}
