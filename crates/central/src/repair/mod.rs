//! Central's half of self-healing (DESIGN §9): anti-entropy against a broker that lost entries
//! it had acknowledged, or a database restored from an older backup.
//!
//! Every store advertises with its heartbeat a watermark (the number of changes it committed)
//! and, once quiet, a digest of its inventory (`stockmesh_core::summary`). Central keeps the same
//! watermark for what it applied (triggers on the view). Every interval the [`Repairer`] compares:
//!
//! - **behind**: Central's watermark stays below a figure the store advertised for longer than
//!   the grace period → ask the store to re-send the items it changed since shortly before the
//!   newest change Central holds (a *replay*: cheap, it covers lost recent entries and a database
//!   restored from a backup); if that brings no progress within the grace period, ask for every
//!   item (a *snapshot*, sent in pages). A Central restored from an older backup is behind, not
//!   new, so this rule covers it.
//! - **digest mismatch**: same watermark, but the item count or the digest differ once the store
//!   is quiet → snapshot.
//!
//! At most one repair per store is in flight; it ends when the watermark reaches its target, or
//! is given up after a grace period without progress. Versions keep it idempotent: the view
//! applies a state only over an older version, so a repair racing live traffic never regresses
//! an item.

mod repository;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stockmesh_bus::{Broker, Database, Outbox, OutboxSignal, topology};
use stockmesh_core::event::SnapshotRequest;
use stockmesh_core::summary::Digest;
use stockmesh_core::{Envelope, Event, StateSummary, StoreId, Timestamp};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Timing of anti-entropy.
#[derive(Debug, Clone, Copy)]
pub struct RepairConfig {
    /// How often to compare every store's advertisement with the view (default 5 s).
    pub interval: Duration,
    /// How long Central may stay behind a store before a repair starts, and how long a repair
    /// may go without progress before it is given up (default 30 s: one heartbeat interval).
    pub grace: Duration,
    /// A replay re-sends the items changed since this long before the newest change Central
    /// holds of the store (default 60 s), against clock steps and reordering at the store.
    pub replay_margin: Duration,
    /// A store-decided request still pending this long has its command sent again, and again
    /// every this long (default 5 s).
    pub resend: Duration,
}

impl Default for RepairConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            grace: Duration::from_secs(30),
            replay_margin: Duration::from_secs(60),
            resend: Duration::from_secs(5),
        }
    }
}

/// Why a repair started (the `cause` label of `stockmesh_repairs_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Central stayed behind the store's watermark past the grace period.
    Behind,
    /// Same watermark, different items once the store was quiet.
    DigestMismatch,
}

impl Cause {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Behind => "behind",
            Cause::DigestMismatch => "digest_mismatch",
        }
    }
}

/// What a repair asks the store for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The items changed since shortly before the newest change Central holds.
    Replay,
    /// Every item, in pages.
    Snapshot,
}

impl Kind {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Replay => "replay",
            Kind::Snapshot => "snapshot",
        }
    }
}

/// What to do about one store now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Wait,
    /// Same watermark and the store is quiet: compare digests.
    CompareDigest,
    /// Start a repair.
    Repair(Cause, Kind),
    /// The repair in flight reached its target.
    Repaired,
}

/// A repair in flight.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    kind: Kind,
    /// The store's watermark when it started.
    target: u64,
    /// Central's watermark at the last progress, and when.
    progress: (u64, Instant),
}

/// What Central remembers of one store between comparisons.
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// A figure of the store's Central has not reached yet, and since when.
    behind: Option<(u64, Instant)>,
    in_flight: Option<InFlight>,
    /// A replay brought no progress: the next repair of this episode is a snapshot.
    replay_failed: bool,
    /// Central's digest, at the watermark it was computed at.
    digest: Option<(u64, u64)>,
    /// When the last repair started (wall clock, to count what it corrected).
    last_started: Option<Timestamp>,
    /// The watermarks (Central's, the store's) at which a digest mismatch last asked for a
    /// snapshot: a mismatch a snapshot cannot mend (an item Central holds that the store does
    /// not) is reported once per change, not repaired in a loop.
    mismatch_at: Option<(u64, u64)>,
}

impl Track {
    /// Decides the next step from Central's figures (`ours`) and the store's (`theirs`).
    pub fn step(
        &mut self,
        ours: &StateSummary,
        theirs: &StateSummary,
        now: Instant,
        grace: Duration,
    ) -> Step {
        if let Some(mut repair) = self.in_flight {
            if ours.changes >= repair.target {
                self.in_flight = None;
                self.behind = None;
                return Step::Repaired;
            }
            if ours.changes > repair.progress.0 {
                repair.progress = (ours.changes, now);
                self.in_flight = Some(repair);
                return Step::Wait;
            }
            if now.duration_since(repair.progress.1) < grace {
                return Step::Wait;
            }
            // No progress for a whole grace period: the request or its pages were lost too, or a
            // replay cannot reach what is missing.
            self.in_flight = None;
            self.behind = None;
            if repair.kind == Kind::Replay {
                self.replay_failed = true;
            }
        }
        if ours.changes < theirs.changes {
            match self.behind {
                Some((target, since)) if ours.changes < target => {
                    if now.duration_since(since) >= grace {
                        let kind = if self.replay_failed {
                            Kind::Snapshot
                        } else {
                            Kind::Replay
                        };
                        return Step::Repair(Cause::Behind, kind);
                    }
                }
                _ => self.behind = Some((theirs.changes, now)),
            }
            return Step::Wait;
        }
        self.behind = None;
        if ours.changes == theirs.changes {
            self.replay_failed = false;
            if theirs.digest.is_some() {
                return Step::CompareDigest;
            }
        }
        Step::Wait
    }

