//! Hostile clients: made-up methods and paths, floods of idle and slow connections, ambiguous
//! framing, odd ids, garbage and giant stream entries. Each test asserts that the bound holds and
//! that the node keeps answering.
//!
//! Everything runs on loopback: nodes on port 0 of 127.0.0.1, a private `redis-server` where a
//! broker is needed. Timings and memory are measured elsewhere (README), never asserted here.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockmesh_bus::{RedisBroker, RedisConfig, topology};
use stockmesh_http::server::ServerLimits;
use stockmesh_testkit::store::spawn_store_with;
use stockmesh_testkit::{Api, TestCluster, eventually, spawn_store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(api: &Api) -> String {
    api.base.trim_start_matches("http://").to_owned()
}

/// Sends `request` on a fresh connection and returns what comes back until the server closes
/// it or 5 s pass.
async fn raw(api: &Api, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr(api)).await.expect("connects");
    stream.write_all(request).await.expect("sends");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server has closed `stream` (EOF or reset) within `limit`.
async fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (e.g. 408) before the close: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

async fn stocked_store(limits: ServerLimits) -> stockmesh_testkit::TestStore {
    let _ = stockmesh_http::server::raise_open_file_limit();
    let store = spawn_store_with(|config| config.http = limits).await;
    store.api.create_item("sku-1").await.expect(201);
    store.api.set_quantity("sku-1", 1_000).await.expect(204);
    store
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    // The recorder is shared by every test of this binary: count only this store's series, which
    // carry its own id as the `node` label.
    let id = "store-label-bound";
    let store = spawn_store_with(|config| {
        config.id = stockmesh_core::StoreId::parse(id).expect("valid id");
    })
    .await;
    let own = format!("node=\"{id}\"");
    let series = async || {
        let text = store.api.get("/metrics").await.expect(200).text;
        text.lines()
            .filter(|l| l.starts_with("stockmesh_http_requests_total{") && l.contains(&own))
            .count()
    };
    store.api.get("/healthz").await.expect(200);
    let before = series().await;
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).expect("token");
        store.api.send(method, "/healthz", None, None, &[]).await;
        store
            .api
            .get(&format!("/no/such/path/{i}"))
            .await
            .expect(404);
    }
    let after = series().await;
    let text = store.api.get("/metrics").await.text;
    assert!(!text.contains("MADEUP"), "a made-up method became a label");
    assert!(!text.contains("/no/such/path"), "a raw path became a label");
    // The new series: (other, /healthz, 405) and (GET, unmatched, 404), and the scrapes.
    assert!(
        after <= before + 4,
        "series grew from {before} to {after} with made-up methods and paths"
    );
}

