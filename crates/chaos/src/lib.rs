//! # stockmesh-chaos
//!
//! `stockmesh chaos`: the fault suite. It starts a cluster of separate processes (a private
//! `redis-server` with `appendfsync always`, Central and N stores, each on its own SQLite file),
//! runs a randomized workload generated from a printed seed while injecting faults (kill -9 of
//! Redis, of stores and of Central; disconnections; duplicated, late and undecodable entries),
//! then heals the cluster, inflicts the losses self-healing must repair (Redis wiped, a stream's
//! newest entries lost, Central's database restored from an older copy; convergence measured
//! after each), and checks the recorded history against the invariants of DESIGN.md §3.
//! It prints a summary and fails (non-zero exit) on any violation. The binary parses the flags
//! ([`ChaosArgs`]) and calls [`run`] with a launcher of its own nodes.
//!
//! `--scaled` runs the same suite on the scaled-out topology: a private three-master Redis
//! Cluster instead of the one Redis, and two Central replicas (`central-1`, `central-2`) sharing
//! one fresh PostgreSQL database (dropped at the end, also when the run fails). The workload
//! alternates its Central requests between the replicas; a Central crash kills one replica
//! (from the seed), and the broker crash kills one master (from the seed), restarted on its data;
//! "Central down" in the losses means both replicas down, and the older copy is a
//! `CREATE DATABASE … TEMPLATE` of the database.
//!
//! By default the cluster runs secured, as a deployment should: every node checks bearer tokens
//! and connects to Redis as its own ACL user, and every request of the suite carries a token of
//! the least role that suffices; that the cluster is guarded is proven before the workload and
//! again after the losses (`--no-auth` runs it open).
//!
//! ## Layout
//! - `access`: the run's key pair, its callers' tokens and the Redis users.
//! - `guard`: the proof that a secured cluster refuses the untokened and the wrong store.
//! - `schedule`: the operations and faults, generated from the seed.
//! - `cluster`: the cluster under test (Redis, Central, stores as processes) and how each fault
//!   is done to it and healed.
//! - `pg`: Central's PostgreSQL database in the scaled run: created, copied, restored, dropped.
//! - `workload`: runs the schedule against the cluster and records every request.
//! - `history`: the recorded requests and their answers.
//! - `heal`: the losses of a broker and of a database (Redis wiped, a stream's newest entries
//!   lost, Central restored from an older copy), one at a time after the workload, each followed
//!   by a measurement of how long Central takes to equal the stores again.
//! - `observe`: what the cluster holds once quiet, and how long Central took to converge.
//! - `checker`: decides each invariant from the history and the observations (pure; tested with
//!   fabricated histories).

mod access;
mod checker;
mod cluster;
mod guard;
mod heal;
mod history;
mod observe;
mod pg;
mod schedule;
mod workload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use stockmesh_process::Launcher;

use self::cluster::{ChaosCluster, POISON};
use self::history::{Call, Outcome};
use self::pg::PgDatabase;
use self::schedule::{Fault, Schedule};
use stockmesh_process::parse_duration;

/// Central must equal every store within this long after the cluster is quiet.
const CONVERGENCE_LIMIT: Duration = Duration::from_secs(2);

/// Flags of `stockmesh chaos`.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// The seed of the workload and fault schedule (random when absent; always printed).
    #[arg(long)]
    pub seed: Option<u64>,

    /// How long the workload runs (faults stop 5 s before the end).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

    /// How many stores.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub stores: u16,

    /// Operations started per second.
    #[arg(long, default_value_t = 40)]
    pub rate: u32,

    /// Requests in flight at most.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,

    /// Run the cluster open: no bearer tokens, and Redis without ACL users (by default every
    /// node checks tokens and uses its own Redis user).
    #[arg(long)]
    pub no_auth: bool,

    /// Run on the scaled-out topology: a private three-master Redis Cluster (each master with
    /// `appendfsync always`, ACL users on every master when secured) and two Central replicas
    /// (`central-1`, `central-2`) on one fresh PostgreSQL database, dropped at the end. The
    /// broker crash kills one master and the Central crash one replica (both chosen from the
    /// seed); the losses are the same (FLUSHALL on every master; the older copy of Central's
    /// database taken with `CREATE DATABASE … TEMPLATE` while both replicas are stopped).
    #[arg(long)]
    pub scaled: bool,

    /// With `--scaled`: the admin URL of the PostgreSQL server on which Central's database is
    /// created (a role allowed to create databases).
    #[arg(
        long,
        env = "STOCKMESH_TEST_PG",
        hide_env_values = true,
        default_value = pg::DEFAULT_ADMIN_URL
    )]
    pub pg_admin: String,
}

/// Runs the suite with nodes started by `launcher`; an error means a violation or a cluster that
/// could not run.
pub async fn run(args: ChaosArgs, launcher: Launcher) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let stores = usize::from(args.stores);
    println!(
        "chaos: seed {seed} (rerun with --seed {seed}{}), {:?}, {stores} stores, {} ops/s, {}",
        if args.scaled { " --scaled" } else { "" },
        args.duration,
        args.rate,
        if args.no_auth {
            "open (--no-auth)"
        } else {
            "secured (bearer tokens, Redis ACL users)"
        }
    );
    if !args.scaled {
        return run_on(&args, seed, launcher, None).await;
    }
    let database = PgDatabase::create(&args.pg_admin).await?;
    let result = run_on(&args, seed, launcher, Some(database.clone())).await;
    // Every node is stopped by now (or killed with the cluster on an error): drop the database
    // and its copy whatever the outcome.
    if let Err(error) = database.drop_all().await {
        eprintln!("chaos: cannot drop Central's database {database:?}: {error:#}");
    }
    result
}

