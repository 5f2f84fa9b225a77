//! Joining a remote trace: a span whose cause came from elsewhere (an HTTP request's
//! `traceparent`, an event's or command's envelope) becomes a child of that remote span. The
//! binary installs how ([`install`]), over its OpenTelemetry layer; without it this does nothing.

use std::sync::OnceLock;

static ADOPT: OnceLock<fn(&tracing::Span, &str)> = OnceLock::new();

/// Installs the function that makes a span the child of a `traceparent`. The first wins.
pub fn install(adopt: fn(&tracing::Span, &str)) {
    let _ = ADOPT.set(adopt);
}

/// Makes `span` a child of `traceparent` when it is well formed and trace export is on.
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    if let (Some(adopt), Some(parent)) = (ADOPT.get(), traceparent)
        && stockmesh_core::trace::is_traceparent(parent)
    {
        adopt(span, parent);
    }
}
