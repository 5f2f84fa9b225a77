//! What the checker needs to know once the workload has stopped and the cluster is healed: each
//! store's items and ledgers, Central's view, every purchase's final status, consumer groups,
//! dead letters and outboxes; and how long Central took to equal the stores.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;
use stockmesh_bus::topology;

use super::access::Caller;
use super::cluster::{ChaosCluster, store_id};
use super::history::Record;

/// An item's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemView {
    /// Units available.
    pub quantity: i64,
    /// Units reserved.
    pub reserved: i64,
    /// Version.
    pub version: i64,
}

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementView {
    /// `created`, `set`, `local_sale`, `remote_sale`, `reserve`, `reserved_sale`, `release`,
    /// `expire`, `transfer_out`, `transfer_in`.
    pub kind: String,
    /// Change in available units.
    pub delta: i64,
    /// Units available after.
    pub quantity: i64,
    /// Units reserved after.
    pub reserved: i64,
    /// Why (e.g. `returned` for a transfer back to its sender).
    pub reason: Option<String>,
    /// The reservation, for reservation movements.
    pub reservation_id: Option<String>,
    /// The transfer, for transfer movements.
    pub transfer_id: Option<String>,
    /// Version after.
    pub version: i64,
    /// The request that caused it.
    pub correlation_id: Option<String>,
    /// The remote purchase, for remote sales.
    pub purchase_id: Option<String>,
}

/// A store's truth.
#[derive(Debug, Clone, Default)]
pub struct StoreTruth {
    /// Items by product.
    pub items: BTreeMap<String, ItemView>,
    /// Ledgers by product, oldest first.
    pub ledgers: BTreeMap<String, Vec<MovementView>>,
    /// Events not yet published.
    pub outbox_pending: i64,
}

/// A consumer group's state.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// Delivered, not acked.
    pub pending: u64,
    /// Not yet delivered.
    pub lag: Option<u64>,
}

/// A transfer as Central ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferView {
    /// Its final status.
    pub status: String,
    /// Sending store, 1-based.
    pub from: usize,
    /// Receiving store, 1-based.
    pub to: usize,
    /// The product.
    pub product: String,
    /// Units.
    pub quantity: i64,
}

/// Everything observed after the run.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Each store's truth, `store-1` first.
    pub stores: Vec<StoreTruth>,
    /// Central's view by (store, product).
    pub central: BTreeMap<(usize, String), ItemView>,
    /// Central's unpublished events.
    pub central_outbox_pending: i64,
    /// Final status (and reason) of every purchase id seen in answers.
    pub purchases: BTreeMap<String, (String, Option<String>)>,
    /// Final status at Central of every reservation the history made or acted on.
    pub reservations: BTreeMap<String, String>,
    /// Every transfer Central recorded, by id.
    pub transfers: BTreeMap<String, TransferView>,
    /// Central's units in transit, by product.
    pub in_transit: BTreeMap<String, i64>,
    /// Every consumer group.
    pub groups: Vec<GroupView>,
    /// Every dead-lettered entry: (stream, data).
    pub dead_letters: Vec<(String, String)>,
    /// Time from quiet to Central equal to every store, or what still differed.
    pub convergence: Result<Duration, String>,
    /// Each loss of the self-healing phase and the time from it to Central equal to every store.
    pub healed: Vec<(&'static str, Result<Duration, String>)>,
}

async fn get_json(cluster: &ChaosCluster, url: &str) -> anyhow::Result<Value> {
    let response = cluster
        .request(Caller::Viewer, Method::GET, url)
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json().await?)
}

pub(crate) async fn pages(cluster: &ChaosCluster, url: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    for page in 0.. {
        let sep = if url.contains('?') { '&' } else { '?' };
        let batch = get_json(cluster, &format!("{url}{sep}size=1000&page={page}")).await?;
        let items = batch.as_array().context("a list")?.clone();
        let done = items.len() < 1000;
        all.extend(items);
        if done {
            break;
        }
    }
    Ok(all)
}

fn item_view(v: &Value) -> Option<(String, ItemView)> {
    Some((
        v["productId"].as_str()?.to_owned(),
        ItemView {
            quantity: v["quantity"].as_i64()?,
            reserved: v["reserved"].as_i64().unwrap_or(0),
            version: v["version"].as_i64()?,
        },
    ))
}

async fn store_items(
    cluster: &ChaosCluster,
    store: usize,
) -> anyhow::Result<BTreeMap<String, ItemView>> {
    let url = format!("{}/inventory", cluster.store_urls[store - 1]);
    Ok(pages(cluster, &url)
        .await?
        .iter()
        .filter_map(item_view)
        .collect())
}

async fn central_items(
    cluster: &ChaosCluster,
    store: usize,
) -> anyhow::Result<BTreeMap<String, ItemView>> {
    let url = format!("{}/inventory?storeId=store-{store}", cluster.central_url());
    Ok(pages(cluster, &url)
        .await?
        .iter()
        .filter_map(item_view)
        .collect())
}

