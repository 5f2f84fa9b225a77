//! The inbox remembers applied event ids, tells a batch which of its events are new, and
//! forgets ids past their retention.

use stockmesh_bus::{Database, DbConfig, Inbox};
use stockmesh_core::EventId;

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("tests/no_migrations");

#[tokio::test]
async fn the_inbox_records_once_answers_which_are_new_and_prunes_old_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        &DbConfig::new(dir.path().join("i.db").display().to_string()),
        &stockmesh_bus::Schema::sqlite(&NO_MIGRATIONS),
    )
    .await
    .expect("db");
    let (a, b, c) = (EventId::new(), EventId::new(), EventId::new());

    let mut tx = db.writer.begin().await.expect("begin");
    assert!(Inbox::record(&mut tx, a, 1_000).await.expect("record"));
    assert!(
        !Inbox::record(&mut tx, a, 1_000).await.expect("record"),
        "a repeat"
    );
    let fresh = Inbox::record_many(&mut tx, &[a, b, c, b], 5_000)
        .await
        .expect("many");
    assert_eq!(fresh.len(), 2);
    assert!(fresh.contains(&b) && fresh.contains(&c) && !fresh.contains(&a));
    tx.commit().await.expect("commit");

    assert_eq!(
        Inbox::prune(&db.writer, 2_000).await.expect("prune"),
        1,
        "only a is old"
    );
    assert!(!Inbox::contains(&db.reader, a).await.expect("read"));
    assert!(Inbox::contains(&db.reader, b).await.expect("read"));
}
