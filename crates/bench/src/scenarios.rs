//! The scenarios, in the order of the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::json;
use stockmesh_bus::{Database, LinkState, probe};
use stockmesh_core::{ProductId, Quantity};
use stockmesh_process::NodeProcess;

use super::BenchArgs;
use super::capture::{Capture, Leg};
use super::cluster::{BenchEnv, Pair};
use super::load::{closed_loop, open_loop};
use super::processes;
use super::report::{Goal, Report};

/// A typical event envelope's size, for raw broker figures at realistic payloads.
const PAYLOAD: &str = r#"{"id":"01a20d8f-de21-77d0-a6f0-27b261bc4dd8","type":"INVENTORY_ITEM_UPDATED","storeId":"store-1","occurredAt":"2026-11-24T12:37:42.049123Z","correlationId":"01a20d8fde2177d0a6f027b261bc4dd8","payload":{"productId":"sku-000001","quantity":7,"version":12,"updatedAt":"2026-11-24T12:37:42.049Z"}}"#;

/// Which broker a measurement ran on, as the report names it: a prefix of the figures' keys and
/// a suffix of their labels, so that the same figure on a Redis Cluster is a row of its own.
#[derive(Debug, Clone, Copy)]
pub struct On {
    key: &'static str,
    label: &'static str,
}

impl On {
    /// The private single `redis-server`: the figures as they always were.
    pub const ONE_REDIS: On = On { key: "", label: "" };
    /// The private three-master Redis Cluster.
    pub const CLUSTER: On = On {
        key: "cluster.",
        label: " (Redis Cluster)",
    };
    /// Central on PostgreSQL, one replica.
    pub const POSTGRES: On = On {
        key: "postgres.",
        label: " (Central on PostgreSQL)",
    };
    /// Two Central replicas sharing one PostgreSQL database.
    pub const REPLICAS: On = On {
        key: "postgres.replicas2.",
        label: " (2 Central replicas on PostgreSQL)",
    };

    pub(crate) fn key(self, key: &str) -> String {
        format!("{}{key}", self.key)
    }

