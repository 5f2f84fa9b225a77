//! Big catalogues (issue 18): a store holding `--catalogue-items` items and a Central whose view
//! holds `--catalogue-view-items`, each filled through the node's own migrations in one set-based
//! statement, then served by a separate process of the binary and read over real HTTP: page
//! latency at the start, the middle and the end of the list (by `page` and by `after` cursor),
//! start to ready on the full database, and resident memory after paging through, beside the
//! same node on an empty database.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use stockmesh_process::NodeProcess;

use super::BenchArgs;
use super::cluster::BenchEnv;
use super::processes;
use super::report::{Goal, Report};

/// Items per page in every read.
const PAGE_SIZE: u64 = 100;
/// Items per page while paging through the whole list.
const WALK_SIZE: u64 = 1000;
/// Stores in Central's view.
const VIEW_STORES: u32 = 100;
/// The goal for a page read's p99, at any depth.
const PAGE_GOAL_MS: f64 = 50.0;
/// How much resident memory paging through may add over the empty node.
const RSS_GROWTH_GOAL_MIB: f64 = 20.0;
/// A deep offset page can take seconds: its reads stop after this long (at least 3 reads).
const READS_BUDGET: Duration = Duration::from_secs(10);
/// Paging through stops after this long (an offset-only node would take hours over millions).
const WALK_BUDGET: Duration = Duration::from_secs(300);
/// Starts timed on the full database (the median is reported).
const STARTS: usize = 5;

/// One of the two nodes under test.
#[derive(Clone, Copy)]
enum Node {
    Store,
    Central,
}

impl Node {
    fn name(self) -> &'static str {
        match self {
            Node::Store => "store",
            Node::Central => "central",
        }
    }

    /// The flags that start this node on `db` against the bench's Redis.
    fn args(self, db: &str, redis: &str) -> Vec<String> {
        let mut args: Vec<String> = match self {
            Node::Store => vec!["store".into(), "--id".into(), "catalogue".into()],
            Node::Central => vec![
                "central".into(),
                "--consumer-name".into(),
                format!("catalogue-{}", rand_suffix()),
            ],
        };
        args.extend(["--listen", "127.0.0.1:0", "--db", db, "--redis", redis].map(String::from));
        args
    }

    /// The key of the item at `index` in list order, as the fill wrote it, and as a cursor.
    fn key(self, index: u64, per_store: u64) -> String {
        match self {
            Node::Store => format!("sku-{index:08}"),
            Node::Central => format!(
                "store-{:03}~sku-{:08}",
                index / per_store,
                index % per_store
            ),
        }
    }

    /// The same key as the item JSON shows it.
    fn key_of(self, item: &serde_json::Value) -> String {
        let product = item["productId"].as_str().unwrap_or_default();
        match self {
            Node::Store => product.to_owned(),
            Node::Central => format!("{}~{product}", item["storeId"].as_str().unwrap_or_default()),
        }
    }
}

/// A distinct consumer name per Central process of the run.
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Runs the scenario for the store, then for Central.
pub async fn catalogue(
    args: &BenchArgs,
    env: &BenchEnv,
    report: &mut Report,
) -> anyhow::Result<()> {
    measure(Node::Store, args.catalogue_items, env, report).await?;
    measure(Node::Central, args.catalogue_view_items, env, report).await
}

