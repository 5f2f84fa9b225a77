//! The losses of issue 13, done one at a time once the workload has stopped, each followed by a
//! measurement of how long Central takes to equal every store again (DESIGN §9):
//!
//! - **Redis wiped** (`FLUSHALL`, as a restart without persistence): Central down, stores sell,
//!   their relays publish and stamp, the broker loses everything, Central comes back.
//! - **Newest entries lost** (as a failover to a replica that had not received them): Central
//!   down, stores sell, relays publish and stamp, the newest entries of every events stream are
//!   deleted, Central comes back.
//! - **Central restored from an older copy**: a copy of Central's database is taken, stores sell
//!   and Central applies the sales, then the copy replaces the database.
//!
//! The sales are recorded in the history like the workload's, so every invariant covers them.
//!
//! The losses start once every reservation of the workload has ended and reached Central: the
//! repair replays item states, not the end of a hold, so a hold ending inside a loss would stay
//! open at Central (a known gap, in the README's "What heals by itself").

use std::time::{Duration, Instant};

use stockmesh_bus::topology;

use super::cluster::{ChaosCluster, store_id};
use super::history::Record;
use super::observe;
use super::schedule::{OpKind, PRODUCTS};

/// One loss and how long Central took to equal the stores again after it.
#[derive(Debug, Clone)]
pub struct Healed {
    /// The loss.
    pub name: &'static str,
    /// From Central being back (the loss complete) to Central equal to every store, or what
    /// still differed at the limit.
    pub took: Result<Duration, String>,
}

/// What the phase did.
#[derive(Debug, Default)]
pub struct HealLog {
    /// The sales it made, for the history.
    pub history: Vec<Record>,
    /// Each loss with its time to converge.
    pub healed: Vec<Healed>,
    /// Dead letters seen before the broker was wiped (the wipe deletes them too).
    pub dead_letters: Vec<(String, String)>,
}

/// Entries deleted from the end of each events stream.
const TAIL: usize = 3;

/// How long a loss may take to heal before it counts as never.
const LIMIT: Duration = Duration::from_secs(30);

/// A few sales and counts on every store, deterministic from the seed.
fn sales(seed: u64, stores: usize, round: u64) -> Vec<(usize, String, OpKind)> {
    (0..4 * stores as u64)
        .map(|i| {
            let store = 1 + (i as usize % stores);
            let product = format!("p{}", (seed + round + i) % PRODUCTS as u64);
            let kind = if i % 3 == 2 {
                OpKind::Set(20 + i as i64)
            } else {
                OpKind::Local(1)
            };
            (store, product, kind)
        })
        .collect()
}

/// Runs the three losses; `started` is the run's start (for the records' times).
pub async fn run(cluster: &ChaosCluster, seed: u64, started: Instant) -> anyhow::Result<HealLog> {
    let stores = cluster.store_urls.len();
    let mut log = HealLog::default();
    let mut index = 10_000_000;
    let mut sell = async |log: &mut HealLog, round: u64| -> anyhow::Result<()> {
        let ops = sales(seed, stores, round);
        let count = ops.len();
        let records = super::workload::burst(cluster, seed, started, index, ops).await;
        index += count;
        log.history.extend(records);
        cluster.outboxes_drained(Duration::from_secs(30)).await
    };
    holds_ended(cluster, Duration::from_secs(30)).await?;

    // Redis wiped while Central is down.
    cluster.stop_central().await;
    sell(&mut log, 1).await?;
    log.dead_letters = observe::dead_letters(cluster).await?;
    cluster.flush_redis().await?;
    cluster.start_central().await?;
    log.healed
        .push(measure(cluster, "Redis wiped (FLUSHALL) while Central was down").await?);

    // The newest entries of every events stream lost after the relays were told they were in.
    cluster.stop_central().await;
    sell(&mut log, 2).await?;
    for store in 1..=stores {
        let stream = topology::events_stream(&store_id(store));
        cluster.drop_newest(&stream, TAIL).await?;
    }
    cluster.start_central().await?;
    log.healed
        .push(measure(cluster, "newest entries of every events stream lost").await?);

    // Central's database replaced by an older copy of itself.
    cluster.backup_central().await?;
    sell(&mut log, 3).await?;
    anyhow::ensure!(
        observe::converge(cluster, LIMIT).await?.is_ok(),
        "Central did not apply the sales before the restore"
    );
    cluster.restore_central().await?;
    log.healed
        .push(measure(cluster, "Central's database restored from an older copy").await?);
    Ok(log)
}

async fn measure(cluster: &ChaosCluster, name: &'static str) -> anyhow::Result<Healed> {
    let took = observe::converge(cluster, LIMIT).await?;
    eprintln!("  chaos: {name}: {took:?}");
    Ok(Healed { name, took })
}

/// Waits until no store holds reserved units and every outbox is drained: each reservation's end
/// has been published to Central.
async fn holds_ended(cluster: &ChaosCluster, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let mut reserved = 0;
        for url in &cluster.store_urls {
            for item in observe::pages(cluster, &format!("{url}/inventory")).await? {
                reserved += item["reserved"].as_i64().unwrap_or(0);
            }
        }
        if reserved == 0 {
            return cluster.outboxes_drained(limit).await;
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "stores still hold {reserved} reserved units after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
