//! The outbox relay: publishes committed outbox rows to the broker, in order, and marks them
//! published only after the broker accepted them.
//!
//! It wakes at once when a transaction commits ([`OutboxSignal`]), polls slowly as a fallback,
//! backs off with jitter while the broker is unreachable and resumes by itself, pauses while
//! the node is disconnected and drains at once on reconnect, and prunes old published rows.

use std::sync::Arc;
use std::time::Duration;

use stockmesh_core::now;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::broker::{Broker, BrokerError, Outgoing};
use crate::{Connectivity, Database, Inbox, Outbox, OutboxSignal};

/// Tuning of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows published per pipelined round trip.
    pub batch_size: u32,
    /// How often to look for rows when no commit signal arrives.
    pub poll_interval: Duration,
    /// How long published rows are kept (for audits) before pruning.
    pub retention: Duration,
    /// Approximate cap of each stream (`XADD … MAXLEN ~`). It must exceed what a consumer group
    /// can fall behind by (events produced during the longest consumer outage), or unread
    /// entries would be trimmed; see the README.
    pub max_stream_len: u64,
    /// First retry delay while the broker is unreachable.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 512,
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(3600),
            max_stream_len: 1_000_000,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// Why the relay could not read its outbox or stamp what it published; the rows stay and are
/// relayed (or stamped) again.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading or stamping the outbox failed.
    #[error("outbox database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The group commit holding the stamps failed or stopped.
    #[error("outbox stamps not written: {0}")]
    Write(#[from] crate::writer::WriteError),
}

/// What one pass of the relay did.
#[derive(Debug)]
pub enum RelayOutcome {
    /// Published this many rows.
    Published(usize),
    /// Nothing waited.
    Empty,
    /// The node is disconnected; nothing was sent.
    Disconnected,
    /// The broker failed; the rows stay unpublished and will be sent again.
    BrokerFailed(BrokerError),
}

/// How long a consumer remembers an applied event id. An event redelivered later than this is
/// still harmless: Central applies item states by version and resolves only pending purchases,
/// and a store decides each request id once (its `decisions` table is kept).
pub const INBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often published rows are stamped `published_at`. Stamping is off the critical path: until
/// it happens the relay knows (in memory) what it has published; after a crash it republishes
/// those rows, which consumers deduplicate. Batching the stamps keeps them from competing, one
/// fsync'd transaction per batch, with the node's own commits on its single writer; and the
/// relay does not wait for a stamp to be durable before it publishes the next rows (a stamp
/// that fails is merged back and written with the next one).
const MARK_EVERY: Duration = Duration::from_millis(50);

/// Outbox rows `(first seq, last seq)`, both included.
type SeqRange = (i64, i64);

/// A stamp being written in the background.
type Stamping = JoinHandle<Result<(), RelayError>>;

/// The relay of one node's outbox.
#[derive(Debug)]
pub struct Relay {
    node: String,
    db: Database,
    broker: Arc<dyn Broker>,
    signal: OutboxSignal,
    link: Connectivity,
    config: RelayConfig,
    /// The last `seq` the broker accepted.
    published_through: i64,
    /// Published rows not yet stamped: `(first seq, last seq)`.
    unmarked: Option<SeqRange>,
    /// The stamp being written in the background, and the rows it covers.
    marking: Option<(Stamping, SeqRange)>,
    last_mark: tokio::time::Instant,
}

impl Relay {
    /// A relay publishing `db`'s outbox to `broker`, for `node` (the metrics label).
    pub fn new(
        node: impl Into<String>,
        db: Database,
        broker: Arc<dyn Broker>,
        signal: OutboxSignal,
        link: Connectivity,
        config: RelayConfig,
    ) -> Self {
        Self {
            node: node.into(),
            db,
            broker,
            signal,
            link,
            config,
            published_through: 0,
            unmarked: None,
            marking: None,
            last_mark: tokio::time::Instant::now(),
        }
    }

    /// Stamps every published row not stamped yet, in the next group commit (sharing its fsync
    /// with the node's own writes instead of adding one), and waits until that is durable.
    pub async fn flush_marks(&mut self) -> Result<(), RelayError> {
        self.finish_marking().await;
        if let Some(range) = self.unmarked.take()
            && let Err(error) = self.stamping(range).await
        {
            self.merge_unmarked(range);
            return Err(error);
        }
        self.last_mark = tokio::time::Instant::now();
        Ok(())
    }

    /// Starts stamping the published rows in the background if the last stamp is older than
    /// [`MARK_EVERY`] and none is still being written.
    async fn flush_marks_if_due(&mut self) {
        if self.mark_due_in() > Duration::ZERO {
            return;
        }
        self.finish_marking().await;
        if let Some(range) = self.unmarked.take() {
            self.marking = Some((tokio::spawn(self.stamping(range)), range));
        }
        self.last_mark = tokio::time::Instant::now();
    }

    /// Whether a background stamp is still being written.
    fn stamp_in_progress(&self) -> bool {
        self.marking
            .as_ref()
            .is_some_and(|(writing, _)| !writing.is_finished())
    }

