//! Group commit on a real SQLite file: writes sent together share one transaction, a write that
//! fails (refused or panicking) undoes only itself, a group never exceeds its size, and a broken
//! group answers none of its writes as done; the same for writes whose first statement carries
//! the group's mark, and a leading write that does not carry it fails its group, not silently a
//! neighbour.
//!
//! The tests run on a current-thread runtime: the writes of one `join!` are all queued before the
//! writer task first runs, so they meet in one group without any timing assumption.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::AnyConnection;
use stockmesh_bus::{Database, DbConfig, GroupCommit, Leading, Mark, WriteError};

/// Why a test write failed.
#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("refused by its own check")]
    Refused,
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

async fn database(dir: &tempfile::TempDir, group: GroupCommit) -> Database {
    let config = DbConfig {
        group,
        ..DbConfig::new(dir.path().join("group.db").display().to_string())
    };
    let db = Database::open(&config, &stockmesh_bus::Schema::sqlite(&NO_MIGRATIONS))
        .await
        .expect("database opens");
    sqlx::query("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
        .execute(&db.writer)
        .await
        .expect("table");
    db
}

fn grouped(max_requests: usize) -> GroupCommit {
    GroupCommit {
        max_requests,
        max_wait: Duration::from_millis(10),
    }
}

async fn insert(conn: &mut AnyConnection, id: i64) -> Result<(), TestError> {
    sqlx::query("INSERT INTO rows (id) VALUES (?)")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The ids committed, as any other connection sees them.
async fn committed(db: &Database) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM rows ORDER BY id")
        .fetch_all(&db.reader)
        .await
        .expect("readable")
}

/// Inserts `id`, then reports the ids its own transaction sees and those a reader sees.
async fn insert_and_look(db: &Database, id: i64) -> Result<(Vec<i64>, Vec<i64>), TestError> {
    let reader = db.reader.clone();
    db.write(move |conn| {
        Box::pin(async move {
            insert(&mut *conn, id).await?;
            let own = sqlx::query_scalar("SELECT id FROM rows ORDER BY id")
                .fetch_all(&mut *conn)
                .await?;
            let others = sqlx::query_scalar("SELECT id FROM rows ORDER BY id")
                .fetch_all(&reader)
                .await?;
            Ok((own, others))
        })
    })
    .await
}

#[tokio::test]
async fn a_write_refused_by_its_own_check_does_not_roll_back_its_neighbours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    let first = db.write(|conn| Box::pin(insert(conn, 1)));
    let refused = db.write(|conn| {
        Box::pin(async move {
            insert(&mut *conn, 2).await?;
            Err::<(), _>(TestError::Refused)
        })
    });
    let last = insert_and_look(&db, 3);
    let (first, refused, last) = tokio::join!(first, refused, last);

    first.expect("the first write is done");
    assert!(matches!(refused, Err(TestError::Refused)), "{refused:?}");
    let (own, others) = last.expect("the last write is done");
    assert_eq!(
        (own, others),
        (vec![1, 3], vec![]),
        "the three writes shared one transaction (the reader saw none of it before the commit), \
         and the refused one left nothing in it"
    );
    assert_eq!(committed(&db).await, [1, 3]);
}

/// A write of the group that inserts `id`, then is refused if `refuse`.
async fn write(db: &Database, id: i64, refuse: bool) -> Result<(), TestError> {
    db.write(move |conn| {
        Box::pin(async move {
            insert(&mut *conn, id).await?;
            if refuse {
                return Err(TestError::Refused);
            }
            Ok(())
        })
    })
    .await
}

#[tokio::test]
async fn refusals_in_any_order_undo_only_themselves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    // Successes and refusals mixed, runs of each: a refusal after successes, a refusal right
    // after a refusal, a success after a refusal, a refusal last.
    let plan = [
        (1, false),
        (2, false),
        (3, true),
        (4, true),
        (5, false),
        (6, true),
        (7, false),
        (8, false),
        (9, true),
    ];
    let results =
        futures_util::future::join_all(plan.map(|(id, refuse)| write(&db, id, refuse))).await;

    for ((id, refuse), result) in plan.iter().zip(&results) {
        assert_eq!(result.is_err(), *refuse, "write {id}: {result:?}");
    }
    assert_eq!(committed(&db).await, [1, 2, 5, 7, 8]);
}

/// The insert a leading write begins with.
static LEADING_INSERT: LazyLock<Leading> =
    LazyLock::new(|| Leading::new("INSERT INTO rows (id) VALUES (?1)"));

