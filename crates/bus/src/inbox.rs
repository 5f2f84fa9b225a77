//! The inbox: consumers remember which events they have applied, in the same transaction as the
//! effect. A redelivered event then finds its id already there and is skipped, so a crash between
//! the commit and the broker ack is harmless.

use std::collections::HashSet;

use sqlx::{AnyConnection, AnyPool};
use stockmesh_core::EventId;

use crate::sql::SqlBuilder;

/// The `processed_events` table's queries.
pub struct Inbox;

impl Inbox {
    /// Records `event` as processed inside the caller's transaction. Returns `false` when it was
    /// already recorded: the caller must then skip the effect (and still ack the entry).
    pub async fn record(conn: &mut AnyConnection, event: EventId, at: i64) -> sqlx::Result<bool> {
        let done =
            sqlx::query("INSERT INTO processed_events (event_id, processed_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(event.to_string())
                .bind(at)
                .execute(conn)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a batch of events as processed inside the caller's transaction, in one statement
    /// per 500 ids; returns the ids that were *not* recorded before (the ones to apply).
    pub async fn record_many(
        conn: &mut AnyConnection,
        events: &[EventId],
        at: i64,
    ) -> sqlx::Result<HashSet<EventId>> {
        let mut fresh = HashSet::with_capacity(events.len());
        for chunk in events.chunks(500) {
            let mut insert =
                SqlBuilder::new("INSERT INTO processed_events (event_id, processed_at) ");
            insert.push_values(chunk, |row, id| {
                row.push_bind(id.to_string()).push_bind(at);
            });
            insert.push(" ON CONFLICT DO NOTHING RETURNING event_id");
            let inserted: Vec<String> = insert.query_scalar()?.fetch_all(&mut *conn).await?;
            fresh.extend(inserted.iter().filter_map(|id| EventId::parse(id).ok()));
        }
        Ok(fresh)
    }

    /// Whether `event` was processed (read-only check, e.g. for tests and audits).
    pub async fn contains(pool: &AnyPool, event: EventId) -> sqlx::Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM processed_events WHERE event_id = $1")
                .bind(event.to_string())
                .fetch_optional(pool)
                .await?;
        Ok(found.is_some())
    }

    /// Forgets ids processed before `before` (unix ms). Events older than the retention are never
    /// redelivered (the stream trims them), and item events are idempotent by version anyway.
    pub async fn prune(pool: &AnyPool, before: i64) -> sqlx::Result<u64> {
        let done = sqlx::query("DELETE FROM processed_events WHERE processed_at < $1")
            .bind(before)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }
}
