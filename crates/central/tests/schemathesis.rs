//! API fuzzing: `schemathesis` runs against both OpenAPI specs of a live cluster (Central and a
//! store, in this process, over a private `redis-server`) with a bounded number of examples per
//! operation. Every response must be no 5xx other than a documented 503 and conform to the spec (status, content type,
//! headers, body schema), and nothing may be written by a rejected request: the stores' ledgers
//! hold exactly the movements of the requests that succeeded.
//!
//! Needs `schemathesis` (PyPI): `$SCHEMATHESIS`, else `target/venv/bin/schemathesis`, which
//! `.ci/run` installs (`python3 -m venv target/venv && target/venv/bin/pip install schemathesis`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use stockmesh_testkit::cluster::TestCluster;
use stockmesh_testkit::http::Api;

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("venv/bin/schemathesis");
    assert!(
        venv.is_file(),
        "schemathesis is missing: python3 -m venv target/venv && target/venv/bin/pip install \
         schemathesis (as .ci/run does), or set SCHEMATHESIS"
    );
    venv
}

/// The counts of one run.
#[derive(Debug)]
struct Run {
    summary: String,
    har: Value,
}

async fn fuzz(node: &'static str, api: &Api, dir: &Path) -> Run {
    let har = dir.join(format!("{node}.har"));
    // 503 is a documented answer (a store offline, e.g. its heartbeat late on a loaded CI
    // machine; a request over the time limit), not a crash: every other 5xx fails the run.
    let config = dir.join("schemathesis.toml");
    std::fs::write(
        &config,
        "[checks.not_a_server_error]\nexpected-statuses = [\"2XX\", \"3XX\", \"4XX\", \"503\"]\n",
    )
    .expect("config written");
    let output = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", api.base))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--seed",
            "42",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--max-time",
            "35",
            "--exclude-path",
            "/events",
            "--exclude-path-regex",
            "^/docs",
            "--report",
            "har",
            "--no-color",
            "--generation-database",
            "none",
        ])
        .arg("--report-har-path")
        .arg(&har)
        .env("SCHEMATHESIS_HOOKS", "")
        // It keeps a cache in its working directory: not in the source tree.
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .unwrap_or_else(|_| panic!("schemathesis against {node} ran over 2 minutes"))
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("===== schemathesis against {node} =====\n{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found failures against {node}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout
        .lines()
        .filter(|l| {
            l.contains("API Operations") || l.contains("Test cases") || l.contains("passed")
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | ");
    let har = serde_json::from_slice(&std::fs::read(&har).expect("HAR written")).expect("HAR");
    Run { summary, har }
}

/// `(method, path, status)` of every request in a HAR log.
fn exchanges(har: &Value) -> Vec<(String, String, u16)> {
    har["log"]["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let url = e["request"]["url"].as_str().unwrap_or_default();
                    let path = url
                        .splitn(4, '/')
                        .nth(3)
                        .map(|p| format!("/{}", p.split('?').next().unwrap_or_default()))
                        .unwrap_or_default();
                    (
                        e["request"]["method"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        path,
                        u16::try_from(e["response"]["status"].as_u64().unwrap_or_default())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Ledger lines across every item of a store.
async fn ledger_lines(api: &Api) -> u64 {
    let mut total = 0;
    let mut page = 0;
    loop {
        let items = api
            .get(&format!("/inventory?page={page}&size=1000"))
            .await
            .expect(200)
            .json();
        let items = items.as_array().cloned().unwrap_or_default();
        for item in &items {
            let product = item["productId"].as_str().unwrap_or_default();
            let history = api
                .get(&format!("/inventory/{product}/history?size=1"))
                .await
                .expect(200);
            total += history
                .header("x-total-count")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_default();
        }
        if items.len() < 1000 {
            return total;
        }
        page += 1;
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_no_nonconformance_and_no_write_by_a_rejection() {
    let cluster = TestCluster::start(2).await;
    // Resources the specs' examples name (`store-1`, `sku-1`), so examples reach real data.
    cluster.store(1).create_item("sku-1").await.expect(201);
    cluster
        .store(1)
        .set_quantity("sku-1", 1000)
        .await
        .expect(204);
    let seeded = 2;
    let dir = tempfile::tempdir().expect("report dir");

    let store = fuzz("store", cluster.store(1), dir.path()).await;
    // The store run may have disconnected it; Central's run wants it reachable.
    cluster.store(1).post_empty("/connected").await.expect(200);
    cluster.wait_until_all_online().await;
    let central = fuzz("central", &cluster.central, dir.path()).await;

    // Every movement in the stores' ledgers comes from a request that succeeded.
    let store_writes = exchanges(&store.har)
        .into_iter()
        .filter(|(method, path, status)| {
            (200..300).contains(status)
                && matches!(method.as_str(), "POST" | "PUT")
                && (path.starts_with("/inventory") || path.starts_with("/purchase"))
        })
        .count() as u64;
    let purchases = exchanges(&central.har)
        .into_iter()
        .filter(|(method, path, _)| method == "POST" && path.starts_with("/purchase/"))
        .collect::<Vec<_>>();
    let confirmed = purchases.iter().filter(|(_, _, s)| *s == 200).count() as u64;
    let pending = purchases.iter().filter(|(_, _, s)| *s == 202).count() as u64;
    let lines = ledger_lines(cluster.store(1)).await + ledger_lines(cluster.store(2)).await;
    // At most one movement per request that succeeded (fewer when a retry under the same
    // `Idempotency-Key` replayed an earlier answer); any more came from a rejected request.
    let most = seeded + store_writes + confirmed + pending;
    println!(
        "store: {} | central: {} | ledger lines {lines}: seeded {seeded}, store writes \
         {store_writes}, remote purchases confirmed {confirmed} (+{pending} pending)",
        store.summary, central.summary
    );
    assert!(
        lines <= most,
        "the ledgers hold {lines} movements, but only {most} requests succeeded"
    );
    assert!(
        store_writes > 0,
        "no write ever succeeded: the fuzzing reached nothing"
    );
    cluster.shutdown().await;
}