/// A write that inserts `id` as its first statement, carrying the group's mark, then is refused
/// if `refuse`.
async fn write_leading(db: &Database, id: i64, refuse: bool) -> Result<(), TestError> {
    db.write_leading(move |conn: &mut AnyConnection, mark: &mut Mark| {
        Box::pin(async move {
            sqlx::query(mark.first(&LEADING_INSERT))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if refuse {
                return Err(TestError::Refused);
            }
            Ok(())
        })
    })
    .await
}

#[tokio::test]
async fn leading_and_plain_writes_in_any_order_undo_only_themselves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    // Every pair of neighbours among plain (P) and leading (L) writes, done (+) and refused (-):
    // L+ after P+, L- after L+ (the move it carries is what it is undone to), L- after L-,
    // P+ after L-, P- after L+, L+ after P-, L+ after L+, L- last.
    let plan = [
        (1, false, false),
        (2, false, true),
        (3, true, true),
        (4, true, true),
        (5, false, false),
        (6, false, true),
        (7, true, false),
        (8, false, true),
        (9, false, true),
        (10, true, true),
    ];
    let results = futures_util::future::join_all(plan.map(|(id, refuse, leads)| {
        let db = &db;
        async move {
            if leads {
                write_leading(db, id, refuse).await
            } else {
                write(db, id, refuse).await
            }
        }
    }))
    .await;

    for ((id, refuse, _), result) in plan.iter().zip(&results) {
        assert_eq!(result.is_err(), *refuse, "write {id}: {result:?}");
    }
    assert_eq!(committed(&db).await, [1, 2, 5, 6, 8, 9]);
}

#[tokio::test]
async fn a_leading_write_that_changes_without_its_mark_fails_its_group_not_a_neighbour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    let first = write(&db, 1, false);
    // It breaks the contract: its first statement does not carry the move of the mark owed to
    // it, then it is refused. Undoing to the mark there is would also undo the first write.
    let breaks = db.write_leading(|conn, _mark| {
        Box::pin(async move {
            insert(&mut *conn, 2).await?;
            Err::<(), _>(TestError::Refused)
        })
    });
    let (first, breaks) = tokio::join!(first, breaks);
    assert!(
        matches!(first, Err(TestError::Write(WriteError::Unmarked))),
        "the neighbour is not answered as done: {first:?}"
    );
    assert!(matches!(breaks, Err(TestError::Refused)), "{breaks:?}");
    assert_eq!(committed(&db).await, Vec::<i64>::new());
    write_leading(&db, 3, false)
        .await
        .expect("the next group works");
    assert_eq!(committed(&db).await, [3]);
}

#[tokio::test]
async fn a_leading_write_whose_caller_left_before_it_ran_costs_its_group_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    let mut first = std::pin::pin!(write(&db, 1, false));
    assert!(futures_util::poll!(&mut first).is_pending(), "queued");
    // Queued behind the first write with a move of the mark owed to it, then its caller leaves:
    // it never runs, and sends nothing the group would have to undo.
    {
        let mut left = std::pin::pin!(write_leading(&db, 2, false));
        assert!(futures_util::poll!(&mut left).is_pending(), "queued");
    }
    let (first, last) = tokio::join!(first, write(&db, 3, false));
    first.expect("the first write is done");
    last.expect("the last write is done");
    assert_eq!(committed(&db).await, [1, 3]);
}

#[tokio::test]
async fn a_refused_first_write_takes_no_neighbour_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    // The first write of the group runs behind the savepoint the transaction begins with: its
    // refusal rolls back to it, and the writes after it go on in the same transaction.
    let refused = db.write(|conn| {
        Box::pin(async move {
            insert(&mut *conn, 1).await?;
            Err::<(), _>(TestError::Refused)
        })
    });
    let second = db.write(|conn| Box::pin(insert(conn, 2)));
    let last = insert_and_look(&db, 3);
    let (refused, second, last) = tokio::join!(refused, second, last);

    assert!(matches!(refused, Err(TestError::Refused)), "{refused:?}");
    second.expect("the second write is done");
    let (own, others) = last.expect("the last write is done");
    assert_eq!(
        (own, others),
        (vec![2, 3], vec![]),
        "the writes after the refused one shared one transaction that holds nothing of it"
    );
    assert_eq!(committed(&db).await, [2, 3]);
}

#[tokio::test]
async fn a_lone_refused_write_leaves_nothing_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, GroupCommit::default()).await;
    let refused = db
        .write(|conn| {
            Box::pin(async move {
                insert(&mut *conn, 1).await?;
                Err::<(), _>(TestError::Refused)
            })
        })
        .await;
    assert!(matches!(refused, Err(TestError::Refused)), "{refused:?}");
    assert_eq!(committed(&db).await, Vec::<i64>::new());
    db.write(|conn| Box::pin(insert(conn, 2)))
        .await
        .expect("the next write is done");
    assert_eq!(committed(&db).await, [2]);
}