/// What differs between Central and the stores, or `None` when Central equals them.
async fn difference(cluster: &ChaosCluster) -> anyhow::Result<Option<String>> {
    for store in 1..=cluster.store_urls.len() {
        let truth = store_items(cluster, store).await?;
        let view = central_items(cluster, store).await?;
        if truth != view {
            let keys: BTreeSet<&String> = truth.keys().chain(view.keys()).collect();
            let diffs: Vec<String> = keys
                .into_iter()
                .filter(|k| truth.get(*k) != view.get(*k))
                .map(|k| {
                    format!(
                        "store-{store}/{k}: store {:?}, Central {:?}",
                        truth.get(k),
                        view.get(k)
                    )
                })
                .collect();
            return Ok(Some(diffs.join("; ")));
        }
    }
    Ok(None)
}

/// Waits (up to `limit`) for Central to equal every store; returns how long that took.
pub async fn converge(
    cluster: &ChaosCluster,
    limit: Duration,
) -> anyhow::Result<Result<Duration, String>> {
    let started = Instant::now();
    loop {
        match difference(cluster).await? {
            None => return Ok(Ok(started.elapsed())),
            Some(diff) if started.elapsed() >= limit => return Ok(Err(diff)),
            Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn outbox_pending(cluster: &ChaosCluster, store: usize) -> anyhow::Result<i64> {
    let status = get_json(
        cluster,
        &format!("{}/status", cluster.store_urls[store - 1]),
    )
    .await?;
    status["outboxPending"].as_i64().context("outboxPending")
}

async fn central_outbox(cluster: &ChaosCluster) -> anyhow::Result<i64> {
    let text = cluster
        .request(
            Caller::Metrics,
            Method::GET,
            &format!("{}/metrics", cluster.central_url()),
        )
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("stockmesh_outbox_pending{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as i64)
}

async fn groups(cluster: &ChaosCluster) -> anyhow::Result<Vec<GroupView>> {
    let mut out = Vec::new();
    for store in 1..=cluster.store_urls.len() {
        let id = store_id(store);
        for (stream, group) in [
            (topology::events_stream(&id), topology::CENTRAL_GROUP),
            (topology::commands_stream(&id), topology::STORE_GROUP),
        ] {
            let info = cluster.broker.group_info(&stream, group).await?;
            // Redis's lag is an estimate (entries added − entries read) that deletions and
            // re-injected entries can leave above zero with nothing left to read. What counts is
            // whether an entry exists after the group's last delivered one: with none pending,
            // `oldest_unacked_age_ms` is that entry's age, or None when there is none.
            let lag = match (info.pending, info.oldest_unacked_age_ms) {
                (0, None) => Some(0),
                _ => info.lag,
            };
            out.push(GroupView {
                stream,
                group: group.to_owned(),
                pending: info.pending,
                lag,
            });
        }
    }
    Ok(out)
}

/// The groups once drained, or as they stand after `limit`: a store's own clock may publish
/// (a reservation expiring) while the rest of the state is read, so one sample could catch an
/// entry Central is about to read; an entry really lost stays undelivered past the limit.
async fn drained_groups(cluster: &ChaosCluster, limit: Duration) -> anyhow::Result<Vec<GroupView>> {
    let started = Instant::now();
    loop {
        let sample = groups(cluster).await?;
        let drained = sample
            .iter()
            .all(|g| g.pending == 0 && g.lag.unwrap_or(0) == 0);
        if drained || started.elapsed() >= limit {
            return Ok(sample);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until nothing is in flight: outboxes empty, groups without pending entries or lag.
async fn settle(cluster: &ChaosCluster, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let mut quiet = central_outbox(cluster).await? == 0;
        for store in 1..=cluster.store_urls.len() {
            quiet &= outbox_pending(cluster, store).await? == 0;
        }
        quiet &= groups(cluster)
            .await?
            .iter()
            .all(|g| g.pending == 0 && g.lag.unwrap_or(0) == 0);
        if quiet {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Everything, once the cluster is healed; `convergence` was measured from the quiet moment.
pub async fn collect(
    cluster: &ChaosCluster,
    history: &[Record],
    convergence: Result<Duration, String>,
) -> anyhow::Result<Observed> {
    // Reservations end by the stores' clocks (ttl ≤ 4 s) and transfers by their receipts: wait
    // for every one to end before reading anything, so that nothing moves while it is read.
    let mut reservations = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let reservation_ids: BTreeSet<&String> = history
        .iter()
        .filter_map(|r| r.reservation_id.as_ref())
        .collect();
    for id in reservation_ids {
        loop {
            let url = format!("{}/reservations/{id}", cluster.central_url());
            let r = get_json(cluster, &url).await?;
            let status = r["status"].as_str().unwrap_or_default().to_owned();
            if !matches!(status.as_str(), "PENDING" | "HELD") || Instant::now() >= deadline {
                reservations.insert(id.clone(), status);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut transfers = BTreeMap::new();
    loop {
        transfers.clear();
        let url = format!("{}/transfers", cluster.central_url());
        for t in pages(cluster, &url).await? {
            let store = |f: &str| {
                t[f].as_str()
                    .and_then(|s| s.strip_prefix("store-"))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0)
            };
            let view = TransferView {
                status: t["status"].as_str().unwrap_or_default().to_owned(),
                from: store("from"),
                to: store("to"),
                product: t["productId"].as_str().unwrap_or_default().to_owned(),
                quantity: t["quantity"].as_i64().unwrap_or(0),
            };
            let returning = t["status"] == "CANCELLED"
                && t["shippedAt"].is_string()
                && !t["returnedAt"].is_string();
            let open = matches!(view.status.as_str(), "REQUESTED" | "IN_TRANSIT") || returning;
            transfers.insert(
                t["transferId"].as_str().unwrap_or_default().to_owned(),
                (view, open),
            );
        }
        if transfers.values().all(|(_, open)| !open) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let transfers: BTreeMap<String, TransferView> =
        transfers.into_iter().map(|(id, (t, _))| (id, t)).collect();
    settle(cluster, Duration::from_secs(30)).await?;
    let ids: BTreeSet<&String> = history
        .iter()
        .filter_map(|r| r.purchase_id.as_ref())
        .collect();
    let mut purchases = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ids {
        loop {
            let p = get_json(
                cluster,
                &format!("{}/purchases/{id}", cluster.central_url()),
            )
            .await?;
            let status = p["status"].as_str().unwrap_or_default().to_owned();
            if status != "PENDING" || Instant::now() >= deadline {
                purchases.insert(
                    id.clone(),
                    (status, p["reason"].as_str().map(str::to_owned)),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut stores = Vec::new();
    let mut central = BTreeMap::new();
    let mut dead_letters = Vec::new();
    for store in 1..=cluster.store_urls.len() {
        let items = store_items(cluster, store).await?;
        let mut ledgers = BTreeMap::new();
        for product in items.keys() {
            let url = format!(
                "{}/inventory/{product}/history",
                cluster.store_urls[store - 1]
            );
            let mut moves: Vec<MovementView> = pages(cluster, &url)
                .await?
                .iter()
                .filter_map(|m| {
                    Some(MovementView {
                        kind: m["kind"].as_str()?.to_owned(),
                        delta: m["delta"].as_i64()?,
                        quantity: m["quantity"].as_i64()?,
                        reserved: m["reserved"].as_i64().unwrap_or(0),
                        reason: m["reason"].as_str().map(str::to_owned),
                        reservation_id: m["reservationId"].as_str().map(str::to_owned),
                        transfer_id: m["transferId"].as_str().map(str::to_owned),
                        version: m["version"].as_i64()?,
                        correlation_id: m["correlationId"].as_str().map(str::to_owned),
                        purchase_id: m["purchaseId"].as_str().map(str::to_owned),
                    })
                })
                .collect();
            moves.reverse();
            ledgers.insert(product.clone(), moves);
        }
        for (product, view) in central_items(cluster, store).await? {
            central.insert((store, product), view);
        }
        stores.push(StoreTruth {
            items,
            ledgers,
            outbox_pending: outbox_pending(cluster, store).await?,
        });
    }
    dead_letters.extend(self::dead_letters(cluster).await?);
    let mut in_transit = BTreeMap::new();
    for n in 0..super::schedule::PRODUCTS {
        let product = format!("p{n}");
        let url = format!("{}/products/{product}", cluster.central_url());
        if let Ok(p) = get_json(cluster, &url).await {
            in_transit.insert(product, p["inTransit"].as_i64().unwrap_or(0));
        }
    }
    Ok(Observed {
        stores,
        central,
        reservations,
        transfers,
        in_transit,
        central_outbox_pending: central_outbox(cluster).await?,
        purchases,
        groups: drained_groups(cluster, Duration::from_secs(3)).await?,
        dead_letters,
        convergence,
        healed: Vec::new(),
    })
}

/// Every dead-lettered entry of every store's streams: (stream, data).
pub async fn dead_letters(cluster: &ChaosCluster) -> anyhow::Result<Vec<(String, String)>> {
    let mut dead_letters = Vec::new();
    for store in 1..=cluster.store_urls.len() {
        let id = store_id(store);
        for stream in [topology::events_stream(&id), topology::commands_stream(&id)] {
            let dead = topology::dead_letter_stream(&stream);
            for entry in cluster.broker.entries(&dead).await? {
                let data = String::from_utf8_lossy(&entry.data.unwrap_or_default()).into_owned();
                dead_letters.push((stream.clone(), data));
            }
        }
    }
    Ok(dead_letters)
}
