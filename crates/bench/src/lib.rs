//! # stockmesh-bench
//!
//! `stockmesh bench`: the performance figures of stockmesh, each beside its goal and, where it
//! has one, beside the raw limit of the same machine measured in the same run.
//!
//! It starts a private `redis-server`, runs Central and stores in this process (and, for memory
//! and start-up figures, as separate processes of the binary), drives them, and prints a table
//! (and writes it as JSON with `--json`). Latencies come from HDR histograms: propagation from the
//! commit timestamp in each event to Central's apply, purchases at the client. The binary parses
//! the flags ([`BenchArgs`]) and calls [`run`] with a launcher of its own nodes.
//!
//! ## Layout
//! - `cluster`: the run's environment: the private Redis, the files, Central-and-store pairs.
//! - `scenarios`: each measurement, in the order of the table.
//! - `on_cluster`: after `scenarios`, the propagation, purchase and throughput figures again on a private
//!   three-master Redis Cluster.
//! - `load`: open-loop and closed-loop load generation into HDR histograms.
//! - `capture`: a `metrics` recorder that keeps Central's propagation latencies.
//! - `processes`: figures of a whole process (resident memory, start to ready).
//! - `catalogue`: big catalogues (opt-in: `--only catalogue`): paging, start-up and memory of
//!   nodes holding millions of items.
//! - `report`: the table of figures beside their goals, printed and as JSON.

mod capture;
mod catalogue;
mod cluster;
mod load;
mod on_cluster;
mod on_postgres;
mod processes;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use stockmesh_process::Launcher;

use stockmesh_process::parse_duration;

pub use report::{Report, Runs};

/// Scenarios that run only when `--only` names them.
const OPT_IN: &[&str] = &["catalogue"];

/// Flags of `stockmesh bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// A tiny, fast configuration (seconds) that exercises every figure; no goals are judged on it.
    #[arg(long)]
    pub smoke: bool,

    /// How long each timed scenario runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Changes made while a store is disconnected, then drained on reconnect.
    #[arg(long, default_value_t = 100_000)]
    pub backlog: u64,

    /// Items Central holds when its memory is measured.
    #[arg(long, default_value_t = 1_000_000)]
    pub central_items: u64,

    /// Redis `appendfsync` for the private server: `always` (the durable setting) or `everysec`.
    #[arg(long, default_value = "always")]
    pub redis_fsync: String,

    /// Items the store holds in the catalogue scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub catalogue_items: u64,

    /// Items Central's view holds (across 100 stores) in the catalogue scenario.
    #[arg(long, default_value_t = 10_000_000)]
    pub catalogue_view_items: u64,

    /// Run only these scenarios (comma-separated): raw, propagation, purchase, reservation,
    /// transfer, backlog, local, memory, auth, cluster (propagation, purchase and events/s on a
    /// private three-master Redis Cluster), postgres (the same with Central on PostgreSQL, one
    /// replica and two), catalogue. All but catalogue (minutes: it fills databases of millions
    /// of items) by default.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,

    /// The PostgreSQL server for the `postgres` rows: an admin URL whose role may create
    /// databases (a fresh one per measurement, dropped after it).
    #[arg(
        long,
        env = "STOCKMESH_BENCH_PG",
        hide_env_values = true,
        default_value = stockmesh_bus::pg_admin::DEFAULT_ADMIN_URL
    )]
    pub pg_admin: String,

    /// Write the table as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Run everything this many times and report each figure's median and spread (the JSON
    /// keeps every run).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub runs: u16,
}

impl BenchArgs {
    /// Whether scenario `name` is to run.
    pub fn runs(&self, name: &str) -> bool {
        (self.only.is_empty() && !OPT_IN.contains(&name)) || self.only.iter().any(|o| o == name)
    }

    fn sized(mut self) -> Self {
        if self.smoke {
            self.duration = Duration::from_secs(1);
            self.backlog = 500;
            self.central_items = 1_000;
            self.catalogue_items = 2_000;
            self.catalogue_view_items = 10_000;
        }
        self
    }
}

/// Runs every scenario (nodes in separate processes started by `launcher`) and reports.
pub async fn run(args: BenchArgs, launcher: Launcher) -> anyhow::Result<()> {
    let args = args.sized();
    let capture = capture::Capture::install()?;
    let mut reports = Vec::new();
    for run in 1..=args.runs {
        if args.runs > 1 {
            eprintln!("bench: run {run} of {}", args.runs);
        }
        let mut report = Report::new();
        let env = cluster::BenchEnv::start(&args, launcher.clone()).await?;
        scenarios::run_all(&args, &env, &capture, &mut report).await?;
        if args.runs("cluster") {
            on_cluster::run(&args, &env, &capture, &mut report).await?;
        }
        if args.runs("postgres") {
            on_postgres::run(&args, &env, &capture, &mut report).await?;
        }
        drop(env);
        if args.runs > 1 {
            println!("{}", report.table());
        }
        reports.push(report);
    }
    let runs = Runs::summarise(reports);
    let table = if args.runs > 1 {
        runs.table()
    } else {
        runs.runs.iter().map(Report::table).collect()
    };
    println!("{table}");
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&runs)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if args.smoke {
        eprintln!("smoke run: sizes are tiny, goals are not judged");
    }
    Ok(())
}