    /// Notes that a repair of `kind` started toward the store's watermark `target`.
    fn started(&mut self, kind: Kind, target: u64, ours: u64, now: Instant) {
        self.behind = None;
        self.in_flight = Some(InFlight {
            kind,
            target,
            progress: (ours, now),
        });
        self.last_started = Some(stockmesh_core::now());
    }
}

/// Items per digest page.
const DIGEST_PAGE: i64 = 5_000;

/// Compares every store's advertisement with the view and repairs what differs.
#[derive(Debug)]
pub struct Repairer {
    db: Database,
    broker: Arc<dyn Broker>,
    signal: OutboxSignal,
    config: RepairConfig,
    tracks: HashMap<StoreId, Track>,
}

impl Repairer {
    /// A repairer over Central's database, sending its requests through the outbox.
    pub fn new(
        db: Database,
        broker: Arc<dyn Broker>,
        signal: OutboxSignal,
        config: RepairConfig,
    ) -> Self {
        Self {
            db,
            broker,
            signal,
            config,
            tracks: HashMap::new(),
        }
    }

    /// One comparison of every store; returns how many repairs it started.
    pub async fn try_once(&mut self) -> anyhow::Result<usize> {
        let mut started = 0;
        for (store, items, changes) in repository::summaries(&self.db.reader).await? {
            let Some(text) = self.broker.advertisement(&store).await? else {
                continue;
            };
            let theirs = match StateSummary::from_json(&text) {
                Ok(theirs) => theirs,
                Err(error) => {
                    tracing::debug!(%store, %error, "unreadable advertisement; ignored");
                    continue;
                }
            };
            let ours = StateSummary {
                changes,
                items,
                digest: None,
            };
            if self.compare(&store, &ours, &theirs).await? {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Compares one store; returns whether a repair started.
    async fn compare(
        &mut self,
        store: &StoreId,
        ours: &StateSummary,
        theirs: &StateSummary,
    ) -> anyhow::Result<bool> {
        let now = Instant::now();
        let track = self.tracks.entry(store.clone()).or_default();
        let step = track.step(ours, theirs, now, self.config.grace);
        let (cause, kind) = match step {
            Step::Wait => return Ok(false),
            Step::Repaired => {
                self.repaired(store).await?;
                return Ok(false);
            }
            Step::Repair(cause, kind) => (cause, kind),
            Step::CompareDigest => {
                let cached = track.digest.filter(|(at, _)| *at == ours.changes);
                let digest = match cached {
                    Some((_, digest)) => Some(digest),
                    None => self.digest(store, ours.changes).await?,
                };
                let track = self.tracks.entry(store.clone()).or_default();
                let Some(digest) = digest else {
                    return Ok(false);
                };
                track.digest = Some((ours.changes, digest));
                if theirs.digest == Some(digest) && theirs.items == ours.items {
                    return Ok(false);
                }
                if track.in_flight.is_some()
                    || track.mismatch_at == Some((ours.changes, theirs.changes))
                {
                    return Ok(false);
                }
                track.mismatch_at = Some((ours.changes, theirs.changes));
                metrics::counter!("stockmesh_digest_mismatches_total", "store" => store.to_string())
                    .increment(1);
                tracing::warn!(%store, ours = ?(ours.items, digest), theirs = ?(theirs.items, theirs.digest), "digest mismatch");
                (Cause::DigestMismatch, Kind::Snapshot)
            }
        };
        self.request(store, cause, kind).await?;
        let target = theirs.changes.max(ours.changes.saturating_add(1));
        self.tracks
            .entry(store.clone())
            .or_default()
            .started(kind, target, ours.changes, now);
        Ok(true)
    }

    /// Central's digest of `store`, if its watermark is still `changes`.
    async fn digest(&self, store: &StoreId, changes: u64) -> anyhow::Result<Option<u64>> {
        let mut tx = self.db.snapshot().await?;
        if repository::changes(&mut tx, store).await? != changes {
            return Ok(None);
        }
        let mut digest = Digest::default();
        let mut after = String::new();
        loop {
            let page = repository::versions_after(&mut tx, store, &after, DIGEST_PAGE).await?;
            for (product, version) in &page {
                digest.add(product, version.unsigned_abs());
            }
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) == DIGEST_PAGE;
            match page.into_iter().last() {
                Some((product, _)) if full => after = product,
                _ => break,
            }
        }
        Ok(Some(digest.value()))
    }

    /// Asks `store` for a replay or a snapshot, through the outbox.
    async fn request(&self, store: &StoreId, cause: Cause, kind: Kind) -> anyhow::Result<()> {
        let changed_after = match kind {
            Kind::Snapshot => None,
            Kind::Replay => repository::last_change(&self.db.reader, store)
                .await?
                .map(|at| at - self.config.replay_margin),
        };
        let request = Envelope::new(
            store.clone(),
            Event::SnapshotRequested(SnapshotRequest { changed_after }),
            None,
        );
        let mut tx = self.db.writer.begin().await?;
        Outbox::append(&mut tx, &topology::commands_stream(store), &request).await?;
        tx.commit().await?;
        self.signal.notify();
        metrics::counter!("stockmesh_repairs_total", "store" => store.to_string(), "cause" => cause.as_str(), "kind" => kind.as_str())
            .increment(1);
        tracing::warn!(%store, cause = cause.as_str(), kind = kind.as_str(), ?changed_after, "repair started");
        Ok(())
    }

    /// Records a finished repair.
    async fn repaired(&self, store: &StoreId) -> anyhow::Result<()> {
        let Some(started_at) = self.last_started(store) else {
            return Ok(());
        };
        let corrected = repository::updated_since(&self.db.reader, store, started_at).await?;
        metrics::counter!("stockmesh_repair_items_corrected_total", "store" => store.to_string())
            .increment(corrected);
        let now = stockmesh_core::now();
        metrics::gauge!("stockmesh_repair_last_completed_timestamp_seconds", "store" => store.to_string())
            .set(now.timestamp_millis() as f64 / 1000.0);
        tracing::info!(%store, corrected, "repair complete; Central caught up");
        Ok(())
    }

    fn last_started(&self, store: &StoreId) -> Option<Timestamp> {
        self.tracks.get(store).and_then(|t| t.last_started)
    }

    /// Compares every interval until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            if let Err(error) = self.try_once().await {
                tracing::debug!(error = %format!("{error:#}"), "anti-entropy pass failed; retrying");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The planner alone: when a repair starts, which kind, and that one runs at a time.

    use super::*;

    fn summary(changes: u64, items: u64, digest: Option<u64>) -> StateSummary {
        StateSummary {
            changes,
            items,
            digest,
        }
    }

    const GRACE: Duration = Duration::from_secs(30);

    #[test]
    fn behind_past_the_grace_period_replays_first_then_snapshots() {
        let mut track = Track::default();
        let t0 = Instant::now();
        let (ours, theirs) = (summary(10, 2, None), summary(14, 2, None));
        assert_eq!(track.step(&ours, &theirs, t0, GRACE), Step::Wait);
        assert_eq!(
            track.step(&ours, &theirs, t0 + GRACE / 2, GRACE),
            Step::Wait
        );
        let t1 = t0 + GRACE;
        assert_eq!(
            track.step(&ours, &theirs, t1, GRACE),
            Step::Repair(Cause::Behind, Kind::Replay)
        );
        track.started(Kind::Replay, 14, 10, t1);
        // In flight: no second repair, even while still behind.
        assert_eq!(
            track.step(&ours, &theirs, t1 + GRACE / 2, GRACE),
            Step::Wait
        );
        // No progress for a grace period: given up; the next repair of the episode is a snapshot.
        let t2 = t1 + GRACE;
        assert_eq!(track.step(&ours, &theirs, t2, GRACE), Step::Wait);
        assert_eq!(
            track.step(&ours, &theirs, t2 + GRACE, GRACE),
            Step::Repair(Cause::Behind, Kind::Snapshot)
        );
        track.started(Kind::Snapshot, 14, 10, t2 + GRACE);
        let caught_up = summary(14, 2, None);
        assert_eq!(
            track.step(&caught_up, &theirs, t2 + GRACE * 2, GRACE),
            Step::Repaired
        );
    }

    #[test]
    fn live_traffic_that_keeps_catching_up_never_starts_a_repair() {
        let mut track = Track::default();
        let t0 = Instant::now();
        for i in 0..10_u32 {
            let ours = summary(u64::from(i) * 10, 1, None);
            let theirs = summary(u64::from(i) * 10 + 3, 1, None);
            let now = t0 + GRACE / 2 * i;
            assert_eq!(track.step(&ours, &theirs, now, GRACE), Step::Wait, "at {i}");
        }
    }

    #[test]
    fn a_quiet_store_with_the_same_watermark_has_its_digest_compared() {
        let mut track = Track::default();
        let now = Instant::now();
        let ours = summary(7, 3, None);
        assert_eq!(
            track.step(&ours, &summary(7, 3, None), now, GRACE),
            Step::Wait
        );
        assert_eq!(
            track.step(&ours, &summary(7, 3, Some(42)), now, GRACE),
            Step::CompareDigest
        );
        // Central ahead of the store (a store restored from a backup): nothing to repair here.
        assert_eq!(
            track.step(&summary(9, 3, None), &summary(7, 3, Some(42)), now, GRACE),
            Step::Wait
        );
    }
}
