//! The same figures with Central on PostgreSQL, in the same run as the SQLite ones
//! (`--only postgres`): propagation and remote purchase latencies and the sustained events/s
//! with one Central, then the purchase latency and events/s with two Central replicas sharing
//! the database and the consumer group (requests go to the first; either applies the replies,
//! and a reply applied by the other wakes the request through `LISTEN/NOTIFY`). The store stays
//! on SQLite and the broker is the run's single Redis, so the rows differ from the plain ones
//! only by Central's database. Each measurement gets a fresh database on `--pg-admin`'s server,
//! dropped after it.

use std::sync::Arc;

use anyhow::Context;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use stockmesh_bus::DbConfig;

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
        let mut conn = PgConnection::connect(admin).await.with_context(|| {
            format!(
                "the postgres rows need a PostgreSQL server at {} (start one, point --pg-admin \
                 elsewhere, or leave postgres out of --only)",
                stockmesh_bus::redacted(admin)
            )
        })?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot create database {name}"))?;
        let _ = conn.close().await;
        let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
        let url = match base.rsplit_once('/') {
            Some((server, _)) if server.contains("://") && !server.ends_with('/') => {
                if query.is_empty() {
                    format!("{server}/{name}")
                } else {
                    format!("{server}/{name}?{query}")
                }
            }
            _ => anyhow::bail!("--pg-admin must name a database: postgres://user@host:port/db"),
        };
        Ok(Self {
            admin: admin.to_owned(),
            name,
            url,
        })
    }

    /// Drops the database (closing what is still connected to it); errors are only printed.
    async fn drop(self) {
        let dropped = async {
            let mut conn = PgConnection::connect(&self.admin).await?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await
        };
        if let Err(error) = dropped.await {
            eprintln!("bench: cannot drop database {}: {error}", self.name);
        }
    }
}
