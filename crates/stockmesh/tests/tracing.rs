//! Tracing across events: a remote purchase is one trace. The test runs its own OTLP/gRPC
//! receiver, starts Central and a store as separate processes exporting to it, sends the purchase
//! with a W3C `traceparent`, and checks the parent/child links of the spans received: Central's
//! request is a child of the caller's span, the store's decision a child of a span of that
//! request, and Central's resolution a child of the store's decision.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use stockmesh_testkit::process::NodeProcess;
use stockmesh_testkit::{Persistence, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");

/// Keeps every span exported to it.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_remote_purchase_is_one_trace_from_the_request_to_the_resolution() {
    let receiver = Receiver::default();
    let port = stockmesh_process::free_port().expect("port");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve(([127, 0, 0, 1], port).into()),
    );
    let endpoint = format!("http://127.0.0.1:{port}");

    let redis = RedisServer::start_with(Persistence::AofAlways).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = redis.url();
    let common = [
        "--heartbeat-interval",
        "100ms",
        "--heartbeat-timeout",
        "1s",
        "--redis",
        url.as_str(),
    ];
    let central_db = dir.path().join("central.db").display().to_string();
    let store_db = dir.path().join("store-1.db").display().to_string();
    let mut central_args = vec!["--otlp-endpoint", endpoint.as_str(), "central"];
    // Central reads only the stores it is told of.
    central_args.extend(["--listen", "127.0.0.1:0", "--db", central_db.as_str()]);
    central_args.extend(["--stores", "store-1"]);
    central_args.extend(common);
    let mut store_args = vec!["--otlp-endpoint", endpoint.as_str(), "store"];
    store_args.extend(["--id", "store-1", "--listen", "127.0.0.1:0", "--db"]);
    store_args.push(store_db.as_str());
    store_args.extend(common);
    let mut central = NodeProcess::start(BIN, &central_args).await;
    let mut store = NodeProcess::start(BIN, &store_args).await;

    store.api.create_item("traced").await.expect(201);
    store.api.set_quantity("traced", 5).await.expect(204);
    stockmesh_testkit::eventually(
        "Central sees the item online",
        Duration::from_secs(10),
        async || central.api.get("/products/traced").await.json()["onlineTotal"] == 5,
    )
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    central
        .api
        .send(
            reqwest::Method::POST,
            "/purchase/store-1/traced",
            Some("application/json"),
            Some(json!({"quantity": 2}).to_string().into_bytes()),
            &[("traceparent", traceparent.as_str())],
        )
        .await
        .expect(200);

    // A graceful stop flushes each node's exporter.
    assert!(store.terminate().await, "the store stops");
    assert!(central.terminate().await, "Central stops");

    let trace: Vec<Span> = {
        let mut found = Vec::new();
        stockmesh_testkit::eventually("the trace's spans", Duration::from_secs(15), async || {
            let spans = receiver.spans.lock().unwrap_or_else(|e| e.into_inner());
            found = spans
                .iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .cloned()
                .collect();
            ["http", "command", "resolve"]
                .iter()
                .all(|name| found.iter().any(|s| s.name == *name))
        })
        .await;
        found
    };
    let by_name = |name: &str| {
        trace
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {trace:?}"))
    };
    let request = by_name("http");
    let decision = by_name("command");
    let resolution = by_name("resolve");
    assert_eq!(
        hex(&request.parent_span_id),
        caller_span,
        "Central's request is not a child of the caller's span"
    );
    let ids: Vec<String> = trace.iter().map(|s| hex(&s.span_id)).collect();
    let central_side: Vec<String> = trace
        .iter()
        .filter(|s| s.name != "command")
        .map(|s| hex(&s.span_id))
        .collect();
    assert!(
        central_side.contains(&hex(&decision.parent_span_id)),
        "the store's decision is not a child of Central's request: {ids:?}"
    );
    assert_eq!(
        hex(&resolution.parent_span_id),
        hex(&decision.span_id),
        "Central's resolution is not a child of the store's decision"
    );
    server.abort();
}