async fn measure(
    node: Node,
    items: u64,
    env: &BenchEnv,
    report: &mut Report,
) -> anyhow::Result<()> {
    let name = node.name();
    let redis = env.redis.url();
    let per_store = match node {
        Node::Store => items,
        Node::Central => (items / u64::from(VIEW_STORES)).max(1),
    };
    let total = match node {
        Node::Store => items,
        Node::Central => per_store * u64::from(VIEW_STORES),
    };

    // The same node on an empty database: the memory baseline.
    let empty_db = env.dir.path().join(format!("catalogue-{name}-empty.db"));
    let empty_db = empty_db.display().to_string();
    let empty = spawn(env, &node.args(&empty_db, &redis)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_empty = processes::rss_mib(empty.pid().context("node exited")?)?;
    drop(empty);

    let db = env.dir.path().join(format!("catalogue-{name}.db"));
    let begun = Instant::now();
    fill(node, &db, total, per_store).await?;
    let fill_s = begun.elapsed().as_secs_f64();
    report.add(
        &format!("catalogue.{name}.fill"),
        format!("{name}: fill {total} items"),
        total as f64 / fill_s,
        "items/s",
        None,
        format!(
            "{fill_s:.1} s, one transaction through the node's migrations, {} MiB on disk",
            file_mib(&db)
        ),
    );
    let db = db.display().to_string();
    let args = node.args(&db, &redis);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut starts = Vec::new();
    for _ in 0..STARTS {
        starts.push(processes::time_to_ready(&env.launcher, &argv, "/").await?);
    }
    report.add(
        &format!("catalogue.{name}.start"),
        format!("{name}: process start → ready holding {total} items"),
        quantile(&mut starts, 500),
        "ms",
        Some(Goal::AtMost(100.0)),
        format!("median of {STARTS} starts; polled every 1 ms"),
    );

    let process = spawn(
        env,
        &argv.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
    )
    .await?;
    let client = reqwest::Client::new();
    let base = process.url().to_owned();
    let pages = total.div_ceil(PAGE_SIZE);
    let middle = pages / 2 * PAGE_SIZE;
    let last = pages.saturating_sub(1) * PAGE_SIZE;
    let first = read_page(&client, &base, "", node, node.key(0, per_store)).await?;
    let keyset = first.next.is_some();
    let mut cases = vec![
        ("first", "first page", String::new(), 0),
        (
            "offset_mid",
            "middle page by ?page",
            format!("&page={}", middle / PAGE_SIZE),
            middle,
        ),
        (
            "offset_last",
            "last page by ?page",
            format!("&page={}", last / PAGE_SIZE),
            last,
        ),
    ];
    if keyset {
        cases.push((
            "after_mid",
            "middle page by ?after",
            after(node, middle, per_store),
            middle,
        ));
        cases.push((
            "after_last",
            "last page by ?after",
            after(node, last, per_store),
            last,
        ));
    } else {
        eprintln!("bench: the {name} answers no X-Next-Cursor: no keyset figures");
    }
    for (key, label, query, index) in cases {
        let reads = if index == 0 || key.starts_with("after") {
            200
        } else {
            50
        };
        let mut ms = Vec::new();
        let begun = Instant::now();
        while ms.len() < reads && (ms.len() < 3 || begun.elapsed() < READS_BUDGET) {
            ms.push(
                read_page(&client, &base, &query, node, node.key(index, per_store))
                    .await?
                    .ms,
            );
        }
        let n = ms.len();
        let p50 = quantile(&mut ms, 500);
        report.add(
            &format!("catalogue.{name}.{key}_p99"),
            format!("{name}: {label} of {total}, p99"),
            quantile(&mut ms, 990),
            "ms",
            Some(Goal::AtMost(PAGE_GOAL_MS)),
            format!(
                "p50 {p50:.2} ms over {n} reads of {PAGE_SIZE} items, HTTP, X-Total-Count included"
            ),
        );
    }

    let walked = walk(&client, &base, total, keyset).await?;
    let rss = processes::rss_mib(process.pid().context("node exited")?)?;
    report.add(
        &format!("catalogue.{name}.rss_growth"),
        format!("{name}: RSS after paging through, over the empty node"),
        rss - rss_empty,
        "MiB",
        Some(Goal::AtMost(RSS_GROWTH_GOAL_MIB)),
        format!(
            "{rss:.1} MiB after {walked} of {total} items in pages of {WALK_SIZE} ({}), empty node {rss_empty:.1} MiB",
            if keyset { "by cursor" } else { "by page" }
        ),
    );
    drop(process);
    Ok(())
}

async fn spawn(env: &BenchEnv, args: &[String]) -> anyhow::Result<NodeProcess> {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(env
        .launcher
        .clone()
        .log("warn")
        .quiet()
        .spawn(&argv)
        .await?)
}

/// `&after=<the key before index>`.
fn after(node: Node, index: u64, per_store: u64) -> String {
    format!("&after={}", node.key(index.saturating_sub(1), per_store))
}

/// Fills the node's database at `path` (created with its migrations).
async fn fill(node: Node, path: &Path, total: u64, per_store: u64) -> anyhow::Result<()> {
    let config = stockmesh_bus::DbConfig {
        durability: stockmesh_bus::Durability::Normal,
        ..stockmesh_bus::DbConfig::new(path.display().to_string())
    };
    match node {
        Node::Store => {
            let db = stockmesh_bus::Database::open(&config, &stockmesh_store::MIGRATIONS).await?;
            stockmesh_store::fill_catalogue(&db, total).await?;
            db.close().await;
        }
        Node::Central => {
            let db = stockmesh_bus::Database::open(&config, &stockmesh_central::MIGRATIONS).await?;
            stockmesh_central::fill_catalogue(&db, VIEW_STORES, per_store).await?;
            db.close().await;
        }
    }
    Ok(())
}

fn file_mib(path: &Path) -> String {
    std::fs::metadata(path).map_or_else(
        |_| "?".into(),
        |m| format!("{:.0}", m.len() as f64 / 1048576.0),
    )
}

/// One page read: how long it took, and the cursor it gave.
struct Read {
    ms: f64,
    next: Option<String>,
}

/// Reads `/inventory?size=100<query>` and checks that it starts with `expected`: a figure of a
/// wrong page would be worthless.
async fn read_page(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    node: Node,
    expected: String,
) -> anyhow::Result<Read> {
    let begun = Instant::now();
    let reply = client
        .get(format!("{base}/inventory?size={PAGE_SIZE}{query}"))
        .send()
        .await?
        .error_for_status()?;
    let next = reply
        .headers()
        .get("x-next-cursor")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = reply.json().await?;
    let ms = begun.elapsed().as_secs_f64() * 1e3;
    let got = body
        .as_array()
        .and_then(|items| items.first())
        .map(|item| node.key_of(item));
    anyhow::ensure!(
        got.as_deref() == Some(expected.as_str()),
        "/inventory?size={PAGE_SIZE}{query} starts at {got:?}, not {expected}"
    );
    Ok(Read { ms, next })
}

/// Pages through the whole list (by cursor when the node gives one, else by page number) within
/// [`WALK_BUDGET`]; returns how many items were read.
async fn walk(
    client: &reqwest::Client,
    base: &str,
    total: u64,
    keyset: bool,
) -> anyhow::Result<u64> {
    let begun = Instant::now();
    let mut walked = 0;
    let mut cursor: Option<String> = None;
    let mut page = 0;
    loop {
        let query = match (&cursor, keyset) {
            (Some(after), true) => format!("&after={after}"),
            _ => format!("&page={page}"),
        };
        let reply = client
            .get(format!("{base}/inventory?size={WALK_SIZE}{query}"))
            .send()
            .await?
            .error_for_status()?;
        cursor = reply
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let items: Vec<serde_json::Value> = reply.json().await?;
        walked += items.len() as u64;
        page += 1;
        if items.is_empty() || walked >= total || (keyset && cursor.is_none()) {
            break;
        }
        if begun.elapsed() > WALK_BUDGET {
            eprintln!("bench: paging through stopped after {walked} items ({WALK_BUDGET:?})");
            break;
        }
    }
    Ok(walked)
}

/// The quantile `permille`/1000 of `values` (sorted in place; nearest rank).
fn quantile(values: &mut [f64], permille: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    let last = values.len().saturating_sub(1);
    let index = (last * permille + 500) / 1000;
    values.get(index.min(last)).copied().unwrap_or(f64::NAN)
}
