//! Consumers: read a consumer group's entries, apply them through a [`Handler`], ack only after
//! the effect committed.
//!
//! - On start (and after any failure, reconnection, or every `reclaim_every`) a consumer first
//!   claims entries idle too long in a dead consumer's hands (`XAUTOCLAIM`), then re-reads its
//!   own pending entries, then reads new ones.
//! - New entries are read with one blocking read per broker shard ([`Broker::shard_of`]: one
//!   for a single Redis, one per hash slot on a Redis Cluster), all in flight at once; each pass
//!   handles whichever returns first, so a quiet shard never delays a busy one. A read is never
//!   abandoned: a blocked read dropped on our side would stay blocked in Redis and could still
//!   hand entries to this consumer, to sit unread in its pending list.
//! - The consumer owns the transaction: a batch is one write of the database's group commit
//!   ([`Database::write`]: behind its own savepoint in a transaction that may hold other writes): it
//!   records every event id in the inbox, hands the handler only the *fresh* events (never seen
//!   before) with the open transaction; once that transaction is durable it runs the handler's
//!   after-commit work (wake-ups) and counts each event as applied or duplicate. Handlers never
//!   begin, commit or count.
//! - Acks go out in the background: the next read does not wait for the previous batch's
//!   `XACK` (one more fsync of the broker's log at `appendfsync always`). At most
//!   [`ACKS_IN_FLIGHT`] are outstanding; a recovery pass (and shutdown) first waits for all of
//!   them, so an entry whose ack is still on its way is never handled twice; an ack that fails
//!   leaves its entries pending, and the next recovery re-reads them (the inbox makes that
//!   harmless).
//! - If a batch fails, its events are retried one by one so that one bad event cannot hold back
//!   the others.
//! - An entry that cannot be decoded, that the handler rejects as permanently invalid, or that
//!   was delivered more than `max_deliveries` times goes to the dead-letter stream with the
//!   reason and is acked; processing goes on.
//! - An entry trimmed from the stream while pending (no data) is acked and logged.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AnyConnection;
use stockmesh_core::{Envelope, Event, EventId};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::broker::{Broker, BrokerError, Delivery, Missing};
use crate::writer::WriteError;
use crate::{Connectivity, Database, Inbox};

/// Acks a consumer may have outstanding before it waits for the oldest.
pub const ACKS_IN_FLIGHT: usize = 16;

/// Why a handler could not apply events. The variant decides what the consumer does.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying (a busy or unreachable database): the entries stay pending and are
    /// redelivered.
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
    /// The event can never be applied (it breaks an invariant): dead-letter it at once.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl HandlerError {
    /// Whether redelivering the event may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Transient(_))
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        HandlerError::Transient(error.into())
    }
}

impl From<WriteError> for HandlerError {
    fn from(error: WriteError) -> Self {
        HandlerError::Transient(error.into())
    }
}

/// Applies events inside the transaction the consumer opened. The consumer has already recorded
/// every event id in the inbox in that transaction, so a redelivered event never reaches
/// [`apply`](Self::apply) twice.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// What is left to do once the effect is durable (e.g. the requests to wake).
    type Committed: Send + 'static;

    /// Applies `fresh`, the events of one batch not applied before, in stream order, inside
    /// `tx`. It must neither commit nor roll back: the consumer does.
    async fn apply(
        &self,
        tx: &mut AnyConnection,
        fresh: &[&Envelope],
    ) -> Result<Self::Committed, HandlerError>;

    /// Runs after the transaction holding the effect committed, before the entries are acked.
    async fn after_commit(&self, committed: Self::Committed) {
        let _ = committed;
    }
}

/// Applies one batch exactly as a consumer does: inbox and [`Handler::apply`] on the fresh
/// events in one write of the database's group commit ([`Database::write`]), then, once it is
/// durable, [`Handler::after_commit`] and the `stockmesh_events_consumed_total` and
/// `stockmesh_propagation_seconds` metrics under `node`. Public so that a handler can be tested
/// on its own database without a broker.
pub async fn apply_batch<H: Handler + Clone>(
    db: &Database,
    handler: &H,
    node: &str,
    events: &[Envelope],
) -> Result<(), HandlerError> {
    apply_shared(db, Arc::new(handler.clone()), node, events.to_vec()).await
}