    pub(crate) fn label(self, label: &str) -> String {
        format!("{label}{}", self.label)
    }
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

fn product(i: u64) -> ProductId {
    ProductId::parse(format!("sku-{i:06}"))
        .unwrap_or_else(|_| unreachable!("valid by construction"))
}

/// Runs every scenario into `report`.
pub async fn run_all(
    args: &BenchArgs,
    env: &BenchEnv,
    capture: &Arc<Capture>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let raw_rate = if args.runs("raw") || args.runs("backlog") {
        raw_limits(args, env, report).await?
    } else {
        0.0
    };
    if args.runs("propagation") {
        propagation(args, env, capture, report).await?;
    }
    if args.runs("purchase") {
        remote_purchases(args, env, capture, report).await?;
    }
    if args.runs("reservation") {
        reservations(args, env, report).await?;
    }
    if args.runs("transfer") {
        transfers(args, env, report).await?;
    }
    if args.runs("backlog") {
        backlog(args, env, capture, report, raw_rate).await?;
    }
    if args.runs("local") {
        local_purchases(args, env, report).await?;
    }
    if args.runs("memory") {
        memory_and_start(args, env, report).await?;
    }
    if args.runs("auth") {
        token_verification(args, report)?;
    }
    if args.runs("catalogue") {
        super::catalogue::catalogue(args, env, report).await?;
    }
    Ok(())
}

/// What checking a bearer token costs each request: verifications of one Ed25519 token, timed
/// in a loop (no HTTP); with auth off a request pays nothing.
fn token_verification(args: &BenchArgs, report: &mut Report) -> anyhow::Result<()> {
    use stockmesh_http::auth::{Issuer, Role, Verifier, generate_key_pair};
    let (private, public) = generate_key_pair()?;
    let issuer = Issuer::new("bench", &private)?;
    let verifier = Verifier::new([("bench".to_owned(), public)])?;
    let token = issuer.issue(
        "bench",
        Role::Store,
        Some("store-1"),
        Duration::from_secs(600),
    )?;
    let rounds: u32 = if args.smoke { 500 } else { 20_000 };
    let started = Instant::now();
    for _ in 0..rounds {
        verifier.verify(&token)?;
    }
    let each = started.elapsed() / rounds;
    report.add(
        "auth.verify",
        "bearer token verification, per request",
        each.as_secs_f64() * 1e6,
        "µs",
        None,
        format!("Ed25519 JWT, {rounds} verifications in a loop; 0 with auth off"),
    );
    Ok(())
}

/// Raw limits: `redis-benchmark` XADD, broker round trips at the relay's and consumer's batch
/// sizes, SQLite commits at full durability. Returns the broker round-trip rate.
async fn raw_limits(args: &BenchArgs, env: &BenchEnv, report: &mut Report) -> anyhow::Result<f64> {
    let requests = if args.smoke { 20_000 } else { 500_000 };
    let out = tokio::process::Command::new("redis-benchmark")
        .args([
            "-p",
            &env.redis.port().to_string(),
            "-n",
            &requests.to_string(),
            "-P",
            "512",
            "-q",
        ])
        .args([
            "XADD",
            "bench:raw",
            "*",
            "type",
            "INVENTORY_ITEM_UPDATED",
            "data",
            PAYLOAD,
        ])
        .output()
        .await;
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let rate = text
                .split("requests per second")
                .next()
                .and_then(|head| head.rsplit(':').next())
                .and_then(|n| n.trim().parse::<f64>().ok())
                .context("cannot read redis-benchmark's output")?;
            report.add(
                "raw.redis_benchmark_xadd",
                "raw redis-benchmark XADD (pipeline 512)",
                rate,
                "ops/s",
                None,
                "same server and payload; the broker's own ceiling",
            );
        }
        _ => eprintln!("  redis-benchmark not available; raw XADD rate skipped"),
    }
    let broker = env.broker()?;
    let total = if args.smoke { 5_000 } else { 200_000 };
    let rate = probe::broker_round_trip_rate(&broker, total, 512, 256, PAYLOAD).await?;
    report.add(
        "raw.broker_round_trip",
        "raw XADD+XREADGROUP+XACK (batches 512/256)",
        rate,
        "events/s",
        None,
        "through the same client, no SQLite",
    );
    let db = Database::open(&env.db("probe.db"), &stockmesh_central::MIGRATIONS).await?;
    let commits = probe::sqlite_commit_rate(&db, args.duration.min(Duration::from_secs(3))).await?;
    report.add(
        "raw.sqlite_commits",
        "raw SQLite commits (WAL, synchronous=FULL)",
        commits,
        "commits/s",
        None,
        "one-row update per transaction: the fsync ceiling of a durable write",
    );
    db.close().await;
    Ok(rate)
}

/// Store commit → visible at Central, at 1,000 updates/s.
async fn propagation(
    args: &BenchArgs,
    env: &BenchEnv,
    capture: &Arc<Capture>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let pair = env.pair("prop").await?;
    measure_propagation(args, &pair, capture, report, On::ONE_REDIS).await?;
    pair.shutdown().await;
    Ok(())
}