#[tokio::test]
async fn a_first_write_that_ends_the_transaction_itself_is_not_answered_as_done() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    let breaks = db.write(|conn| {
        Box::pin(async move {
            insert(&mut *conn, 1).await?;
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            Ok::<(), TestError>(())
        })
    });
    let next = db.write(|conn| Box::pin(insert(conn, 2)));
    let (breaks, next) = tokio::join!(breaks, next);
    assert!(
        matches!(breaks, Err(TestError::Write(WriteError::Transaction(_)))),
        "{breaks:?}"
    );
    assert!(
        matches!(next, Err(TestError::Write(WriteError::Transaction(_)))),
        "the neighbour is not answered as done: {next:?}"
    );
    assert!(
        !committed(&db).await.contains(&1),
        "what the rule-breaker wrote before its own rollback is gone"
    );
    db.write(|conn| Box::pin(insert(conn, 3)))
        .await
        .expect("the next group works on a fresh connection");
    assert!(committed(&db).await.contains(&3));
}

#[tokio::test]
async fn a_write_that_panics_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    let first = db.write(|conn| Box::pin(insert(conn, 1)));
    let panics = db.write(|conn| {
        Box::pin(async move {
            insert(&mut *conn, 2).await?;
            panic!("a bug in a write");
            #[allow(unreachable_code)]
            Ok::<(), TestError>(())
        })
    });
    let last = insert_and_look(&db, 3);
    let (first, panics, last) = tokio::join!(first, panics, last);

    first.expect("the first write is done");
    assert!(
        matches!(panics, Err(TestError::Write(WriteError::Panicked))),
        "{panics:?}"
    );
    assert_eq!(last.expect("the last write is done").1, Vec::<i64>::new());
    assert_eq!(committed(&db).await, [1, 3]);
    db.write(|conn| Box::pin(insert(conn, 4)))
        .await
        .expect("the writer goes on after a panic");
    assert_eq!(committed(&db).await, [1, 3, 4]);
}

#[tokio::test]
async fn a_group_holds_at_most_max_requests_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(2)).await;
    let (a, b, c) = tokio::join!(
        insert_and_look(&db, 1),
        insert_and_look(&db, 2),
        insert_and_look(&db, 3)
    );
    assert_eq!(a.expect("done").1, Vec::<i64>::new());
    assert_eq!(
        b.expect("done").1,
        Vec::<i64>::new(),
        "the second write is in the first group"
    );
    assert_eq!(
        c.expect("done").1,
        [1, 2],
        "the third write is in a second group, after the first committed"
    );
}

#[tokio::test]
async fn a_broken_group_answers_none_of_its_writes_as_done_and_the_writer_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, grouped(64)).await;
    let first = db.write(|conn| Box::pin(insert(conn, 1)));
    // A write that breaks the rules: it ends the group's transaction behind the writer's back.
    let breaks = db.write(|conn| {
        Box::pin(async move {
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            Ok::<(), TestError>(())
        })
    });
    let (first, breaks) = tokio::join!(first, breaks);
    assert!(
        matches!(first, Err(TestError::Write(WriteError::Transaction(_)))),
        "the neighbour is not answered as done: {first:?}"
    );
    assert!(
        matches!(breaks, Err(TestError::Write(WriteError::Transaction(_)))),
        "{breaks:?}"
    );
    assert_eq!(committed(&db).await, Vec::<i64>::new());
    db.write(|conn| Box::pin(insert(conn, 2)))
        .await
        .expect("the next group works on a fresh connection");
    assert_eq!(committed(&db).await, [2]);
}

#[tokio::test]
async fn without_a_wait_a_lone_write_commits_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, GroupCommit::default()).await;
    let (own, others) = insert_and_look(&db, 7).await.expect("done");
    assert_eq!((own, others), (vec![7], vec![]));
    assert_eq!(committed(&db).await, [7]);
}

#[tokio::test]
async fn a_write_whose_caller_gives_up_is_rolled_back_and_frees_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, GroupCommit::default()).await;
    let writes = db.clone();
    let hung = tokio::spawn(async move {
        writes
            .write(|conn| {
                Box::pin(async move {
                    insert(&mut *conn, 1).await?;
                    std::future::pending::<()>().await;
                    Ok::<(), TestError>(())
                })
            })
            .await
    });
    // Let the hung write reach the writer (whether it has or not, the outcome is the same).
    tokio::time::sleep(Duration::from_millis(50)).await;
    hung.abort();
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        db.write(|conn| Box::pin(insert(conn, 2))),
    )
    .await
    .expect("the writer is not held by a write nobody waits for");
    next.expect("the next write is done");
    assert_eq!(
        committed(&db).await,
        [2],
        "the abandoned write left nothing"
    );
}
