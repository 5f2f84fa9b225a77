//! The transactional outbox: the SQL side of "commit the change and the event together".
//!
//! A service calls [`Outbox::append`] inside the transaction that makes a change, then
//! [`OutboxSignal::notify`] after the commit. The relay reads [`Outbox::next_batch`] in `seq`
//! order, publishes, and only afterwards calls [`Outbox::mark_published`]. A crash between
//! publishing and marking republishes those rows; consumers deduplicate by event id, so that is
//! harmless, which is why the relay may mark lazily.

use std::sync::Arc;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool};
use stockmesh_core::Envelope;
use tokio::sync::Notify;

/// One outbox row, as the relay publishes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    /// Position in the outbox; the relay publishes in this order.
    pub seq: i64,
    /// The stream the entry goes to.
    pub stream: String,
    /// The event id (UUID text).
    pub event_id: String,
    /// The entry's `type` field.
    pub event_type: String,
    /// The entry's `data` field: the JSON envelope.
    pub data: String,
    /// When the row was committed (unix ms).
    pub created_at: i64,
    /// When the relay stamped it published (unix ms; Redis accepted it at or before then), or
    /// `None` until then: stamps trail publishing by up to the stamping interval.
    pub published_at: Option<i64>,
}

/// What waits in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Rows not yet stamped published: the unpublished ones, plus those published in the last
    /// stamping interval (the relay stamps lazily, about every 50 ms).
    pub pending: i64,
    /// Commit time (unix ms) of the oldest of them.
    pub oldest_created_at: Option<i64>,
}

/// The outbox table's queries.
pub struct Outbox;

impl Outbox {
    /// The insert of one outbox row, its values numbered `$1` to `$5` in the order
    /// [`bind_append`](Self::bind_append) binds them. A store on SQLite sends it together with
    /// its own insert (SQLite takes a list of statements with one set of numbered parameters),
    /// one round trip to the database instead of two.
    pub const APPEND: &str = "INSERT INTO outbox (stream, event_id, event_type, data, created_at)
             VALUES ($1, $2, $3, $4, $5)";

    /// Appends `envelope`, bound for `stream`, inside the caller's transaction.
    pub async fn append(
        conn: &mut AnyConnection,
        stream: &str,
        envelope: &Envelope,
    ) -> sqlx::Result<()> {
        Self::bind_append(sqlx::query(Self::APPEND), stream, envelope)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Binds the values of [`APPEND`](Self::APPEND) for `envelope`, bound for `stream`, as the
    /// query's first five.
    pub fn bind_append<'q>(
        query: Query<'q, Any, AnyArguments>,
        stream: &'q str,
        envelope: &Envelope,
    ) -> Query<'q, Any, AnyArguments> {
        query
            .bind(stream)
            .bind(envelope.id.to_string())
            .bind(envelope.event.type_name())
            .bind(envelope.to_json())
            .bind(envelope.occurred_at.timestamp_millis())
    }

    /// The oldest unpublished rows after `after_seq`, at most `limit`, in `seq` order.
    /// On a shared database only the rows `origin` wrote (see [`crate::DbConfig::origin`]).
    pub async fn next_batch(
        pool: &AnyPool,
        after_seq: i64,
        limit: u32,
        origin: Option<&str>,
    ) -> sqlx::Result<Vec<OutboxRow>> {
        sqlx::query_as(
            "SELECT seq, stream, event_id, event_type, data, created_at, published_at
             FROM outbox WHERE published_at IS NULL AND seq > $1 AND ($3 IS NULL OR origin = $3)
             ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .bind(origin)
        .fetch_all(pool)
        .await
    }

    /// Marks every unpublished row with `seq` in `first..=last` as published at `at` (unix ms).
    ///
    /// Rows are committed by one writer in `seq` order and read in that order, so a batch is
    /// always a contiguous range of the unpublished rows (of `origin`, on a shared database:
    /// another node's rows in the range are not this relay's to stamp).
    pub async fn mark_published(
        conn: &mut AnyConnection,
        first: i64,
        last: i64,
        at: i64,
        origin: Option<&str>,
    ) -> sqlx::Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET published_at = $1
             WHERE seq BETWEEN $2 AND $3 AND published_at IS NULL AND ($4 IS NULL OR origin = $4)",
        )
        .bind(at)
        .bind(first)
        .bind(last)
        .bind(origin)
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes published rows older than `before` (unix ms); returns how many.
    pub async fn prune(pool: &AnyPool, before: i64) -> sqlx::Result<u64> {
        let done =
            sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1")
                .bind(before)
                .execute(pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// How many rows wait, and since when.
    pub async fn backlog(pool: &AnyPool) -> sqlx::Result<Backlog> {
        let (pending, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(pool)
        .await?;
        Ok(Backlog {
            pending,
            oldest_created_at: oldest,
        })
    }
}

/// Wakes the relay when a transaction with outbox rows has committed, so events leave in
/// milliseconds rather than at the next poll. Cloning gives another handle to the same signal.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// Tells the relay that new rows are committed. Cheap; call it after every commit.
    pub fn notify(&self) {
        // `notify_one` stores a permit when nobody waits, so a wake-up is never lost.
        self.0.notify_one();
    }

    /// Waits for the next [`notify`](Self::notify) (or a stored permit).
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}