/// [`apply_batch`] with the handler shared: the write runs on the database's writer task.
async fn apply_shared<H: Handler>(
    db: &Database,
    handler: Arc<H>,
    node: &str,
    events: Vec<Envelope>,
) -> Result<(), HandlerError> {
    let writing = handler.clone();
    let (committed, events, applied) = db
        .write(move |conn| {
            Box::pin(async move {
                let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
                let now = stockmesh_core::now().timestamp_millis();
                let mut fresh_ids = Inbox::record_many(conn, &ids, now).await?;
                // Each event once: a batch may hold an entry and its re-delivered copy.
                let fresh: Vec<&Envelope> =
                    events.iter().filter(|e| fresh_ids.remove(&e.id)).collect();
                let applied: HashSet<EventId> = fresh.iter().map(|e| e.id).collect();
                let committed = if fresh.is_empty() {
                    None
                } else {
                    Some(writing.apply(conn, &fresh).await?)
                };
                Ok::<_, HandlerError>((committed, events, applied))
            })
        })
        .await?;
    if let Some(committed) = committed {
        handler.after_commit(committed).await;
    }
    count_consumed(node, &events, &applied);
    Ok(())
}

/// Counts each event of a committed batch as applied (with its propagation time) or duplicate.
fn count_consumed(node: &str, events: &[Envelope], applied: &HashSet<EventId>) {
    let applied_at = chrono::Utc::now();
    for envelope in events {
        let kind = envelope.event.type_name();
        let outcome = if applied.contains(&envelope.id) {
            let lag = (applied_at - envelope.occurred_at)
                .num_microseconds()
                .unwrap_or(0);
            metrics::histogram!("stockmesh_propagation_seconds", "node" => node.to_owned(), "type" => kind)
                .record(lag.max(0) as f64 / 1e6);
            "applied"
        } else {
            "duplicate"
        };
        metrics::counter!("stockmesh_events_consumed_total", "node" => node.to_owned(), "type" => kind, "outcome" => outcome)
            .increment(1);
    }
}

/// Tuning of a consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The consumer group.
    pub group: String,
    /// This consumer's name in the group; stable across restarts so that a restarted consumer
    /// finds its own pending entries.
    pub name: String,
    /// Entries read per stream per call.
    pub batch_size: usize,
    /// How long a read waits for new entries.
    pub block: Duration,
    /// Entries idle this long in another consumer's hands are taken over.
    pub claim_idle: Duration,
    /// How often to look for such entries.
    pub reclaim_every: Duration,
    /// Deliveries after which an entry is dead-lettered.
    pub max_deliveries: u64,
}

impl ConsumerConfig {
    /// Defaults for consumer `name` in `group`.
    pub fn new(group: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            name: name.into(),
            batch_size: 256,
            block: Duration::from_millis(250),
            claim_idle: Duration::from_secs(30),
            reclaim_every: Duration::from_secs(5),
            max_deliveries: 5,
        }
    }
}

/// The streams a consumer reads; more can be added while it runs (Central discovers stores).
#[derive(Debug, Clone, Default)]
pub struct StreamSet(Arc<StreamSetInner>);

#[derive(Debug, Default)]
struct StreamSetInner {
    streams: Mutex<BTreeSet<String>>,
    added: tokio::sync::Notify,
}

impl StreamSet {
    /// A set holding `streams`.
    pub fn new(streams: impl IntoIterator<Item = String>) -> Self {
        let set = Self::default();
        for stream in streams {
            set.add(stream);
        }
        set
    }

    /// Adds a stream; returns whether it is new.
    pub fn add(&self, stream: String) -> bool {
        let new = self
            .0
            .streams
            .lock()
            .map(|mut s| s.insert(stream))
            .unwrap_or(false);
        if new {
            self.0.added.notify_waiters();
        }
        new
    }

