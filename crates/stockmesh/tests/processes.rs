//! The real binary: Central and stores as separate OS processes over a private `redis-server`.

use stockmesh_testkit::demo::walk_the_spec_demo;
use stockmesh_testkit::process::ProcessCluster;

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_demo_passes_with_every_node_a_separate_process() {
    let mut cluster = ProcessCluster::start(BIN, 2).await;
    walk_the_spec_demo(&cluster.central.api, &cluster.stores[0].api).await;
    for store in &mut cluster.stores {
        assert!(store.terminate().await, "a store exits cleanly on SIGTERM");
    }
    assert!(
        cluster.central.terminate().await,
        "central exits cleanly on SIGTERM"
    );
}

#[tokio::test]
async fn help_explains_every_subcommand() {
    for sub in ["up", "central", "store"] {
        let out = std::process::Command::new(BIN)
            .args([sub, "--help"])
            .output()
            .expect("runs");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("STOCKMESH_"),
            "{sub} --help names the env vars: {text}"
        );
    }
}

#[tokio::test]
async fn a_bad_flag_is_refused_with_a_message() {
    let out = std::process::Command::new(BIN)
        .args(["store", "--id", "bad id"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("storeId must be"));
}

#[tokio::test]
async fn flags_that_cannot_work_together_refuse_to_start_naming_the_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], [&str; 2]); 3] = [
        (
            &[
                "central",
                "--purchase-wait",
                "40s",
                "--purchase-deadline",
                "30s",
            ],
            ["--purchase-wait", "--purchase-deadline"],
        ),
        (
            &["store", "--id", "s1", "--heartbeat-interval", "60s"],
            ["--heartbeat-interval", "--heartbeat-timeout"],
        ),
        (
            &[
                "central",
                "--purchase-wait",
                "10s",
                "--request-timeout",
                "5s",
            ],
            ["--purchase-wait", "--request-timeout"],
        ),
    ];
    for (args, flags) in cases {
        let out = std::process::Command::new(BIN)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("STOCKMESH_DB", dir.path().join("never.db"))
            .env("STOCKMESH_REDIS", "redis://127.0.0.1:1")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must not start: {stderr}");
        for flag in flags {
            assert!(
                stderr.contains(flag),
                "{args:?}: the message names {flag}: {stderr}"
            );
        }
        assert!(!dir.path().join("never.db").exists(), "nothing was created");
    }
}

/// The benchmark suite's smoke configuration runs and reports every figure (no goals judged:
/// timings on shared machines are noisy).
#[tokio::test]
async fn the_bench_smoke_run_reports_every_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let out = tokio::process::Command::new(BIN)
        .args(["bench", "--smoke", "--runs", "2", "--json"])
        .arg(&json)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid json");
    let keys: Vec<&str> = report["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    for key in [
        "raw.broker_round_trip",
        "raw.sqlite_commits",
        "propagation.p99",
        "purchase.p99",
        "backlog.converged",
        "throughput.events",
        "throughput.ratio",
        "local.throughput",
        "local.ratio",
        "rss.store_idle",
        "rss.central_idle",
        "rss.central_items",
        "start.ready",
        "auth.verify",
        "cluster.propagation.p99",
        "cluster.purchase.p99",
        "cluster.throughput.events",
        "postgres.propagation.p99",
        "postgres.purchase.p99",
        "postgres.throughput.events",
        "postgres.replicas2.purchase.p99",
        "postgres.replicas2.throughput.events",
    ] {
        assert!(keys.contains(&key), "missing figure {key}: {keys:?}");
    }
    assert!(
        !keys.iter().any(|k| k.starts_with("catalogue.")),
        "the catalogue scenario runs only when named: {keys:?}"
    );
    assert!(
        report["figures"]
            .as_array()
            .expect("figures")
            .iter()
            .all(|f| f["value"]
                .as_f64()
                .is_some_and(|v| v.is_finite() && v > 0.0)),
        "every figure is a positive number"
    );
    // Two runs: each kept whole, each figure with both values and their range.
    assert_eq!(report["runs"].as_array().map(Vec::len), Some(2));
    for figure in report["figures"].as_array().expect("figures") {
        let values = figure["spread"]["values"].as_array().expect("values");
        assert_eq!(values.len(), 2, "{figure}");
        let (min, max) = (
            figure["spread"]["min"].as_f64().expect("min"),
            figure["spread"]["max"].as_f64().expect("max"),
        );
        assert!(
            min <= figure["value"].as_f64().expect("value")
                && figure["value"].as_f64().expect("value") <= max,
            "{figure}"
        );
    }
}

/// `--log-format json` writes one JSON object per line, and `--otlp-endpoint` to a collector that
/// is not there neither stops the node nor its requests.
#[tokio::test]
async fn json_logs_and_an_absent_trace_collector_do_not_stop_a_node() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "--otlp-endpoint",
            "http://127.0.0.1:9",
        ])
        .args([
            "store",
            "--id",
            "store-j",
            "--standalone",
            "--listen",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(&db)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = stdout.next_line().await.expect("read").expect("a line");
    let url = &line[line.find("http://").expect("a URL")..];
    let api = stockmesh_testkit::Api::new(url.trim());
    api.create_item("p").await.expect(201);
    api.get("/readyz").await.expect(200);
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let log = stderr.next_line().await.expect("read").expect("a log line");
    let parsed: serde_json::Value = serde_json::from_str(&log).expect("a JSON log line");
    assert!(
        parsed["level"].is_string() && parsed["fields"].is_object(),
        "{log}"
    );
    let _ = child.kill().await;
}

/// The catalogue scenario (opt-in) fills both databases, reads pages at every depth by number and
/// by cursor (checking each page starts where it should), and reports every figure.
#[tokio::test]
async fn the_bench_catalogue_smoke_run_reports_every_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let out = tokio::process::Command::new(BIN)
        .args(["bench", "--smoke", "--only", "catalogue", "--json"])
        .arg(&json)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid json");
    let figures = report["figures"].as_array().expect("figures");
    let keys: Vec<&str> = figures.iter().filter_map(|f| f["key"].as_str()).collect();
    for node in ["store", "central"] {
        for figure in [
            "fill",
            "start",
            "first_p99",
            "offset_mid_p99",
            "offset_last_p99",
            "after_mid_p99",
            "after_last_p99",
            "rss_growth",
        ] {
            let key = format!("catalogue.{node}.{figure}");
            assert!(
                keys.contains(&key.as_str()),
                "missing figure {key}: {keys:?}"
            );
        }
    }
    assert!(
        figures
            .iter()
            .all(|f| f["value"].as_f64().is_some_and(f64::is_finite)),
        "every figure is a number"
    );
    assert!(
        !keys.iter().any(|k| !k.starts_with("catalogue.")),
        "only the catalogue ran: {keys:?}"
    );
}
