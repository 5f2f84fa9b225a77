//! The correlation id of each request: taken from `X-Request-Id`, else from the trace id of a
//! W3C `traceparent`, else generated; echoed in the response's `X-Request-Id`; carried into every
//! event the request causes.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use stockmesh_core::CorrelationId;

/// The header that carries the correlation id both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The W3C trace context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The correlation id of the request being handled.
#[derive(Debug, Clone)]
pub struct Correlation(pub CorrelationId);

/// Reads the trace id out of `traceparent` (`00-<32 hex trace id>-<16 hex span id>-<flags>`).
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let _version = parts.next()?;
    let trace = parts.next()?;
    let valid = trace.len() == 32
        && trace.bytes().all(|b| b.is_ascii_hexdigit())
        && trace.bytes().any(|b| b != b'0');
    valid.then_some(trace)
}

fn from_headers(parts: &axum::http::HeaderMap) -> CorrelationId {
    let header = |name: &HeaderName| parts.get(name).and_then(|v| v.to_str().ok());
    header(&REQUEST_ID)
        .and_then(CorrelationId::from_client)
        .or_else(|| {
            header(&TRACEPARENT)
                .and_then(trace_id)
                .and_then(CorrelationId::from_client)
        })
        .unwrap_or_else(CorrelationId::generate)
}

/// Middleware: settles the request's correlation id, records it on the request's span, and
/// echoes it in the response.
pub async fn correlate(mut request: Request, next: Next) -> Response {
    let id = from_headers(request.headers());
    tracing::Span::current().record("correlation_id", id.as_str());
    request.extensions_mut().insert(Correlation(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Correlation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Correlation>()
            .cloned()
            .unwrap_or_else(|| Correlation(from_headers(&parts.headers))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_is_read_from_a_valid_traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(tp), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("garbage"), None);
    }

    #[test]
    fn request_id_wins_over_traceparent() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc"));
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(from_headers(&headers).as_str(), "abc");
        headers.remove(REQUEST_ID);
        assert_eq!(
            from_headers(&headers).as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