    /// The streams now.
    pub fn snapshot(&self) -> Vec<String> {
        self.0
            .streams
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until a stream is added, or `limit` passes.
    async fn wait_for_more(&self, limit: Duration) {
        let added = self.0.added.notified();
        tokio::pin!(added);
        added.as_mut().enable();
        if self.snapshot().is_empty() {
            let _ = tokio::time::timeout(limit, added).await;
        }
    }
}

/// What one pass of a consumer did.
#[derive(Debug)]
pub enum ConsumeOutcome {
    /// Entries were handled: `applied` acked after their effect, `dead` dead-lettered,
    /// `retry` left pending after a transient failure.
    Handled {
        /// Applied and acked.
        applied: usize,
        /// Sent to the dead-letter stream.
        dead: usize,
        /// Left pending for a later retry.
        retry: usize,
    },
    /// Nothing arrived within the block time.
    Idle,
    /// The node is disconnected; nothing was consumed.
    Disconnected,
    /// The broker failed.
    BrokerFailed(BrokerError),
}

/// `totals` (applied, dead, retry) plus what `outcome` handled.
fn tally(totals: (usize, usize, usize), outcome: &ConsumeOutcome) -> (usize, usize, usize) {
    match outcome {
        ConsumeOutcome::Handled {
            applied,
            dead,
            retry,
        } => (totals.0 + applied, totals.1 + dead, totals.2 + retry),
        _ => totals,
    }
}

/// One consumer in a group, over a set of streams.
pub struct Consumer<H: Handler> {
    broker: Arc<dyn Broker>,
    /// The database the handler's effects and the inbox live in.
    db: Database,
    handler: Arc<H>,
    streams: StreamSet,
    link: Option<Connectivity>,
    config: ConsumerConfig,
    /// Streams whose group is known to exist.
    ready: HashSet<String>,
    /// Whether the next pass must claim and re-read pending entries first.
    recover: bool,
    last_recovery: tokio::time::Instant,
    /// Reads of new entries in flight, at most one per shard.
    reads: JoinSet<Result<Vec<Delivery>, BrokerError>>,
    /// The shard each read in flight covers.
    reading: HashMap<tokio::task::Id, u16>,
    /// Acks sent and not yet answered.
    acking: JoinSet<Result<(), BrokerError>>,
}

impl<H: Handler> Consumer<H> {
    /// A consumer of `streams` applying entries through `handler` in transactions on `db`. With
    /// a `link`, it consumes only while the node is connected.
    pub fn new(
        broker: Arc<dyn Broker>,
        db: Database,
        handler: Arc<H>,
        streams: StreamSet,
        link: Option<Connectivity>,
        config: ConsumerConfig,
    ) -> Self {
        Self {
            broker,
            db,
            handler,
            streams,
            link,
            config,
            ready: HashSet::new(),
            recover: true,
            last_recovery: tokio::time::Instant::now(),
            reads: JoinSet::new(),
            reading: HashMap::new(),
            acking: JoinSet::new(),
        }
    }

    fn connected(&self) -> bool {
        self.link.as_ref().is_none_or(Connectivity::is_connected)
    }

    /// Ensures the group on every stream not yet known; new streams get a recovery pass.
    async fn prepare_streams(&mut self) -> Result<Vec<String>, BrokerError> {
        let streams = self.streams.snapshot();
        for stream in &streams {
            if !self.ready.contains(stream) {
                self.broker.ensure_group(stream, &self.config.group).await?;
                self.ready.insert(stream.clone());
                self.recover = true;
            }
        }
        Ok(streams)
    }

    /// One pass: recovery if due, else one read of new entries.
    pub async fn try_once(&mut self) -> ConsumeOutcome {
        if !self.connected() {
            self.recover = true;
            return ConsumeOutcome::Disconnected;
        }
        let result = self.pass().await;
        if let ConsumeOutcome::BrokerFailed(_) = &result {
            // Redis may have lost its data: recreate the groups and re-read pending entries.
            self.ready.clear();
            self.recover = true;
        }
        result
    }

