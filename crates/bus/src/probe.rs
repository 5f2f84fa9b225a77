//! Raw limits of this machine, measured the way stockmesh uses its parts, so benchmarks can show
//! each figure beside what the hardware allows: SQLite commits per second at a given durability,
//! and broker round trips (append, group read, ack) at given batch sizes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::{Broker, BrokerError, Outgoing};
use crate::{Database, topology};

/// Commits per second of one-row update transactions on `db`'s writer, for about `run_for`.
pub async fn sqlite_commit_rate(db: &Database, run_for: Duration) -> sqlx::Result<f64> {
    sqlx::query("CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        .execute(&db.writer)
        .await?;
    sqlx::query("INSERT OR IGNORE INTO probe (id, n) VALUES (1, 0)")
        .execute(&db.writer)
        .await?;
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < run_for {
        let mut tx = db.writer.begin().await?;
        sqlx::query("UPDATE probe SET n = n + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        commits += 1;
    }
    Ok(commits as f64 / started.elapsed().as_secs_f64())
}

/// Entries per second through `broker` end to end: append `total` entries in pipelined batches of
/// `publish_batch`, read them back in a group `read_batch` at a time, ack each read.
pub async fn broker_round_trip_rate(
    broker: &Arc<dyn Broker>,
    total: usize,
    publish_batch: usize,
    read_batch: usize,
    payload: &str,
) -> Result<f64, BrokerError> {
    let stream = format!(
        "{}:probe:{}",
        topology::PREFIX,
        stockmesh_core::EventId::new()
    );
    let group = "probe";
    broker.ensure_group(&stream, group).await?;
    let started = Instant::now();
    let producer = {
        let broker = broker.clone();
        let stream = stream.clone();
        let payload = payload.to_owned();
        tokio::spawn(async move {
            let entry = Outgoing {
                stream: &stream,
                event_type: "PROBE",
                data: &payload,
            };
            let batch = vec![entry; publish_batch.max(1)];
            let mut sent = 0;
            while sent < total {
                let n = batch.len().min(total - sent);
                broker.publish(&batch[..n], u64::MAX / 2).await?;
                sent += n;
            }
            Ok::<(), BrokerError>(())
        })
    };
    let mut received = 0;
    while received < total {
        let entries = broker
            .read_new(
                group,
                "probe",
                std::slice::from_ref(&stream),
                read_batch,
                Duration::from_millis(250),
            )
            .await?;
        let ids: Vec<String> = entries.into_iter().map(|e| e.id).collect();
        received += ids.len();
        broker.ack(group, &stream, &ids).await?;
    }
    producer
        .await
        .map_err(|e| BrokerError::Protocol(e.to_string()))??;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
