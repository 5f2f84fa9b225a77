//! Notifications between nodes that share one PostgreSQL database (Central replicas):
//! `NOTIFY` inside the transaction whose commit it announces (PostgreSQL delivers it at commit,
//! and only if it commits, to every session that `LISTEN`s on the channel), and a listener that
//! hands every payload to its caller, reconnecting when its session is lost (what was sent
//! meanwhile is not delivered: callers treat a notification as a hint, never as the data).

use sqlx::postgres::PgListener;
use sqlx::{AnyConnection, AssertSqlSafe};
use tokio_util::sync::CancellationToken;

/// Sends `payload` on `channel` inside the caller's transaction: PostgreSQL delivers it to
/// every listening session when, and only if, the transaction commits. `payload` must stay
/// under 8,000 bytes.
pub async fn notify_on(tx: &mut AnyConnection, channel: &str, payload: &str) -> sqlx::Result<()> {
    // NOTIFY takes no bind parameters: the payload is a string literal, its quotes doubled
    // (standard_conforming_strings, on by default since PostgreSQL 9.1, keeps backslashes
    // literal).
    let sql = format!("NOTIFY {channel}, '{}'", payload.replace('\'', "''"));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    Ok(())
}

/// Listens on `channel` at `url` until `stop`, handing every payload to `on`. Connection losses
/// are logged and retried; sqlx's listener re-subscribes when it reconnects.
pub async fn listen_on(
    url: &str,
    channel: &str,
    stop: CancellationToken,
    mut on: impl FnMut(&str),
) {
    let mut listener = loop {
        let connected = async {
            let mut listener = PgListener::connect(url).await?;
            listener.listen(channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        tokio::select! {
            () = stop.cancelled() => return,
            connected = connected => match connected {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::warn!(%error, channel, "cannot listen to the other replicas; retrying");
                }
            },
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    };
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            received = listener.recv() => received,
        };
        match received {
            Ok(notification) => on(notification.payload()),
            Err(error) => {
                tracing::warn!(%error, channel, "lost the listener to the other replicas; reconnecting");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