    async fn pass(&mut self) -> ConsumeOutcome {
        self.reap_acks();
        let streams = match self.prepare_streams().await {
            Ok(streams) => streams,
            Err(e) => return ConsumeOutcome::BrokerFailed(e),
        };
        if streams.is_empty() {
            self.streams.wait_for_more(self.config.block).await;
            return ConsumeOutcome::Idle;
        }
        if self.recover || self.last_recovery.elapsed() >= self.config.reclaim_every {
            return match self.recover_pending(&streams).await {
                Ok(outcome) => outcome,
                Err(e) => ConsumeOutcome::BrokerFailed(e),
            };
        }
        self.start_reads(&streams);
        let read = self.next_read().await;
        match read {
            Ok(entries) if entries.is_empty() => ConsumeOutcome::Idle,
            // Disconnected while the read waited: leave the entries pending for later.
            Ok(_) if !self.connected() => {
                self.recover = true;
                ConsumeOutcome::Disconnected
            }
            Ok(entries) => match self.process(entries).await {
                Ok(outcome) => outcome,
                Err(e) => ConsumeOutcome::BrokerFailed(e),
            },
            Err(e) => ConsumeOutcome::BrokerFailed(e),
        }
    }

    /// Starts a read of new entries on every shard of `streams` that has none in flight.
    fn start_reads(&mut self, streams: &[String]) {
        let mut shards: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        for stream in streams {
            shards
                .entry(self.broker.shard_of(stream))
                .or_default()
                .push(stream.clone());
        }
        let busy: HashSet<u16> = self.reading.values().copied().collect();
        for (shard, streams) in shards {
            if busy.contains(&shard) {
                continue;
            }
            let broker = self.broker.clone();
            let (group, name) = (self.config.group.clone(), self.config.name.clone());
            let (count, block) = (self.config.batch_size, self.config.block);
            let task = self
                .reads
                .spawn(async move { broker.read_new(&group, &name, &streams, count, block).await });
            self.reading.insert(task.id(), shard);
        }
    }

    /// The next read to return (nothing if none is in flight).
    async fn next_read(&mut self) -> Result<Vec<Delivery>, BrokerError> {
        match self.reads.join_next_with_id().await {
            None => Ok(Vec::new()),
            Some(Ok((id, read))) => {
                self.reading.remove(&id);
                read
            }
            Some(Err(failed)) => {
                self.reading.remove(&failed.id());
                Err(BrokerError::Protocol(format!("read task failed: {failed}")))
            }
        }
    }

    /// Waits for every read in flight; handles what they delivered while connected (else it
    /// stays pending for the next recovery). Read failures are left to that recovery too.
    async fn finish_reads(&mut self) -> Result<(usize, usize, usize), BrokerError> {
        let (mut applied, mut dead, mut retry) = (0, 0, 0);
        while !self.reads.is_empty() {
            let Ok(entries) = self.next_read().await else {
                continue;
            };
            if entries.is_empty() || !self.connected() {
                continue;
            }
            let outcome = self.process(entries).await?;
            (applied, dead, retry) = tally((applied, dead, retry), &outcome);
        }
        Ok((applied, dead, retry))
    }

    /// Takes over idle entries of dead consumers, then handles this consumer's pending ones.
    /// Reads in flight finish first, so that nothing is handled by both.
    async fn recover_pending(&mut self, streams: &[String]) -> Result<ConsumeOutcome, BrokerError> {
        let (mut applied, mut dead, mut retry) = self.finish_reads().await?;
        self.settle().await?;
        self.recover = false;
        self.last_recovery = tokio::time::Instant::now();
        for stream in streams {
            let claimed = self
                .broker
                .claim_idle(
                    &self.config.group,
                    &self.config.name,
                    stream,
                    self.config.claim_idle,
                    self.config.batch_size,
                )
                .await?;
            if claimed > 0 {
                tracing::info!(stream, claimed, "claimed entries of an idle consumer");
            }
            let mut after = "0".to_owned();
            loop {
                let pending = self
                    .broker
                    .read_pending(
                        &self.config.group,
                        &self.config.name,
                        stream,
                        &after,
                        self.config.batch_size,
                    )
                    .await?;
                let Some(last) = pending.last() else { break };
                after = last.id.clone();
                let outcome = self.process(pending).await?;
                (applied, dead, retry) = tally((applied, dead, retry), &outcome);
            }
        }
        Ok(if applied + dead + retry == 0 {
            ConsumeOutcome::Idle
        } else {
            ConsumeOutcome::Handled {
                applied,
                dead,
                retry,
            }
        })
    }

