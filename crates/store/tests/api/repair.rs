//! Self-healing at the store: the summary the heartbeat advertises, and a resynchronisation sent
//! in pages, one short transaction each, asked for once.

use stockmesh_bus::consumer::apply_batch;
use stockmesh_core::event::SnapshotRequest;
use stockmesh_core::summary::Digest;
use stockmesh_core::{Envelope, Event, ProductId, Quantity};
use stockmesh_store::commands::CommandHandler;
use stockmesh_store::repair::{Resync, ResyncOutcome, Summarizer};
use stockmesh_testkit::store::spawn_store;

async fn outbox_rows(pool: &sqlx::AnyPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn the_summary_counts_changes_and_adds_the_digest_once_the_store_is_quiet() {
    let store = spawn_store().await;
    let service = store.node().service().clone();
    let summarizer = Summarizer::new(service.database().clone());
    for name in ["a", "b"] {
        let product = ProductId::parse(name).expect("valid");
        service
            .create_item(product.clone(), None)
            .await
            .expect("created");
        service
            .set_quantity(product, Quantity::new(5).expect("valid"), None)
            .await
            .expect("set");
    }
    let first = summarizer.read().await.expect("summary");
    assert_eq!((first.changes, first.items, first.digest), (4, 2, None));
    let quiet = summarizer.read().await.expect("summary");
    let mut expected = Digest::default();
    expected.add("a", 2);
    expected.add("b", 2);
    assert_eq!(quiet.digest, Some(expected.value()));

    store.api.purchase("a", 1).await.expect(200);
    let busy = summarizer.read().await.expect("summary");
    assert_eq!((busy.changes, busy.digest), (5, None));
}

#[tokio::test]
async fn a_snapshot_is_sent_in_pages_and_a_covered_request_does_not_restart_it() {
    let store = spawn_store().await;
    let service = store.node().service().clone();
    for i in 0..2_500 {
        let product = ProductId::parse(format!("p{i:05}")).expect("valid");
        service.create_item(product, None).await.expect("created");
    }
    let db = service.database().clone();
    let before = outbox_rows(&db.reader).await;
    let handler = CommandHandler::new(service.clone());
    let ask = |changed_after| {
        Envelope::new(
            service.id().clone(),
            Event::SnapshotRequested(SnapshotRequest { changed_after }),
            None,
        )
    };
    apply_batch(&db, &handler, "store-test", &[ask(None)])
        .await
        .expect("recorded");
    let resync = Resync::new(service.clone());
    assert_eq!(
        resync.try_once().await.expect("page"),
        ResyncOutcome::Sent(1_000)
    );
    // A replay asked for meanwhile is covered by the snapshot in progress: nothing restarts.
    apply_batch(
        &db,
        &handler,
        "store-test",
        &[ask(Some(stockmesh_core::now()))],
    )
    .await
    .expect("recorded");
    assert_eq!(
        resync.try_once().await.expect("page"),
        ResyncOutcome::Sent(1_000)
    );
    assert_eq!(
        resync.try_once().await.expect("page"),
        ResyncOutcome::Finished(500)
    );
    assert_eq!(resync.try_once().await.expect("idle"), ResyncOutcome::Idle);
    assert_eq!(outbox_rows(&db.reader).await - before, 2_500);
    assert_eq!(store.api.get("/status").await.json()["resyncing"], false);

    // A replay sends only what changed after its instant.
    let since = stockmesh_core::now();
    // Items carry millisecond stamps: the change must come in a later millisecond.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    service
        .set_quantity(
            ProductId::parse("p00007").expect("valid"),
            Quantity::new(3).expect("valid"),
            None,
        )
        .await
        .expect("set");
    apply_batch(&db, &handler, "store-test", &[ask(Some(since))])
        .await
        .expect("recorded");
    assert_eq!(store.api.get("/status").await.json()["resyncing"], true);
    assert_eq!(
        resync.try_once().await.expect("page"),
        ResyncOutcome::Finished(1)
    );
}