#[tokio::test]
async fn connections_over_the_cap_get_a_503_and_the_node_answers_once_they_go() {
    let limits = ServerLimits {
        max_connections: 50,
        ..ServerLimits::default()
    };
    let store = stocked_store(limits).await;
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(
            TcpStream::connect(addr(&store.api))
                .await
                .expect("connects"),
        );
    }
    // Let the server accept them all before knocking again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..20 {
        let answer = raw(&store.api, b"").await;
        assert!(
            answer.starts_with("HTTP/1.1 503"),
            "over the cap: {answer:?}"
        );
        assert!(answer.contains("Too Many Connections"), "{answer}");
    }
    drop(held);
    eventually(
        "the store to answer once the idle connections are gone",
        Duration::from_secs(5),
        async || {
            raw(
                &store.api,
                b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .await
            .starts_with("HTTP/1.1 200")
        },
    )
    .await;
    store.api.purchase("sku-1", 1).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_connections_are_closed_while_the_node_keeps_answering() {
    const IDLE: usize = 400;
    const SLOW: usize = 400;
    let limits = ServerLimits {
        max_connections: 4096,
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        ..ServerLimits::default()
    };
    let store = stocked_store(limits).await;
    let mut idle = Vec::new();
    let mut slow = Vec::new();
    for _ in 0..IDLE {
        idle.push(
            TcpStream::connect(addr(&store.api))
                .await
                .expect("connects"),
        );
    }
    for _ in 0..SLOW {
        let mut stream = TcpStream::connect(addr(&store.api))
            .await
            .expect("connects");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("sends");
        slow.push(stream);
    }
    // A header line every 200 ms keeps a slowloris connection "active" forever, unless the
    // head has a deadline.
    let trickle = tokio::spawn(async move {
        for _ in 0..8 {
            for stream in &mut slow {
                let _ = stream.write_all(b"x-slow: 1\r\n").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    let started = Instant::now();
    store.api.get("/healthz").await.expect(200);
    store.api.purchase("sku-1", 1).await.expect(200);
    eprintln!(
        "healthz + purchase with {IDLE} idle and {SLOW} slow connections held: {:?}",
        started.elapsed()
    );
    let mut slow = trickle.await.expect("trickle task");
    for (kind, streams) in [("slow-header", &mut slow), ("idle", &mut idle)] {
        for stream in streams.iter_mut() {
            assert!(
                closed_by_server(stream, Duration::from_secs(5)).await,
                "an {kind} connection was still open"
            );
        }
    }
    store.api.get("/healthz").await.expect(200);
}

#[tokio::test]
async fn a_keep_alive_connection_serves_requests_back_to_back() {
    let limits = ServerLimits {
        idle_timeout: Duration::from_millis(500),
        header_read_timeout: Duration::from_millis(500),
        ..ServerLimits::default()
    };
    let store = stocked_store(limits).await;
    let mut stream = TcpStream::connect(addr(&store.api))
        .await
        .expect("connects");
    for _ in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("sends");
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(closed_by_server(&mut stream, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn ambiguous_framing_is_refused_with_a_400_problem() {
    let store = stocked_store(ServerLimits::default()).await;
    let body = "{\"quantity\":1}";
    let cases = [
        format!(
            "POST /purchase/sku-1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\ncontent-length: {}\r\n\r\ne\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ),
        format!(
            "POST /purchase/sku-1 HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
             e\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ),
        format!(
            "POST /purchase/sku-1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: gzip, chunked\r\n\r\ne\r\n{body}\r\n0\r\n\r\n"
        ),
        format!(
            "POST /purchase/sku-1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: gzip\r\n\r\n{body}"
        ),
        format!(
            "POST /purchase/sku-1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\ne\r\n{body}\r\n0\r\n\r\n"
        ),
    ];
    for request in &cases {
        let answer = raw(&store.api, request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{request:?} was answered {answer:?}"
        );
        if answer.contains("\r\n\r\n{") {
            assert!(
                answer.contains("application/problem+json"),
                "{request:?} was answered {answer:?}"
            );
        }
    }
    // A plain request, then an ambiguous one, on one keep-alive connection.
    let answer = raw(
        &store.api,
        format!("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n{}", cases[0]).as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("HTTP/1.1 400"), "{answer}");
    // Nothing was bought.
    assert_eq!(store.api.quantity("/inventory/sku-1").await, Some(1_000));
    // Plain chunked, and a plain length, still work.
    let ok = raw(
        &store.api,
        format!(
            "POST /purchase/sku-1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\ne\r\n{body}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    store.api.purchase("sku-1", 1).await.expect(200);
}

#[tokio::test]
async fn dot_segment_ids_are_refused_and_locations_point_home() {
    let store = spawn_store().await;
    for id in [".", ".."] {
        let reply = store.api.create_item(id).await.expect(400);
        assert_eq!(reply.content_type(), "application/problem+json");
        assert!(
            reply.json()["detail"]
                .as_str()
                .unwrap_or_default()
                .starts_with("productId must be"),
            "{}",
            reply.text
        );
    }
    let reply = store.api.create_item("...").await.expect(201);
    assert_eq!(reply.header("location"), Some("/inventory/..."));
    store.api.get("/inventory/...").await.expect(200);
}

#[tokio::test]
async fn problems_name_the_rule_and_never_the_parser_or_a_driver() {
    let store = stocked_store(ServerLimits::default()).await;
    let reply = store
        .api
        .send(
            reqwest::Method::POST,
            "/purchase/sku-1",
            Some("application/json"),
            Some(b"{\"quantity\": \"x\"}".to_vec()),
            &[],
        )
        .await
        .expect(400);
    assert_eq!(
        reply.json()["detail"],
        "quantity must be an integer from 1 to 1,000,000,000"
    );

    // A store whose broker does not answer: readiness says which dependency, nothing more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = stockmesh_store::StoreConfig::new(
        stockmesh_core::StoreId::parse("store-9").expect("valid"),
        stockmesh_bus::DbConfig::new(dir.path().join("s.db").display().to_string()),
    );
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    let broker = RedisBroker::new(RedisConfig::new("redis://127.0.0.1:1")).expect("broker");
    let node = stockmesh_store::StoreNode::start(config, listener, Some(Arc::new(broker)))
        .await
        .expect("starts");
    let api = Api::new(format!("http://{}", node.addr()));
    let reply = api.get("/readyz").await.expect(503);
    assert_eq!(reply.json()["detail"], "broker unreachable");
    node.shutdown().await;
}

#[tokio::test]
async fn database_files_are_readable_by_their_owner_only() {
    let store = stocked_store(ServerLimits::default()).await;
    let db = store.db_path();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_data_less_entries_are_dead_lettered_and_central_keeps_applying() {
    let cluster = TestCluster::start(1).await;
    let url = cluster.redis.as_ref().expect("runs on Redis").url();
    let client = redis::Client::open(url).expect("client");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let store = stockmesh_core::StoreId::parse("store-1").expect("valid");
    let stream = topology::events_stream(&store);
    let big = "x".repeat(2 * 1024 * 1024);
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("type")
        .arg("INVENTORY_ITEM_UPDATED")
        .arg("data")
        .arg(&big)
        .query_async(&mut redis)
        .await
        .expect("XADD big");
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("type")
        .arg("INVENTORY_ITEM_UPDATED")
        .arg("note")
        .arg("no data here")
        .query_async(&mut redis)
        .await
        .expect("XADD without data");
    let dead = topology::dead_letter_stream(&stream);
    let reasons = async || -> Vec<String> {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&dead)
            .arg("-")
            .arg("+")
            .query_async(&mut redis.clone())
            .await
            .unwrap_or_default();
        entries
            .into_iter()
            .flat_map(|(_, fields)| fields)
            .filter(|(k, _)| k == "reason")
            .map(|(_, v)| v)
            .collect()
    };
    eventually(
        "both entries to be dead-lettered",
        Duration::from_secs(10),
        async || reasons().await.len() == 2,
    )
    .await;
    let reasons = reasons().await;
    assert!(
        reasons[0].contains("exceeds the limit of 1048576 bytes"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "entry has no data field");
    // The dead letter does not copy the giant payload.
    let dead_len: usize = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&dead)
        .query_async(&mut redis)
        .await
        .unwrap_or(0);
    assert!(
        dead_len < 1024 * 1024,
        "dead-letter stream holds {dead_len} bytes"
    );

    cluster.store(1).create_item("after").await.expect(201);
    eventually(
        "Central to apply the next event",
        Duration::from_secs(10),
        async || cluster.central.get("/inventory/store-1/after").await.status == 200,
    )
    .await;
    cluster.central.get("/healthz").await.expect(200);
    cluster.shutdown().await;
}