    /// Applies `entries`: dead-letters the hopeless, acks the trimmed, handles the rest.
    async fn process(&mut self, entries: Vec<Delivery>) -> Result<ConsumeOutcome, BrokerError> {
        let group = self.config.group.clone();
        let (mut dead, mut retry) = (0, 0);
        let mut good: Vec<(Delivery, Envelope)> = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(data) = entry.data.as_deref() else {
                let reason = match entry.missing {
                    Some(Missing::NoDataField) => "entry has no data field".to_owned(),
                    Some(Missing::TooLarge { bytes, limit }) => {
                        format!("entry data of {bytes} bytes exceeds the limit of {limit} bytes")
                    }
                    Some(Missing::Trimmed) | None => {
                        tracing::warn!(stream = %entry.stream, id = %entry.id, "pending entry was trimmed from the stream; acking it");
                        self.broker
                            .ack(&group, &entry.stream, std::slice::from_ref(&entry.id))
                            .await?;
                        continue;
                    }
                };
                self.dead_letter(&entry, &reason).await?;
                dead += 1;
                continue;
            };
            if entry.deliveries > self.config.max_deliveries {
                let reason = format!("delivered {} times without success", entry.deliveries);
                self.dead_letter(&entry, &reason).await?;
                dead += 1;
                continue;
            }
            match Envelope::from_json(data) {
                // Trust the stream, not the payload: a store's stream only carries its own name.
                Ok(envelope)
                    if crate::topology::store_of(&entry.stream)
                        .is_some_and(|owner| owner != envelope.store_id) =>
                {
                    metrics::counter!("stockmesh_untrusted_total", "kind" => "store_mismatch")
                        .increment(1);
                    let reason = format!(
                        "envelope names store {} but came on another store's stream",
                        envelope.store_id
                    );
                    self.dead_letter(&entry, &reason).await?;
                    dead += 1;
                }
                Ok(envelope) => good.push((entry, envelope)),
                Err(error) => {
                    self.dead_letter(&entry, &format!("cannot decode: {error}"))
                        .await?;
                    dead += 1;
                }
            }
        }
        let applied = self.apply(&good, &mut dead, &mut retry).await?;
        Ok(ConsumeOutcome::Handled {
            applied,
            dead,
            retry,
        })
    }

    /// Applies decoded entries as one batch, or one by one if the batch fails.
    async fn apply(
        &mut self,
        good: &[(Delivery, Envelope)],
        dead: &mut usize,
        retry: &mut usize,
    ) -> Result<usize, BrokerError> {
        if good.is_empty() {
            return Ok(0);
        }
        let envelopes: Vec<Envelope> = good.iter().map(|(_, e)| e.clone()).collect();
        let started = std::time::Instant::now();
        let handled = self.apply_batch(&envelopes).await;
        metrics::histogram!("stockmesh_event_handling_seconds", "node" => self.config.name.clone())
            .record(started.elapsed().as_secs_f64());
        if handled.is_ok() {
            self.ack_later(good.iter().map(|(d, _)| d)).await;
            return Ok(good.len());
        }
        let mut applied = 0;
        for (entry, envelope) in good {
            match self.apply_batch(std::slice::from_ref(envelope)).await {
                Ok(()) => {
                    self.ack_later(std::iter::once(entry)).await;
                    applied += 1;
                }
                Err(HandlerError::Permanent(reason)) => {
                    self.dead_letter(entry, &reason).await?;
                    *dead += 1;
                }
                Err(HandlerError::Transient(error)) => {
                    tracing::warn!(id = %entry.id, error = %format!("{error:#}"), "event not applied; will retry");
                    self.recover = true;
                    *retry += 1;
                }
            }
        }
        Ok(applied)
    }

    async fn apply_batch(&self, events: &[Envelope]) -> Result<(), HandlerError> {
        apply_shared(
            &self.db,
            self.handler.clone(),
            &self.config.name,
            events.to_vec(),
        )
        .await
    }