/// The run on the cluster `database` decides (scaled when given).
async fn run_on(
    args: &ChaosArgs,
    seed: u64,
    launcher: Launcher,
    database: Option<PgDatabase>,
) -> anyhow::Result<()> {
    let stores = usize::from(args.stores);
    let cluster = Arc::new(ChaosCluster::start(&launcher, stores, !args.no_auth, database).await?);
    let topology = cluster.describe().await;
    println!("chaos: topology: {topology}");
    let schedule = Arc::new(Schedule::generate(
        seed,
        args.duration,
        stores,
        args.rate,
        cluster.shape(),
    ));
    if !args.no_auth {
        for line in guard::check(&cluster).await? {
            println!("  guarded at start: {line}");
        }
    }
    let started = Instant::now();
    let mut log = workload::run(cluster.clone(), schedule.clone(), args.concurrency).await;
    let ran_for = started.elapsed();
    // Once traffic has stopped, old and repeated events can no longer be hidden by newer ones:
    // deliver every store's oldest events late, and its latest entries again.
    for store in 1..=stores {
        for fault in [Fault::LateEvents { store }, Fault::Duplicates { store }] {
            match cluster.inject(&fault).await {
                Ok(()) => *log.faults.entry(fault.name()).or_insert(0) += 1,
                Err(error) => log.fault_errors.push(format!("{fault:?}: {error:#}")),
            }
        }
    }

    cluster.heal().await?;
    let convergence = observe::converge(&cluster, Duration::from_secs(30)).await?;
    let healing = heal::run(&cluster, seed, started).await?;
    log.history.extend(healing.history);
    let mut observed = observe::collect(&cluster, &log.history, convergence).await?;
    observed.healed = healing
        .healed
        .into_iter()
        .map(|h| (h.name, h.took))
        .collect();
    // A wipe deletes dead letters too: keep those seen before it.
    for entry in healing.dead_letters {
        if !observed.dead_letters.contains(&entry) {
            observed.dead_letters.push(entry);
        }
    }
    // The broker was killed, restarted and wiped: its users and the nodes' keys must remain.
    let guarded = if args.no_auth {
        Ok(Vec::new())
    } else {
        guard::check(&cluster).await
    };
    cluster.stop().await;
    let verdicts = checker::check(&log.history, &observed, POISON, CONVERGENCE_LIMIT);

    print_summary(&log, &observed, ran_for, &verdicts, &topology);
    if !log.fault_errors.is_empty() {
        println!("faults that could not be injected:");
        for error in &log.fault_errors {
            println!("  {error}");
        }
    }
    match &guarded {
        Ok(lines) => {
            for line in lines {
                println!("  guarded after the losses: {line}");
            }
        }
        Err(error) => println!("  NOT guarded after the losses: {error:#}"),
    }
    anyhow::ensure!(
        guarded.is_ok(),
        "the cluster was not guarded after the losses"
    );
    anyhow::ensure!(
        verdicts.all_passed(),
        "invariants violated (seed {seed}; rerun with --seed {seed})"
    );
    anyhow::ensure!(
        log.fault_errors.is_empty(),
        "some faults could not be injected"
    );
    println!("chaos: all invariants hold (seed {seed})");
    Ok(())
}

fn print_summary(
    log: &workload::RunLog,
    observed: &observe::Observed,
    ran_for: Duration,
    verdicts: &checker::Verdicts,
    topology: &str,
) {
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for r in &log.history {
        *calls.entry(format!("{:?}", r.call)).or_default() += 1;
        let answer = match &r.outcome {
            Outcome::Answered(status) => status.to_string(),
            Outcome::Lost(_) => "no answer".into(),
        };
        *answers.entry(answer).or_default() += 1;
    }
    let remote_pending = log
        .history
        .iter()
        .filter(|r| r.call == Call::Remote && r.status() == Some(202))
        .count();
    println!(
        "\nchaos summary ({:.1} s of workload)",
        ran_for.as_secs_f64()
    );
    println!("  topology: {topology}");
    println!("  operations: {} requests {calls:?}", log.history.len());
    println!("  answers: {answers:?} ({remote_pending} remote purchases answered 202)");
    println!("  faults: {:?}", log.faults);
    match &observed.convergence {
        Ok(took) => println!("  convergence after quiet: {} ms", took.as_millis()),
        Err(diff) => println!("  convergence after quiet: NEVER ({diff})"),
    }
    for (name, took) in &observed.healed {
        match took {
            Ok(took) => println!("  convergence after {name}: {} ms", took.as_millis()),
            Err(diff) => println!("  convergence after {name}: NEVER ({diff})"),
        }
    }
    println!("  invariants:");
    for verdict in &verdicts.0 {
        let mark = if verdict.passed() { "PASS" } else { "FAIL" };
        println!("    {mark} {}", verdict.name);
        for violation in verdict.violations.iter().take(20) {
            println!("         - {violation}");
        }
        if verdict.violations.len() > 20 {
            println!("         … and {} more", verdict.violations.len() - 20);
        }
    }
}
