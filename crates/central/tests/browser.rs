//! The dashboards in a real browser (headless Chromium through WebDriver): Central's `/ui` shows a
//! stock change made at a store without a reload, and marks a disconnected store offline; a
//! store's `/ui` shows its stock and an item's ledger; with authentication on, Central's page
//! works with a reading token and reads nothing without one. Screenshots go to
//! `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use stockmesh_http::auth::Role;
use stockmesh_testkit::cluster::TestCluster;

const LIMIT: Duration = Duration::from_secs(15);

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver on a free port, ended when dropped.
struct Driver {
    _child: tokio::process::Child,
    port: u16,
}

impl Driver {
    async fn start(binary: &Path) -> Self {
        let port = stockmesh_process::free_port().expect("a free port");
        let child = tokio::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let status = format!("http://127.0.0.1:{port}/status");
        stockmesh_testkit::cluster::eventually("chromedriver ready", LIMIT, async || {
            reqwest::get(&status)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        Self {
            _child: child,
            port,
        }
    }
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=420,1400",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session")
}

/// Waits until the element at `css` shows `text`.
async fn shows(client: &Client, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut seen = String::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            seen = element.text().await.unwrap_or_default();
            if seen.trim() == text {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {text:?} (last: {seen:?})");
}

async fn screenshot(client: &Client, dir: &Path, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(name), png).expect("screenshot written");
}

/// Every resource the page loaded came from `base`.
async fn nothing_from_outside(client: &Client, base: &str) {
    let names = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .expect("script");
    for name in names.as_array().expect("array") {
        let name = name.as_str().unwrap_or_default();
        assert!(
            name.starts_with(base),
            "the page loaded {name} from outside"
        );
    }
}

#[tokio::test]
async fn the_dashboards_follow_stock_and_liveness_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        find(&["chromium", "chromium-browser", "google-chrome"]),
        find(&["chromedriver"]),
    ) else {
        panic!(
            "the browser test needs Chromium and its WebDriver: apt-get install chromium chromium-driver"
        );
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let profile = tempfile::tempdir().expect("profile dir");

    let cluster = TestCluster::start(2).await;
    for (i, quantity) in [(1, 3), (2, 4)] {
        cluster.store(i).create_item("ui-p").await.expect(201);
        cluster
            .store(i)
            .set_quantity("ui-p", quantity)
            .await
            .expect(204);
    }
    stockmesh_testkit::cluster::eventually("Central sees both items", LIMIT, async || {
        cluster.central.get("/products/ui-p").await.json()["total"] == 7
    })
    .await;
    cluster
        .central
        .post("/purchase/store-2/ui-p", &json!({"quantity": 1}))
        .await
        .expect(200);
    stockmesh_testkit::cluster::eventually("Central sees the purchase", LIMIT, async || {
        cluster.central.get("/products/ui-p").await.json()["total"] == 6
    })
    .await;

    let driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, &chromium, profile.path()).await;
    let central = &cluster.central.base;
    client
        .goto(&format!("{central}/ui"))
        .await
        .expect("open /ui");
    shows(&client, "#live", "live").await;
    shows(&client, "#stores tr[data-store='store-2'] .state", "online").await;
    let input = client
        .find(Locator::Css("#product"))
        .await
        .expect("search box");
    input.send_keys("ui-p\n").await.expect("type");
    shows(&client, "#product-table tr[data-store='store-1'] .qty", "3").await;
    shows(&client, "#total", "6").await;

    // A change made at a store appears without a reload.
    cluster.store(1).set_quantity("ui-p", 42).await.expect(204);
    shows(
        &client,
        "#product-table tr[data-store='store-1'] .qty",
        "42",
    )
    .await;
    shows(&client, "#total", "45").await;
    screenshot(&client, &shots, "central-stock.png").await;

    // A store that disconnects is marked offline.
    cluster
        .store(2)
        .post_empty("/disconnected")
        .await
        .expect(200);
    shows(
        &client,
        "#stores tr[data-store='store-2'] .state",
        "offline",
    )
    .await;
    screenshot(&client, &shots, "central-offline.png").await;
    nothing_from_outside(&client, central).await;

    // The store's own page: its stock, an item's ledger, the switch.
    let store = &cluster.store(1).base;
    client
        .goto(&format!("{store}/ui"))
        .await
        .expect("open store /ui");
    shows(&client, "#link", "connected").await;
    shows(&client, "#items tr[data-product='ui-p'] .qty", "42").await;
    client
        .find(Locator::Css("#items tr[data-product='ui-p']"))
        .await
        .expect("row")
        .click()
        .await
        .expect("click");
    // The ledger, newest first: set to 42, set to 3, created.
    shows(
        &client,
        "#ledger tbody tr:nth-child(1) td:nth-child(4)",
        "42",
    )
    .await;
    shows(
        &client,
        "#ledger tbody tr:nth-child(2) td:nth-child(4)",
        "3",
    )
    .await;
    client
        .find(Locator::Css("#toggle"))
        .await
        .expect("switch")
        .click()
        .await
        .expect("click");
    shows(&client, "#link", "disconnected").await;
    screenshot(&client, &shots, "store.png").await;
    nothing_from_outside(&client, store).await;

    cluster.shutdown().await;

    // With authentication on, the page reads nothing without a token and everything with a
    // reading one (given in the URL's fragment, which never reaches a server, and kept in the
    // tab's sessionStorage); the feed then streams through fetch with the bearer header.
    let secured = TestCluster::start_secured(1).await;
    let viewer = secured
        .issuer
        .as_ref()
        .expect("a secured cluster")
        .issue("browser", Role::Viewer, None, Duration::from_secs(600))
        .expect("token");
    let central = &secured.central.base;
    client
        .goto(&format!("{central}/ui"))
        .await
        .expect("open /ui");
    shows(&client, "#live", "reconnecting").await;
    client
        .goto(&format!("{central}/ui#token={viewer}"))
        .await
        .expect("open /ui with a token");
    client.refresh().await.expect("reload");
    shows(&client, "#live", "live").await;
    let url = client.current_url().await.expect("url");
    assert!(
        url.fragment().is_none(),
        "the token stays in the address bar: {url}"
    );
    shows(&client, "#stores tr[data-store='store-1'] .state", "online").await;
    let input = client
        .find(Locator::Css("#product"))
        .await
        .expect("search box");
    input.send_keys("auth-p\n").await.expect("type");
    // The search answered (nothing yet) before the item exists: what follows comes by the feed.
    shows(
        &client,
        "#product-note",
        "no store carries auth-p yet; it will appear here when one does",
    )
    .await;
    secured.store(1).create_item("auth-p").await.expect(201);
    secured.store(1).set_quantity("auth-p", 9).await.expect(204);
    shows(&client, "#product-table tr[data-store='store-1'] .qty", "9").await;
    screenshot(&client, &shots, "central-secured.png").await;

    client.close().await.expect("close the browser");
    drop(driver);
    secured.shutdown().await;
}