    /// Sends the acks of `entries` (whose effect is durable) in the background; first waits for
    /// the oldest outstanding ack if [`ACKS_IN_FLIGHT`] are.
    async fn ack_later(&mut self, entries: impl Iterator<Item = &Delivery>) {
        while self.acking.len() >= ACKS_IN_FLIGHT {
            if let Some(acked) = self.acking.join_next().await {
                let _ = self.note_ack(acked);
            }
        }
        let mut by_stream: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in entries {
            by_stream
                .entry(entry.stream.clone())
                .or_default()
                .push(entry.id.clone());
        }
        let (broker, group) = (self.broker.clone(), self.config.group.clone());
        self.acking.spawn(async move {
            for (stream, ids) in by_stream {
                broker.ack(&group, &stream, &ids).await?;
            }
            Ok(())
        });
    }

    /// Takes note of the acks answered so far.
    fn reap_acks(&mut self) {
        while let Some(acked) = self.acking.try_join_next() {
            let _ = self.note_ack(acked);
        }
    }

    /// An ack that failed leaves its entries pending: the next pass recovers them.
    fn note_ack(
        &mut self,
        acked: Result<Result<(), BrokerError>, tokio::task::JoinError>,
    ) -> Option<BrokerError> {
        let error = match acked {
            Ok(Ok(())) => return None,
            Ok(Err(error)) => error,
            Err(failed) => BrokerError::Protocol(format!("ack task failed: {failed}")),
        };
        tracing::debug!(%error, "ack not answered; its entries stay pending");
        self.recover = true;
        Some(error)
    }

    /// Waits until every ack sent is answered; fails if any failed (its entries stay pending
    /// and the next recovery handles them). Acks go out in the background, so the broker's
    /// pending list reflects a pass only once this returns.
    pub async fn settle(&mut self) -> Result<(), BrokerError> {
        let mut first_error = None;
        while let Some(acked) = self.acking.join_next().await {
            if let Some(error) = self.note_ack(acked) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn dead_letter(&self, entry: &Delivery, reason: &str) -> Result<(), BrokerError> {
        tracing::warn!(stream = %entry.stream, id = %entry.id, reason, "dead-lettering entry");
        // The type of a poison entry is whatever its sender wrote: keep the label set bounded.
        let kind = entry
            .event_type
            .as_deref()
            .and_then(Event::known_type_name)
            .unwrap_or("unknown");
        metrics::counter!("stockmesh_events_consumed_total", "node" => self.config.name.clone(), "type" => kind, "outcome" => "dead_lettered")
            .increment(1);
        self.broker
            .dead_letter(&self.config.group, entry, reason)
            .await
    }

    /// Consumes until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let mut failing = false;
        loop {
            // A pass is never cut short: a blocked read abandoned on our side would stay blocked
            // in Redis and could still hand an entry to this consumer, to sit unread in its
            // pending list. A pass lasts at most the block time plus the handling.
            if cancel.is_cancelled() {
                break;
            }
            let outcome = self.try_once().await;
            let pause = match outcome {
                ConsumeOutcome::Handled { retry, .. } => {
                    if failing {
                        tracing::info!(group = %self.config.group, "consumer: broker reachable again");
                        failing = false;
                    }
                    if retry > 0 {
                        backoff.next_delay()
                    } else {
                        backoff.reset();
                        continue;
                    }
                }
                ConsumeOutcome::Idle => {
                    backoff.reset();
                    continue;
                }
                ConsumeOutcome::Disconnected => {
                    let link = self.link.clone().unwrap_or_default();
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = link.wait_connected() => {}
                    }
                    continue;
                }
                ConsumeOutcome::BrokerFailed(error) => {
                    if !failing {
                        tracing::warn!(%error, group = %self.config.group, "consumer: broker unavailable, retrying");
                        failing = true;
                    }
                    backoff.next_delay()
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        // Reads of other shards may still be in flight: let them return and handle them.
        if let Err(error) = self.finish_reads().await {
            tracing::debug!(%error, "consumer: entries left pending at shutdown");
        }
        if let Err(error) = self.settle().await {
            tracing::debug!(%error, "consumer: acks not answered at shutdown; entries stay pending");
        }
    }
}