    /// Waits for the background stamp, if any.
    async fn finish_marking(&mut self) {
        let Some((writing, range)) = self.marking.take() else {
            return;
        };
        match writing.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "outbox relay: stamping published rows failed; will retry");
                self.merge_unmarked(range);
            }
            Err(error) => {
                tracing::warn!(%error, "outbox relay: stamping task failed; will retry");
                self.merge_unmarked(range);
            }
        }
    }

    /// Adds `range` (rows published, not stamped) back to the rows to stamp.
    fn merge_unmarked(&mut self, (first, last): SeqRange) {
        self.unmarked = Some(match self.unmarked {
            Some((f, l)) => (f.min(first), l.max(last)),
            None => (first, last),
        });
    }

    /// The write stamping rows `first..=last` as published now, to run on its own.
    fn stamping(
        &self,
        (first, last): SeqRange,
    ) -> impl std::future::Future<Output = Result<(), RelayError>> + Send + 'static {
        let at = now().timestamp_millis();
        let origin = self.db.origin().map(str::to_owned);
        let db = self.db.clone();
        async move {
            db.write(move |conn| {
                Box::pin(async move {
                    Outbox::mark_published(conn, first, last, at, origin.as_deref())
                        .await
                        .map_err(RelayError::Database)
                })
            })
            .await?;
            Ok(())
        }
    }

    /// How long an idle relay may wait before its unstamped rows are due.
    fn mark_due_in(&self) -> Duration {
        match self.unmarked {
            // A stamp still being written: look again a period later rather than spin.
            Some(_) if self.stamp_in_progress() => MARK_EVERY,
            Some(_) => MARK_EVERY.saturating_sub(self.last_mark.elapsed()),
            None => Duration::MAX,
        }
    }

    /// Publishes the next batch, if any; stamps published rows when due.
    pub async fn try_once(&mut self) -> Result<RelayOutcome, RelayError> {
        if !self.link.is_connected() {
            self.flush_marks().await?;
            return Ok(RelayOutcome::Disconnected);
        }
        let rows = Outbox::next_batch(
            &self.db.reader,
            self.published_through,
            self.config.batch_size,
            self.db.origin(),
        )
        .await?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            self.flush_marks_if_due().await;
            return Ok(RelayOutcome::Empty);
        };
        let entries: Vec<Outgoing<'_>> = rows
            .iter()
            .map(|row| Outgoing {
                stream: &row.stream,
                event_type: &row.event_type,
                data: &row.data,
            })
            .collect();
        let span = tracing::debug_span!("relay_batch", rows = rows.len());
        let published = self
            .broker
            .publish(&entries, self.config.max_stream_len)
            .instrument(span)
            .await;
        if let Err(error) = published {
            return Ok(RelayOutcome::BrokerFailed(error));
        }
        self.published_through = last.seq;
        self.unmarked = Some((self.unmarked.map_or(first.seq, |(f, _)| f), last.seq));
        for row in &rows {
            metrics::counter!("stockmesh_events_published_total", "node" => self.node.clone(), "type" => row.event_type.clone())
                .increment(1);
        }
        self.flush_marks_if_due().await;
        Ok(RelayOutcome::Published(rows.len()))
    }

    /// Relays until `cancel` fires, then stamps what it has published.
    pub async fn run(mut self, cancel: CancellationToken) {
        self.relay_until(&cancel).await;
        if let Err(error) = self.flush_marks().await {
            tracing::warn!(%error, "outbox relay: cannot stamp published rows at shutdown");
        }
    }

    async fn relay_until(&mut self, cancel: &CancellationToken) {
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        let mut last_prune = tokio::time::Instant::now();
        let mut failing = false;
        loop {
            let outcome = tokio::select! {
                () = cancel.cancelled() => return,
                outcome = self.try_once() => outcome,
            };
            let pause = match outcome {
                Ok(RelayOutcome::Published(rows)) => {
                    if failing {
                        tracing::info!("outbox relay: broker reachable again");
                        failing = false;
                    }
                    backoff.reset();
                    // A full batch may have more behind it. A short one drained the outbox as
                    // its read saw it: a row committed since then has signalled (the signal
                    // keeps a permit), so wait for that instead of reading again at once.
                    if rows >= self.config.batch_size as usize {
                        continue;
                    }
                    self.wait_for_rows(cancel).await;
                    continue;
                }
                Ok(RelayOutcome::Empty) => {
                    if last_prune.elapsed() >= Duration::from_secs(60) {
                        last_prune = tokio::time::Instant::now();
                        self.prune().await;
                    }
                    self.wait_for_rows(cancel).await;
                    continue;
                }
                Ok(RelayOutcome::Disconnected) => {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = self.link.wait_connected() => {}
                    }
                    continue;
                }
                Ok(RelayOutcome::BrokerFailed(error)) => {
                    if !failing {
                        tracing::warn!(%error, "outbox relay: broker unavailable, retrying");
                        failing = true;
                    }
                    backoff.next_delay()
                }
                Err(error) => {
                    tracing::error!(%error, "outbox relay: database error");
                    backoff.next_delay()
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Waits for a commit's signal, the fallback poll, or the time to stamp published rows.
    async fn wait_for_rows(&self, cancel: &CancellationToken) {
        let wait = self.config.poll_interval.min(self.mark_due_in());
        tokio::select! {
            () = cancel.cancelled() => {}
            () = self.signal.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }

    /// Housekeeping of the node's database, run when the relay is idle (at most once a minute):
    /// published outbox rows past their retention, and inbox ids older than [`INBOX_RETENTION`].
    async fn prune(&self) {
        let retention = i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX);
        let now_ms = now().timestamp_millis();
        match Outbox::prune(&self.db.writer, now_ms.saturating_sub(retention)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "pruned published outbox rows"),
            Err(error) => tracing::warn!(%error, "cannot prune the outbox"),
        }
        let inbox_retention = i64::try_from(INBOX_RETENTION.as_millis()).unwrap_or(i64::MAX);
        match Inbox::prune(&self.db.writer, now_ms.saturating_sub(inbox_retention)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "pruned old inbox ids"),
            Err(error) => tracing::warn!(%error, "cannot prune the inbox"),
        }
    }
}
