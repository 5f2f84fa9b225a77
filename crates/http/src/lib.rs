//! # stockmesh-http
//!
//! The HTTP conventions that Store and Central share, so both speak one dialect.
//!
//! ## Layout
//! - [`auth`]: bearer tokens (Ed25519 JWT), roles, and the one table per node of who may do what;
//!   key files ([`auth::keys`]) and protected mode ([`auth::protect`]).
//! - [`bodies`]: request bodies both services accept.
//! - [`problem`]: RFC 9457 `application/problem+json` errors, and the middleware that fills in
//!   each problem's `instance`.
//! - [`extract`]: `Json`, `Path` and `Query` extractors whose every rejection is a problem with a
//!   useful `detail` (never axum's plain-text default).
//! - [`idempotency`]: the `Idempotency-Key` header and its extractor.
//! - [`pagination`]: `?page&size` parsing and the `X-Total-Count` / `Link` response headers.
//! - [`paths`]: the well-known paths every node serves (`/openapi.json`, `/docs`).
//! - [`correlation`]: the correlation id of each request (from `X-Request-Id` or `traceparent`,
//!   else new), echoed in the response and handed to handlers.
//! - [`metrics`]: the Prometheus recorder, request metrics, and every metric's description.
//! - [`openapi`]: what every operation of the OpenAPI spec shares, `/openapi.json` and the
//!   embedded API reference page at `/docs/`.
//! - [`router`]: the layers every service router gets (body limit, fallbacks, tracing).
//! - [`running`]: a node's server and workers, stopped together by one token.
//! - [`server`]: the one serve loop of every node: connection cap, header, idle and request
//!   timeouts, graceful shutdown; and the open-file limit.
//! - [`tls`]: the HTTPS acceptor from a certificate file and its owner-only key.
//! - [`trace`]: making a span the child of a remote `traceparent` (requests, envelopes).
//! - [`uri`]: percent-encoding of the values put into `Location` and `Link`.

pub mod auth;
pub mod bodies;
pub mod correlation;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod paths;
pub mod problem;
pub mod router;
pub mod running;
pub mod server;
pub mod tls;
pub mod trace;
pub mod uri;

pub use correlation::Correlation;
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use idempotency::{IdempotencyKey, MaybeIdempotencyKey};
pub use pagination::{Page, Paged};
pub use problem::Problem;
