//! The same figures with Central on PostgreSQL, in the same run as the SQLite ones
//! (`--only postgres`): propagation and remote purchase latencies and the sustained events/s
//! with one Central, then the purchase latency and events/s with two Central replicas sharing
//! the database and the consumer group (requests go to the first; either applies the replies,
//! and a reply applied by the other wakes the request through `LISTEN/NOTIFY`). The store stays
//! on SQLite and the broker is the run's single Redis, so the rows differ from the plain ones
//! only by Central's database. Each measurement gets a fresh database on `--pg-admin`'s server,
//! dropped after it.

use std::sync::Arc;

use stockmesh_bus::{DbConfig, pg_admin};

use super::BenchArgs;
use super::capture::Capture;
use super::cluster::{BenchEnv, Pair};
use super::report::Report;
use super::scenarios::{
    On, drain_backlog, measure_propagation, measure_remote_purchases, report_events_per_second,
};

/// Measures on PostgreSQL with one replica, then with two.
pub async fn run(
    args: &BenchArgs,
    env: &BenchEnv,
    capture: &Arc<Capture>,
    report: &mut Report,
) -> anyhow::Result<()> {
    eprintln!(
        "bench: Central on PostgreSQL at {}",
        stockmesh_bus::redacted(&args.pg_admin)
    );
    for (on, replicas) in [(On::POSTGRES, 1), (On::REPLICAS, 2)] {
        if replicas == 1 {
            let (pair, db) = fresh_pair(args, env, "pg-prop", 1).await?;
            measure_propagation(args, &pair, capture, report, on).await?;
            stop(pair, db).await;
        }
        let (pair, db) = fresh_pair(args, env, &format!("pg{replicas}-buy"), replicas).await?;
        measure_remote_purchases(args, &pair, capture, report, on).await?;
        stop(pair, db).await;

        let (pair, db) = fresh_pair(args, env, &format!("pg{replicas}-backlog"), replicas).await?;
        let drained = drain_backlog(args.backlog, &pair, capture).await?;
        report_events_per_second(report, on, args.backlog, &drained);
        stop(pair, db).await;
    }
    Ok(())
}

/// Central (`replicas` replicas) on a fresh database and store `store-{tag}`.
async fn fresh_pair(
    args: &BenchArgs,
    env: &BenchEnv,
    tag: &str,
    replicas: usize,
) -> anyhow::Result<(Pair, Scratch)> {
    let db = Scratch::create(&args.pg_admin).await?;
    let pair = env
        .pair_with(env.broker()?, tag, DbConfig::new(&db.url), replicas)
        .await?;
    Ok((pair, db))
}

/// Stops the nodes, then drops their database.
async fn stop(pair: Pair, db: Scratch) {
    pair.shutdown().await;
    db.drop().await;
}

/// A database of its own on the PostgreSQL server, for one measurement.
struct Scratch {
    admin: String,
    name: String,
    url: String,
}

impl Scratch {
    /// Creates `stockmesh_bench_<random>`; fails naming the server when none answers.
    async fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("stockmesh_bench_{:016x}", rand::random::<u64>());
        pg_admin::create_database(admin, &name, "template0")
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "the postgres rows need a PostgreSQL server at {} ({error}): start one, point \
                     --pg-admin elsewhere, or leave postgres out of --only",
                    pg_admin::host_port(admin)
                )
            })?;
        Ok(Self {
            admin: admin.to_owned(),
            url: pg_admin::database_url(admin, &name),
            name,
        })
    }

    /// Drops the database (closing what is still connected to it); errors are only printed.
    async fn drop(self) {
        if let Err(error) = pg_admin::drop_database(&self.admin, &self.name).await {
            eprintln!("bench: cannot drop database {}: {error}", self.name);
        }
    }
}
