//! The same figures on a private three-master Redis Cluster, in the same run as the
//! single-Redis ones (`--only cluster`): propagation and remote purchase latencies and the
//! sustained events/s, each a row of its own marked "(Redis Cluster)". The masters keep their
//! data as the single server does (`--redis-fsync`), and Central and the store reach them
//! through one cluster client, so the rows differ from the single-Redis ones only by the
//! broker.

use std::sync::Arc;

use anyhow::Context;
use stockmesh_bus::redis_cluster::RedisCluster;
use stockmesh_bus::{Broker, RedisBroker, RedisConfig};

use super::BenchArgs;
use super::capture::Capture;
use super::cluster::BenchEnv;
use super::report::Report;
use super::scenarios::{
    On, drain_backlog, measure_propagation, measure_remote_purchases, report_events_per_second,
};

/// How many masters: the smallest real cluster, as the tests run.
const MASTERS: usize = 3;

/// Starts the private cluster, measures on it, and stops it.
pub async fn run(
    args: &BenchArgs,
    env: &BenchEnv,
    capture: &Arc<Capture>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let dir = env.dir.path().join("redis-cluster");
    std::fs::create_dir_all(&dir)?;
    let cluster = RedisCluster::start(&dir, MASTERS, env.persistence)
        .await
        .context("cannot start the private Redis Cluster")?;
    eprintln!(
        "bench: private Redis Cluster of {MASTERS} masters at {} (appendfsync {})",
        cluster.seeds(),
        args.redis_fsync
    );
    let broker = || -> anyhow::Result<Arc<dyn Broker>> {
        Ok(Arc::new(RedisBroker::new(RedisConfig::cluster(
            cluster.seeds(),
        ))?))
    };

    let pair = env.pair_on(broker()?, "cluster-prop").await?;
    measure_propagation(args, &pair, capture, report, On::CLUSTER).await?;
    pair.shutdown().await;

    let pair = env.pair_on(broker()?, "cluster-buy").await?;
    measure_remote_purchases(args, &pair, capture, report, On::CLUSTER).await?;
    pair.shutdown().await;

    let pair = env.pair_on(broker()?, "cluster-backlog").await?;
    let drained = drain_backlog(args.backlog, &pair, capture).await?;
    report_events_per_second(report, On::CLUSTER, args.backlog, &drained);
    pair.shutdown().await;
    Ok(())
}
