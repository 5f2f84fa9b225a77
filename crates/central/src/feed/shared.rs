//! The change feed across Central replicas that share one PostgreSQL database. A replica's feed
//! shows what it applied; the changes another replica applied reach it as notifications sent in
//! the applying transaction (`NOTIFY stockmesh_changes`, delivered at commit, only if it
//! commits), which it publishes to its own clients. Store liveness is not told: every replica's
//! watcher reads the broker's heartbeats itself. A notification lost while a listener reconnects
//! is a gap in that replica's feed (its clients resynchronise from `/inventory`, as after any
//! gap).

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;

use super::{Change, Feed};
use stockmesh_bus::pg_notify::{listen_on, notify_on};

/// The channel changes are told on.
const CHANNEL: &str = "stockmesh_changes";

/// A notification's payload stays under this many bytes (PostgreSQL's limit is 8,000).
const PAYLOAD_BYTES: usize = 7_000;

/// What one notification carries.
#[derive(Debug, Serialize, Deserialize)]
struct Told {
    /// The replica that applied them (its consumer name): it does not publish them twice.
    from: String,
    /// The changes, in the order applied.
    changes: Vec<Change>,
}

/// Tells the other replicas `changes` (store liveness left out), inside the transaction that
/// applies them, in as many notifications as their size needs.
pub(crate) async fn tell(
    tx: &mut AnyConnection,
    from: &str,
    changes: &[Change],
) -> sqlx::Result<()> {
    let mut batch: Vec<Change> = Vec::new();
    let mut size = 0;
    for change in changes
        .iter()
        .filter(|c| !matches!(c, Change::Store { .. }))
    {
        let bytes = serde_json::to_string(change).map_or(0, |json| json.len() + 1);
        if !batch.is_empty() && size + bytes > PAYLOAD_BYTES {
            send(tx, from, std::mem::take(&mut batch)).await?;
            size = 0;
        }
        batch.push(change.clone());
        size += bytes;
    }
    if !batch.is_empty() {
        send(tx, from, batch).await?;
    }
    Ok(())
}

async fn send(tx: &mut AnyConnection, from: &str, changes: Vec<Change>) -> sqlx::Result<()> {
    let told = Told {
        from: from.to_owned(),
        changes,
    };
    let payload = serde_json::to_string(&told).map_err(|e| sqlx::Error::Encode(e.into()))?;
    notify_on(tx, CHANNEL, &payload).await
}

/// Publishes to `feed` the changes other replicas tell, until `stop`; `me` is this replica's
/// consumer name (its own changes are already in its feed).
pub(crate) async fn follow(url: String, me: String, feed: Feed, stop: CancellationToken) {
    listen_on(&url, CHANNEL, stop, |payload| {
        match serde_json::from_str::<Told>(payload) {
            Ok(told) if told.from == me => {}
            Ok(told) => feed.publish(told.changes),
            Err(error) => tracing::warn!(%error, "a change notification that is not one"),
        }
    })
    .await;
}
