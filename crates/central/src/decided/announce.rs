//! Decisions told across Central replicas that share one PostgreSQL database.
//!
//! A request waits in the replica that took it, but any replica may apply its store's reply
//! (they share the consumer group). The applying transaction sends `NOTIFY stockmesh_decided`
//! with the decided ids; PostgreSQL delivers a notification when, and only if, that transaction
//! commits, to every session that `LISTEN`s, so each replica wakes its own waiters, which then
//! read the committed record. Chosen over a Redis channel (published after the commit, lost if
//! the replica dies in between, and a second system to reach) and over routing replies to the
//! requesting replica (a dead replica's replies would have nowhere to go). A notification lost
//! while a listener reconnects costs only latency: the waiter answers at its wait limit from
//! the database (202 if still pending), as it would without replicas.

use sqlx::AnyConnection;
use stockmesh_bus::pg_notify::{listen_on, notify_on};
use stockmesh_core::RequestId;
use tokio_util::sync::CancellationToken;

use super::waiters::Waiters;

/// The channel decisions are announced on.
const CHANNEL: &str = "stockmesh_decided";

/// Ids per notification: a payload stays well under PostgreSQL's 8,000-byte limit.
const IDS_PER_NOTIFY: usize = 100;

/// Announces `decided` inside the caller's transaction (delivered at its commit).
pub(super) async fn notify(tx: &mut AnyConnection, decided: &[RequestId]) -> sqlx::Result<()> {
    for chunk in decided.chunks(IDS_PER_NOTIFY) {
        let payload: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        notify_on(tx, CHANNEL, &payload.join(",")).await?;
    }
    Ok(())
}

/// Listens on [`CHANNEL`] at `url` until `stop`, waking the `waiters` of every announced id.
pub(super) async fn listen(url: &str, waiters: &Waiters, stop: CancellationToken) {
    listen_on(url, CHANNEL, stop, |payload| {
        for id in payload.split(',') {
            match RequestId::parse(id) {
                Ok(id) => waiters.wake(id),
                Err(_) => tracing::warn!(payload, "an announcement that is not request ids"),
            }
        }
    })
    .await;
}
