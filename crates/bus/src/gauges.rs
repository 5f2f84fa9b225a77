//! Gauges that describe state rather than events (outbox backlog, consumer groups, streams),
//! refreshed when `GET /metrics` is scraped, so they are exact at scrape time and cost nothing
//! in between.

use std::sync::Arc;

use crate::broker::Broker;
use crate::{Database, Outbox, topology};

/// Sets the outbox gauges of `node`.
pub async fn report_outbox(node: &str, db: &Database) -> sqlx::Result<()> {
    let backlog = Outbox::backlog(&db.reader).await?;
    let now = stockmesh_core::now().timestamp_millis();
    let age = backlog
        .oldest_created_at
        .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
    metrics::gauge!("stockmesh_outbox_pending", "node" => node.to_owned())
        .set(backlog.pending as f64);
    metrics::gauge!("stockmesh_outbox_oldest_age_seconds", "node" => node.to_owned()).set(age);
    Ok(())
}

/// Sets the gauges of `group` on `stream` and of the stream's dead letters, as seen by `node`.
/// A broker that does not answer leaves the previous values (and `/readyz` says why).
pub async fn report_group(node: &str, broker: &Arc<dyn Broker>, stream: &str, group: &str) {
    let labels = [
        ("node", node.to_owned()),
        ("stream", stream.to_owned()),
        ("group", group.to_owned()),
    ];
    if let Ok(info) = broker.group_info(stream, group).await {
        metrics::gauge!("stockmesh_consumer_lag", &labels).set(info.lag.unwrap_or(0) as f64);
        metrics::gauge!("stockmesh_consumer_pending", &labels).set(info.pending as f64);
        metrics::gauge!("stockmesh_consumer_oldest_unacked_age_seconds", &labels)
            .set(info.oldest_unacked_age_ms.unwrap_or(0) as f64 / 1000.0);
        metrics::gauge!("stockmesh_stream_length", "node" => node.to_owned(), "stream" => stream.to_owned())
            .set(info.length as f64);
    }
    let dead = topology::dead_letter_stream(stream);
    if let Ok(info) = broker.group_info(&dead, group).await {
        metrics::gauge!("stockmesh_dead_letter_length", "node" => node.to_owned(), "stream" => stream.to_owned())
            .set(info.length as f64);
    }
}
