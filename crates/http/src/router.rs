//! The layers every service router gets: `GET /healthz`, request metrics, a body limit, problem
//! responses for unknown routes and wrong methods, `instance` on problems, correlation ids and a
//! tracing span per request.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::problem::{Problem, fill_instance};

pub use crate::extract::BODY_LIMIT;

async fn not_found(request: Request) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Not Found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

/// Wraps a service's routes with the shared conventions: `GET /healthz`, authorization by the
/// node's table ([`crate::auth::authorize`]), request metrics labelled with `node`, body limit,
/// problem fallbacks, correlation ids and tracing.
pub fn finish(routes: Router, node: &str, access: crate::auth::Access) -> Router {
    // Installing the recorder here makes every node's metrics visible from its first request.
    let _ = crate::metrics::handle();
    routes
        .route("/healthz", axum::routing::get(healthz))
        .route_layer(middleware::from_fn_with_state(
            std::sync::Arc::new(access),
            crate::auth::authorize,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            crate::metrics::NodeLabel(node.to_owned()),
            crate::metrics::track,
        ))
        .layer(middleware::from_fn(fill_instance))
        .layer(middleware::from_fn(crate::correlation::correlate))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let span = tracing::info_span!(
                        "http",
                        method = %request.method(),
                        path = %request.uri().path(),
                        correlation_id = tracing::field::Empty,
                    );
                    // An incoming W3C trace context makes this request part of the caller's trace.
                    let parent = request
                        .headers()
                        .get(crate::correlation::TRACEPARENT)
                        .and_then(|v| v.to_str().ok());
                    crate::trace::adopt(&span, parent);
                    span
                })
                // A 503 "Store Unavailable" is an answer, not a fault; real 500s are logged
                // with their cause where they arise.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
}
