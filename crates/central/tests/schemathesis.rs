//! API fuzzing: `schemathesis` runs against both OpenAPI specs of a live cluster (Central and two
//! stores, in this process, over a private `redis-server`) with a bounded number of examples per
//! operation and a bounded time. Every response must be no 5xx other than a documented 503 and
//! conform to the spec (status, content type, headers, body schema), and nothing may be written
//! by a rejected request: no line of the stores' ledgers carries the correlation id of a request
//! that was refused.
//!
//! Needs `schemathesis` (PyPI): `$SCHEMATHESIS`, else `target/ci-venv/bin/schemathesis`, which
//! `.ci/run` installs (a pinned version, in a virtualenv of a Python without CPython gh-106905).

use std::collections::HashSet;
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
        .join("ci-venv/bin/schemathesis");
    assert!(
        venv.is_file(),
        "schemathesis is missing: run .ci/run (it installs the pinned schemathesis into \
         target/ci-venv), or python3.13 -m venv target/ci-venv && target/ci-venv/bin/pip install \
         schemathesis==4.32.5, or set SCHEMATHESIS"
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
    // machine; a request over the time limit), not a crash: every other 5xx fails the run. The
    // stateful phase follows the links the specs declare (a created reservation leads to its
    // status, commit and release) instead of guessing them.
    let config = dir.join("schemathesis.toml");
    std::fs::write(
        &config,
        "[checks.not_a_server_error]\nexpected-statuses = [\"2XX\", \"3XX\", \"4XX\", \"503\"]\n\
         # The specs declare their links; no guessing from Location headers or field names.\n\
         [phases.stateful.inference]\nalgorithms = []\n",
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
            // The change feed never ends; the reference page is HTML.
            "--exclude-path-regex",
            "^/(events|docs)",
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
    // The counts from the summary: operations selected and tested, test cases generated,
    // passed and failed.
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let after = |heading: &str, prefix: &str| {
        lines
            .iter()
            .skip_while(|l| !l.starts_with(heading))
            .find(|l| l.starts_with(prefix) || (prefix.is_empty() && l.contains("generated")))
            .map_or("?", |l| l.trim_start_matches(prefix).trim())
            .to_owned()
    };
    let summary = format!(
        "operations {} selected, {} tested; test cases {}",
        after("API Operations:", "Selected:"),
        after("API Operations:", "Tested:"),
        after("Test cases:", ""),
    );
    let har = serde_json::from_slice(&std::fs::read(&har).expect("HAR written")).expect("HAR");
    Run { summary, har }
}

/// One request and its answer, from a HAR log.
#[derive(Debug)]
struct Exchange {
    method: String,
    path: String,
    status: u16,
    /// The answer's `X-Request-Id`: the correlation id every write of the request carries.
    request_id: Option<String>,
}

/// Every exchange of a HAR log.
fn exchanges(har: &Value) -> Vec<Exchange> {
    let entries = har["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    entries
        .iter()
        .map(|e| {
            let url = e["request"]["url"].as_str().unwrap_or_default();
            let path = url
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{}", p.split('?').next().unwrap_or_default()))
                .unwrap_or_default();
            let request_id = e["response"]["headers"].as_array().and_then(|headers| {
                headers
                    .iter()
                    .find(|h| {
                        h["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case("x-request-id"))
                    })
                    .and_then(|h| h["value"].as_str())
                    .map(str::to_owned)
            });
            Exchange {
                method: e["request"]["method"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                path,
                status: u16::try_from(e["response"]["status"].as_u64().unwrap_or_default())
                    .unwrap_or_default(),
                request_id,
            }
        })
        .collect()
}

/// The correlation id of every ledger line of a store, all items, all pages.
async fn ledger_correlations(api: &Api) -> Vec<String> {
    let mut ids = Vec::new();
    let items = api.get("/inventory?size=1000").await.expect(200).json();
    for item in items.as_array().cloned().unwrap_or_default() {
        let product = item["productId"].as_str().unwrap_or_default();
        let product = product.replace('%', "%25").replace('/', "%2F");
        let mut page = 0;
        loop {
            let lines = api
                .get(&format!(
                    "/inventory/{product}/history?page={page}&size=1000"
                ))
                .await
                .expect(200)
                .json();
            let lines = lines.as_array().cloned().unwrap_or_default();
            ids.extend(
                lines
                    .iter()
                    .filter_map(|l| l["correlationId"].as_str().map(str::to_owned)),
            );
            if lines.len() < 1000 {
                break;
            }
            page += 1;
        }
    }
    ids
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
    let dir = tempfile::tempdir().expect("report dir");

    let store = fuzz("store", cluster.store(1), dir.path()).await;
    // The store run may have disconnected it; Central's run wants it reachable.
    cluster.store(1).post_empty("/connected").await.expect(200);
    cluster.wait_until_all_online().await;
    let central = fuzz("central", &cluster.central, dir.path()).await;

    // No ledger line comes from a request that was refused. (An id the fuzzer sent twice, once
    // refused and once accepted, belongs to the accepted one.)
    let at_store = exchanges(&store.har);
    let at_central = exchanges(&central.har);
    let all: Vec<&Exchange> = at_store.iter().chain(&at_central).collect();
    let accepted: HashSet<&str> = all
        .iter()
        .filter(|e| e.status < 400)
        .filter_map(|e| e.request_id.as_deref())
        .collect();
    let refused: HashSet<&str> = all
        .iter()
        .filter(|e| e.status >= 400)
        .filter_map(|e| e.request_id.as_deref())
        .filter(|id| !accepted.contains(id))
        .collect();
    let mut lines = ledger_correlations(cluster.store(1)).await;
    lines.extend(ledger_correlations(cluster.store(2)).await);
    let written_by_refused: Vec<&String> = lines
        .iter()
        .filter(|id| refused.contains(id.as_str()))
        .collect();
    let writes = |exchanges: &[Exchange], method: &str, prefix: &str| {
        exchanges
            .iter()
            .filter(|e| e.method == method && e.path.starts_with(prefix) && e.status < 300)
            .count()
    };
    let store_writes = writes(&at_store, "PUT", "/inventory/")
        + writes(&at_store, "POST", "/inventory")
        + writes(&at_store, "POST", "/purchase/");
    println!(
        "store: {} | central: {} | {} requests ({} request ids refused); {} ledger lines; \
         accepted: store writes {store_writes} (adjustments {}), central purchases {}, \
         reservations {}, transfers {}",
        store.summary,
        central.summary,
        all.len(),
        refused.len(),
        lines.len(),
        writes(&at_store, "POST", "/inventory/adjustments"),
        writes(&at_central, "POST", "/purchase/"),
        writes(&at_central, "POST", "/reservations"),
        writes(&at_central, "POST", "/transfers"),
    );
    // Each offending id with every exchange that carried it, so that a failure names the route
    // and the answer.
    let offenders: Vec<String> = written_by_refused
        .iter()
        .map(|id| {
            let carried: Vec<String> = all
                .iter()
                .filter(|e| e.request_id.as_deref() == Some(id.as_str()))
                .map(|e| format!("{} {} → {}", e.method, e.path, e.status))
                .collect();
            format!("{id}: {carried:?}")
        })
        .collect();
    assert!(
        written_by_refused.is_empty(),
        "ledger lines written by refused requests: {offenders:?}"
    );
    assert!(
        refused.len() > 10 && !accepted.is_empty(),
        "the fuzzing reached nothing: {} refused, {} accepted",
        refused.len(),
        accepted.len()
    );
    assert!(
        store_writes > 0,
        "no write ever succeeded at the store: the fuzzing reached no data"
    );
    cluster.shutdown().await;
}
