//! Figures that belong to a whole process: resident memory and the time from start to ready.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use stockmesh_process::Launcher;

/// Resident memory of `pid` in MiB (Linux `/proc`).
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("cannot read /proc (resident memory is measured on Linux only)")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kib / 1024.0)
}

/// CPU time this process has used so far, user and system, over all its threads (Linux `/proc`;
/// to within the kernel's 10 ms tick, `USER_HZ` being 100 on every Linux ABI).
pub fn own_cpu_time() -> anyhow::Result<Duration> {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat")
        .context("cannot read /proc (CPU time is measured on Linux only)")?;
    // The command name (field 2) may hold spaces: count the fields after its closing bracket,
    // where utime and stime are the 12th and 13th.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no command name in /proc/self/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .context("no CPU times in /proc/self/stat")
    };
    Ok(Duration::from_secs_f64((ticks(11)? + ticks(12)?) / USER_HZ))
}

/// Milliseconds from spawning `args` with `launcher` (quiet, warnings only) until `path`
/// answers 200.
pub async fn time_to_ready(launcher: &Launcher, args: &[&str], path: &str) -> anyhow::Result<f64> {
    let launcher = launcher.clone().log("warn").quiet();
    let client = reqwest::Client::new();
    let begun = Instant::now();
    // The URL (with the port picked by the OS) comes first; then poll until ready.
    let mut node = launcher.spawn(args).await?;
    loop {
        if let Ok(reply) = client.get(format!("{}{path}", node.url())).send().await
            && reply.status().is_success()
        {
            let ms = begun.elapsed().as_secs_f64() * 1e3;
            // A clean stop: Central gives up its claim on the consumer group for the next start.
            node.terminate().await;
            return Ok(ms);
        }
        anyhow::ensure!(
            begun.elapsed() < Duration::from_secs(30),
            "node never became ready"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Fills a Central database at `path` with `items` items across 100 stores.
pub async fn fill_central(path: &Path, items: u64) -> anyhow::Result<()> {
    use stockmesh_core::{ItemState, ProductId, Quantity, StoreId, Version};
    let db = stockmesh_bus::Database::open(
        &stockmesh_bus::DbConfig {
            durability: stockmesh_bus::Durability::Normal,
            ..stockmesh_bus::DbConfig::new(path.display().to_string())
        },
        &stockmesh_central::MIGRATIONS,
    )
    .await?;
    let now = stockmesh_core::now();
    let stores: Vec<StoreId> = (0..100)
        .map(|i| StoreId::parse(format!("store-{i}")))
        .collect::<Result<_, _>>()?;
    let mut done = 0;
    while done < items {
        let mut batch = Vec::new();
        for i in done..(done + 20_000).min(items) {
            let store = &stores[usize::try_from(i % 100)?];
            let state = ItemState {
                product_id: ProductId::parse(format!("sku-{i:08}"))?,
                quantity: Quantity::new(i64::try_from(i % 1000)?)?,
                reserved: Quantity::ZERO,
                version: Version::FIRST,
                updated_at: now,
            };
            batch.push((store, state));
        }
        let refs: Vec<(&StoreId, &ItemState)> = batch.iter().map(|(s, i)| (*s, i)).collect();
        stockmesh_central::import_view(&db, &refs).await?;
        done = (done + 20_000).min(items);
    }
    db.close().await;
    Ok(())
}