/// How long Central must have applied nothing before a latency measurement starts.
const SETTLE_QUIET: Duration = Duration::from_millis(500);
/// The longest wait for that quiet.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Store commit → visible at Central through `pair`, at 1,000 updates/s, reported `on` its
/// broker.
pub async fn measure_propagation(
    args: &BenchArgs,
    pair: &Pair,
    capture: &Arc<Capture>,
    report: &mut Report,
    on: On,
) -> anyhow::Result<()> {
    let store = pair.store.service().clone();
    let products = 100;
    let before = capture.applied();
    for i in 0..products {
        store.create_item(product(i), None).await?;
    }
    while capture.applied() < before + products {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    capture.settle(SETTLE_QUIET, SETTLE_LIMIT).await;
    capture.take_latency();
    let result = open_loop(1000, args.duration, move |i| {
        let store = store.clone();
        async move {
            let quantity = Quantity::new(i64::try_from(i % 1000).unwrap_or(0)).unwrap_or_default();
            store
                .set_quantity(product(i % products), quantity, None)
                .await
                .is_ok()
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let latency = capture.take_latency();
    let note = format!(
        "{:.0} updates/s sent, {} applied; commit timestamp in the event → Central's commit; max {:.1} ms",
        result.rate(),
        latency.len(),
        ms(&latency, 1.0)
    );
    report.add(
        &on.key("propagation.p50"),
        on.label("store commit → visible at Central, p50 @1,000/s"),
        ms(&latency, 0.5),
        "ms",
        None,
        note.clone(),
    );
    report.add(
        &on.key("propagation.p99"),
        on.label("store commit → visible at Central, p99 @1,000/s"),
        ms(&latency, 0.99),
        "ms",
        Some(Goal::AtMost(5.0)),
        note,
    );
    Ok(())
}

/// Remote purchase round trip at Central, at 500/s.
async fn remote_purchases(
    args: &BenchArgs,
    env: &BenchEnv,
    capture: &Capture,
    report: &mut Report,
) -> anyhow::Result<()> {
    let pair = env.pair("buy").await?;
    measure_remote_purchases(args, &pair, capture, report, On::ONE_REDIS).await?;
    pair.shutdown().await;
    Ok(())
}

/// Remote purchase round trip at `pair`'s Central, at 500/s, reported `on` its broker.
pub async fn measure_remote_purchases(
    args: &BenchArgs,
    pair: &Pair,
    capture: &Capture,
    report: &mut Report,
    on: On,
) -> anyhow::Result<()> {
    let store = pair.store.service().clone();
    let store_id = store.id().to_string();
    let products = 50;
    for i in 0..products {
        store.create_item(product(i), None).await?;
        store
            .set_quantity(product(i), Quantity::new(1_000_000)?, None)
            .await?;
    }
    let central = format!("http://{}", pair.central.addr());
    let client = reqwest::Client::new();
    // Central must have seen the store and its stock.
    let deadline = Instant::now() + Duration::from_secs(70);
    loop {
        let url = format!("{central}/purchase/{store_id}/{}", product(products - 1));
        let reply = client.post(url).json(&json!({"quantity": 1})).send().await;
        if reply.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "Central never accepted purchases"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    capture.settle(SETTLE_QUIET, SETTLE_LIMIT).await;
    capture.take_leg(Leg::Command);
    capture.take_leg(Leg::Reply);
    let result = open_loop(500, args.duration, move |i| {
        let request = client
            .post(format!(
                "{central}/purchase/{store_id}/{}",
                product(i % products)
            ))
            .json(&json!({"quantity": 1}))
            .send();
        async move { request.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let note = format!(
        "{:.0}/s answered 200, {} failed; HTTP at the client, open loop; max {:.1} ms",
        result.rate(),
        result.failed,
        ms(&result.latency, 1.0)
    );
    report.add(
        &on.key("purchase.p50"),
        on.label("remote purchase round trip at Central, p50 @500/s"),
        ms(&result.latency, 0.5),
        "ms",
        None,
        note.clone(),
    );
    report.add(
        &on.key("purchase.p99"),
        on.label("remote purchase round trip at Central, p99 @500/s"),
        ms(&result.latency, 0.99),
        "ms",
        Some(Goal::AtMost(10.0)),
        note,
    );
    // Where the time goes: each leg as the node applying it measured it.
    for (leg, key, label) in [
        (
            Leg::Command,
            "purchase.command",
            "… command leg: Central's request → the store's decision committed",
        ),
        (
            Leg::Reply,
            "purchase.reply",
            "… reply leg: the store's decision → Central's resolution committed",
        ),
    ] {
        let histogram = capture.take_leg(leg);
        report.add(
            &on.key(&format!("{key}.p50")),
            on.label(&format!("{label}, p50")),
            ms(&histogram, 0.5),
            "ms",
            None,
            format!("{} requests", histogram.len()),
        );
        report.add(
            &on.key(&format!("{key}.p99")),
            on.label(&format!("{label}, p99")),
            ms(&histogram, 0.99),
            "ms",
            None,
            format!("max {:.1} ms", ms(&histogram, 1.0)),
        );
    }
    Ok(())
}

/// Stocks `products` items of a pair's store and waits until Central shows the last one.
async fn stock_pair(pair: &super::cluster::Pair, tag: &str, products: u64) -> anyhow::Result<()> {
    let store = pair.store.service().clone();
    for i in 0..products {
        store.create_item(product(i), None).await?;
        store
            .set_quantity(product(i), Quantity::new(1_000_000)?, None)
            .await?;
    }
    let central = format!("http://{}", pair.central.addr());
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(70);
    let url = format!("{central}/inventory/store-{tag}/{}", product(products - 1));
    loop {
        let reply = client.get(&url).send().await;
        if reply.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "Central never saw the stock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reservation round trip at Central (the owning store decides the hold), at 500/s, beside the
/// remote purchase's.
async fn reservations(args: &BenchArgs, env: &BenchEnv, report: &mut Report) -> anyhow::Result<()> {
    let pair = env.pair("hold").await?;
    let products = 50;
    stock_pair(&pair, "hold", products).await?;
    let central = format!("http://{}", pair.central.addr());
    let client = reqwest::Client::new();
    let result = open_loop(500, args.duration, move |i| {
        let request = client
            .post(format!("{central}/reservations"))
            .json(&json!({
                "storeId": "store-hold", "productId": product(i % products).as_str(),
                "quantity": 1, "ttl": 600
            }))
            .send();
        async move { request.await.is_ok_and(|r| r.status() == 201) }
    })
    .await;
    let note = format!(
        "{:.0}/s answered 201, {} failed; HTTP at the client, open loop; max {:.1} ms",
        result.rate(),
        result.failed,
        ms(&result.latency, 1.0)
    );
    report.add(
        "reservation.p50",
        "reservation round trip at Central, p50 @500/s",
        ms(&result.latency, 0.5),
        "ms",
        None,
        note.clone(),
    );
    report.add(
        "reservation.p99",
        "reservation round trip at Central, p99 @500/s",
        ms(&result.latency, 0.99),
        "ms",
        Some(Goal::AtMost(10.0)),
        note,
    );
    pair.shutdown().await;
    Ok(())
}

/// A transfer's end-to-end time: from `POST /transfers` until Central reports it `RECEIVED`
/// (shipped by one store, received at once by the other), at 50/s.
async fn transfers(args: &BenchArgs, env: &BenchEnv, report: &mut Report) -> anyhow::Result<()> {
    let pair = env.pair("send").await?;
    let products = 50;
    stock_pair(&pair, "send", products).await?;
    let receiver = pair.add_store(env, "recv").await?;
    let central = format!("http://{}", pair.central.addr());
    let client = reqwest::Client::new();
    let result = open_loop(50, args.duration, move |i| {
        let (client, central) = (client.clone(), central.clone());
        async move {
            let Ok(reply) = client
                .post(format!("{central}/transfers"))
                .json(&json!({
                    "from": "store-send", "to": "store-recv",
                    "productId": product(i % products).as_str(), "quantity": 1
                }))
                .send()
                .await
            else {
                return false;
            };
            let body: serde_json::Value = reply.json().await.unwrap_or_default();
            let Some(id) = body["transferId"].as_str() else {
                return false;
            };
            let url = format!("{central}/transfers/{id}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(r) = client.get(&url).send().await
                    && r.json::<serde_json::Value>().await.unwrap_or_default()["status"]
                        == "RECEIVED"
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            false
        }
    })
    .await;
    let note = format!(
        "{:.0}/s received, {} failed; request to RECEIVED at Central, polled every 1 ms; max {:.1} ms",
        result.rate(),
        result.failed,
        ms(&result.latency, 1.0)
    );
    report.add(
        "transfer.p50",
        "transfer end to end (ship, receive), p50 @50/s",
        ms(&result.latency, 0.5),
        "ms",
        None,
        note.clone(),
    );
    report.add(
        "transfer.p99",
        "transfer end to end (ship, receive), p99 @50/s",
        ms(&result.latency, 0.99),
        "ms",
        None,
        note,
    );
    receiver.shutdown().await;
    pair.shutdown().await;
    Ok(())
}

/// Changes made while disconnected, then the drain after reconnecting: convergence time and the
/// sustained store → Central rate.
async fn backlog(
    args: &BenchArgs,
    env: &BenchEnv,
    capture: &Arc<Capture>,
    report: &mut Report,
    raw_rate: f64,
) -> anyhow::Result<()> {
    let pair = env.pair("backlog").await?;
    let drained = drain_backlog(args.backlog, &pair, capture).await?;
    let changes = args.backlog;
    report.add(
        "backlog.converged",
        format!("{changes} changes made while disconnected → Central converged after reconnect"),
        drained.converged,
        "s",
        Some(Goal::AtMost(5.0)),
        format!(
            "the changes were committed at {:.0}/s (16 writers, fsync each)",
            drained.fill_rate
        ),
    );
    report.add(
        "throughput.events",
        "sustained store → Central events/s",
        drained.rate,
        "events/s",
        Some(Goal::AtLeast(20_000.0)),
        "outbox → relay → Redis → Central apply (batched transactions) → ack",
    );
    report.add(
        "throughput.ratio",
        "… ratio to the raw XADD+XREADGROUP+XACK rate",
        drained.rate / raw_rate,
        "×",
        Some(Goal::AtLeast(0.3)),
        "same batch sizes, same run",
    );
    pair.shutdown().await;
    Ok(())
}

/// Reports the sustained events/s that draining `changes` measured, as a row of `on`.
pub fn report_events_per_second(report: &mut Report, on: On, changes: u64, drained: &Drained) {
    report.add(
        &on.key("throughput.events"),
        on.label("sustained store → Central events/s"),
        drained.rate,
        "events/s",
        Some(Goal::AtLeast(20_000.0)),
        format!(
            "{changes} changes made while disconnected, converged {:.2} s after reconnect",
            drained.converged
        ),
    );
}

/// What draining a backlog measured.
pub struct Drained {
    /// Seconds from reconnecting until Central applied every change.
    pub converged: f64,
    /// Changes committed per second while disconnected.
    pub fill_rate: f64,
    /// Events applied per second while draining.
    pub rate: f64,
}

/// Disconnects `pair`'s store, commits `changes` changes (16 writers) over 1,000 items,
/// reconnects it and waits until Central has applied every one.
pub async fn drain_backlog(
    changes: u64,
    pair: &Pair,
    capture: &Arc<Capture>,
) -> anyhow::Result<Drained> {
    let store = pair.store.service().clone();
    store.set_link(LinkState::Disconnected).await;
    let products = 1000;
    for i in 0..products {
        store.create_item(product(i), None).await?;
    }
    let fill_started = Instant::now();
    let writers: Vec<_> = (0..16u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut i = w;
                while i < changes {
                    let quantity =
                        Quantity::new(i64::try_from(i % 1000).unwrap_or(0)).unwrap_or_default();
                    store
                        .set_quantity(product(i % products), quantity, None)
                        .await?;
                    i += 16;
                }
                Ok::<(), stockmesh_store::StoreError>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let fill_rate = changes as f64 / fill_started.elapsed().as_secs_f64();
    let expected = capture.applied() + changes + products;
    let reconnected = Instant::now();
    store.set_link(LinkState::Connected).await;
    while capture.applied() < expected {
        anyhow::ensure!(
            reconnected.elapsed() < Duration::from_secs(600),
            "backlog never drained"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let converged = reconnected.elapsed().as_secs_f64();
    capture.take_latency();
    Ok(Drained {
        converged,
        fill_rate,
        rate: (changes + products) as f64 / converged,
    })
}

/// Local purchases over HTTP at one store, beside raw SQLite commits.
async fn local_purchases(
    args: &BenchArgs,
    env: &BenchEnv,
    report: &mut Report,
) -> anyhow::Result<()> {
    let pair = env.pair("local").await?;
    let store = pair.store.service().clone();
    let products = 100;
    for i in 0..products {
        store.create_item(product(i), None).await?;
        store
            .set_quantity(product(i), Quantity::new(1_000_000_000)?, None)
            .await?;
    }
    let base = format!("http://{}", pair.store.addr());
    let client = reqwest::Client::new();
    let cpu_before = processes::own_cpu_time()?;
    let result = closed_loop(32, args.duration, move |i| {
        let request = client
            .post(format!("{base}/purchase/{}", product(i % products)))
            .json(&json!({"quantity": 1}))
            .send();
        async move { request.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let cpu = processes::own_cpu_time()?.saturating_sub(cpu_before);
    let db = Database::open(&env.db("probe-local.db"), &stockmesh_central::MIGRATIONS).await?;
    let raw = probe::sqlite_commit_rate(&db, args.duration.min(Duration::from_secs(3))).await?;
    db.close().await;
    let note = format!(
        "32 HTTP clients; p50 {:.2} ms, p99 {:.2} ms",
        ms(&result.latency, 0.5),
        ms(&result.latency, 0.99)
    );
    report.add(
        "local.throughput",
        "local purchase HTTP throughput at one store",
        result.rate(),
        "purchases/s",
        None,
        note,
    );
    report.add(
        "local.ratio",
        "… ratio to raw SQLite commits/s (same durability)",
        result.rate() / raw,
        "×",
        None,
        format!("raw {raw:.0} commits/s measured alongside"),
    );
    report.add(
        "local.cpu_per_purchase",
        "… CPU per purchase (this process: store, Central, the clients)",
        cpu.as_secs_f64() * 1e6 / result.ok.max(1) as f64,
        "µs",
        None,
        format!(
            "{:.1} s of CPU over {:.1} s",
            cpu.as_secs_f64(),
            result.elapsed.as_secs_f64()
        ),
    );
    pair.shutdown().await;
    Ok(())
}

/// Resident memory of idle nodes and of Central holding many items; start to ready.
async fn memory_and_start(
    args: &BenchArgs,
    env: &BenchEnv,
    report: &mut Report,
) -> anyhow::Result<()> {
    let redis = env.redis.url();
    let store_db = env.dir.path().join("rss-store.db").display().to_string();
    let store = env
        .launcher
        .spawn(&[
            "store",
            "--id",
            "rss",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &store_db,
            "--redis",
            &redis,
        ])
        .await?;
    let central_db = env.dir.path().join("rss-central.db").display().to_string();
    let central = env
        .launcher
        .spawn(&[
            "central",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &central_db,
            "--redis",
            &redis,
            "--consumer-name",
            "rss",
        ])
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = |p: &NodeProcess| p.pid().context("node exited");
    report.add(
        "rss.store_idle",
        "idle RSS of a store",
        processes::rss_mib(pid(&store)?)?,
        "MiB",
        Some(Goal::AtMost(15.0)),
        "separate process, 1 s after start",
    );
    report.add(
        "rss.central_idle",
        "idle RSS of Central",
        processes::rss_mib(pid(&central)?)?,
        "MiB",
        Some(Goal::AtMost(25.0)),
        "separate process, 1 s after start",
    );
    drop(store);
    // A clean stop: Central gives up its claim on the consumer group for the next Central.
    let mut central = central;
    central.terminate().await;

    let full_db = env.dir.path().join("rss-central-full.db");
    processes::fill_central(&full_db, args.central_items).await?;
    let full_db = full_db.display().to_string();
    let central = env
        .launcher
        .spawn(&[
            "central",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &full_db,
            "--redis",
            &redis,
            "--consumer-name",
            "rss-full",
        ])
        .await?;
    let client = reqwest::Client::new();
    for path in [
        "/inventory?size=1000&page=50",
        "/stores",
        "/products/sku-00000042",
    ] {
        client
            .get(format!("{}{path}", central.url()))
            .send()
            .await?
            .error_for_status()?;
    }
    report.add(
        "rss.central_items",
        format!("RSS of Central holding {} items", args.central_items),
        processes::rss_mib(pid(&central)?)?,
        "MiB",
        None,
        "after paging the view and listing stores",
    );
    let mut central = central;
    central.terminate().await;

    let ready_db = env.dir.path().join("ready-store.db").display().to_string();
    let ready = processes::time_to_ready(
        &env.launcher,
        &[
            "store",
            "--id",
            "ready",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &ready_db,
            "--redis",
            &redis,
        ],
        "/",
    )
    .await?;
    report.add(
        "start.ready",
        "process start → ready (fresh database, migrations included)",
        ready,
        "ms",
        Some(Goal::AtMost(100.0)),
        "store process; polled every 1 ms",
    );
    Ok(())
}
