//! Prometheus metrics: the process-wide recorder, the HTTP request metrics layer, and the
//! description of every metric stockmesh records (the `# HELP` lines of `GET /metrics`).
//!
//! Every metric carries a `node` label (the store id, or Central's consumer name), so that nodes
//! sharing one process (`stockmesh up`) stay apart. No label ever holds a product id.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds) for every histogram: 0.25 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` when another recorder was
/// installed first (the benchmark installs its own).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric of this process.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// The `GET /metrics` answer: the text exposition of this process's metrics.
pub fn exposition() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        render(),
    )
        .into_response()
}

/// The `GET /readyz` answer for a readiness check's result: 200 `{"status":"ready"}`, or 503
/// `Not Ready` with the reason.
pub fn readiness<E: std::fmt::Display>(check: Result<(), E>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match check {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(why) => crate::Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Not Ready",
            why.to_string(),
        )
        .into_response(),
    }
}

/// The `method` label of a request: one of the methods of RFC 9110 (plus `PATCH`), else `other`.
/// A client may send any token as its method; taken as is, each made-up one would be a new
/// series, and `/metrics` would grow without bound.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Layer state: the node the router serves.
#[derive(Debug, Clone)]
pub struct NodeLabel(pub String);

/// Middleware: counts requests by route and status and records their latency. Every label comes
/// from a bounded set: the route is the matched route template (never the raw path; `unmatched`
/// when none matched), the method one of [`method_label`]'s, the status one this server sends.
pub async fn track(State(node): State<NodeLabel>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    // The status comes from this server, never from the client: a bounded set.
    let status = response.status().as_u16().to_string();
    metrics::counter!("stockmesh_http_requests_total", "node" => node.0.clone(), "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("stockmesh_http_request_duration_seconds", "node" => node.0, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Describes every metric once, for the `# HELP` lines.
fn describe() {
    describe_counter!(
        "stockmesh_http_requests_total",
        "HTTP requests by route, method and status."
    );
    describe_histogram!(
        "stockmesh_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route."
    );
    describe_counter!(
        "stockmesh_heartbeats_sent_total",
        "Heartbeats a store has written."
    );
    describe_gauge!(
        "stockmesh_store_heartbeat_age_seconds",
        Unit::Seconds,
        "Age of each store's heartbeat as Central sees it (+Inf when it has none)."
    );
    describe_gauge!(
        "stockmesh_store_online",
        "1 when Central considers the store online, else 0."
    );
    describe_gauge!(
        "stockmesh_link_connected",
        "1 while a store is connected (POST /connected), 0 while disconnected."
    );
    describe_gauge!(
        "stockmesh_outbox_pending",
        "Committed events not yet marked published (marks trail publishing by at most 50 ms)."
    );
    describe_gauge!(
        "stockmesh_outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest unpublished event (0 when none)."
    );
    describe_counter!(
        "stockmesh_events_published_total",
        "Events published to the broker, by type."
    );
    describe_counter!(
        "stockmesh_events_consumed_total",
        "Events consumed, by type and outcome (applied, duplicate, dead_lettered)."
    );
    describe_histogram!(
        "stockmesh_event_handling_seconds",
        Unit::Seconds,
        "Time to apply one batch of consumed events (one transaction)."
    );
    describe_histogram!(
        "stockmesh_propagation_seconds",
        Unit::Seconds,
        "Store commit to Central apply, per event type."
    );
    describe_gauge!(
        "stockmesh_consumer_lag",
        "Entries of a stream not yet delivered to the group (XINFO GROUPS lag)."
    );
    describe_gauge!(
        "stockmesh_consumer_pending",
        "Entries delivered to the group but not acked."
    );
    describe_gauge!(
        "stockmesh_consumer_oldest_unacked_age_seconds",
        Unit::Seconds,
        "Age of the oldest entry the group has not acked (0 when none)."
    );
    describe_gauge!("stockmesh_stream_length", "Entries in a stream.");
    describe_gauge!(
        "stockmesh_dead_letter_length",
        "Entries in a stream's dead-letter stream."
    );
    describe_counter!(
        "stockmesh_purchases_total",
        "Purchases by scope (local, remote) and outcome (confirmed, insufficient, unavailable, not_found, expired, pending)."
    );
    describe_histogram!(
        "stockmesh_remote_purchase_seconds",
        Unit::Seconds,
        "Remote purchase latency at Central, request to answer."
    );
    describe_counter!(
        "stockmesh_inventory_mutations_total",
        "Inventory changes by kind (create, set, local_sale, remote_sale)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        let made_up = axum::http::Method::from_bytes(b"FROBNICATE").expect("a valid token");
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&axum::http::Method::POST), "POST");
    }
}
