//! The one way every node serves HTTP: an accept loop with a cap on concurrent connections, a
//! deadline for each request head, an idle keep-alive timeout, a request timeout, and graceful
//! shutdown.
//!
//! Each connection costs a file descriptor and some memory, so a client that opens thousands and
//! sends nothing (or a header byte every few seconds, "slowloris") must not be able to keep them:
//!
//! - at most [`ServerLimits::max_connections`] at once; one more is answered at once with a 503
//!   problem and closed (and a warning is logged, at most every 10 s);
//! - a connection must deliver a complete request head within
//!   [`ServerLimits::header_read_timeout`] of its first byte;
//! - a connection with no request in progress and no byte received for
//!   [`ServerLimits::idle_timeout`] is closed (including a new one that sends nothing);
//! - a request must be answered within [`ServerLimits::request_timeout`] (503 problem);
//! - a request head is at most 64 KiB and 100 header lines (hyper answers 431 beyond);
//! - a streamed answer (server-sent events) marked with [`Streaming`] can have its connection
//!   closed at once by its handler (a client that stopped reading cannot be reached through the
//!   body, which is only polled when the socket drains).
//!
//! hyper's own `header_read_timeout` starts when a connection waits for a head, idle time
//! included, so it cannot tell "idle" from "slow"; a small watchdog per connection does, from
//! the bytes read and the requests in flight. hyper's timer stays on as a backstop.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::problem::Problem;

/// The largest request head accepted, in bytes (hyper's read buffer).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header lines a request may have.
pub const MAX_HEADERS: usize = 100;

/// A response extension marking a long-lived streamed answer whose handler may close the
/// connection at once by cancelling `hangup` (the request counts as in progress until its body
/// is sent, like every answer).
#[derive(Debug, Clone)]
pub struct Streaming {
    /// Cancelled to close the connection without waiting for the body.
    pub hangup: CancellationToken,
}

/// The bounds of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; one more is refused with a 503.
    pub max_connections: usize,
    /// Time from a request head's first byte to its last.
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in progress and nothing received.
    pub idle_timeout: Duration,
    /// Time from a complete request head to the answer (body read included).
    pub request_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit, and returns the new soft
/// limit. Every connection is a file; the usual soft limit (1024) is far below what the machine
/// allows.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The TLS side of an HTTPS listener: its certificate and key.
#[derive(Clone)]
pub struct TlsAcceptor(tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

/// A TLS acceptor for the HTTP listener from a PEM certificate chain and its PEM private key.
pub fn tls_acceptor(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the private key is not PEM: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("unusable certificate or key: {e}"))?;
    Ok(TlsAcceptor(tokio_rustls::TlsAcceptor::from(Arc::new(
        config,
    ))))
}

/// Serves `app` on `listener` within `limits` until `stop` fires; then closes idle connections,
/// lets requests in progress finish (for at most the request timeout) and returns. With `tls`,
/// each connection first completes a TLS handshake (within the header read timeout).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
    limits: ServerLimits,
    tls: Option<TlsAcceptor>,
) {
    let app = app.layer(middleware::from_fn_with_state(
        limits.request_timeout,
        request_timeout,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let refused = RateLimitedWarning::new(Duration::from_secs(10));
    let failed = RateLimitedWarning::new(Duration::from_secs(10));
    let refusal = refusal_response();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Typically EMFILE: out of file descriptors. Pause rather than spin.
                if let Some(count) = failed.note() {
                    tracing::warn!(%error, count, "cannot accept connections");
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Non-blocking: a fresh socket's send buffer takes these few bytes at once, and a
            // refusal must cost no task and no wait.
            let _ = stream.try_write(&refusal);
            if let Some(count) = refused.note() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused = count,
                    "connection limit reached; refusing new connections with 503"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(stream, app, limits, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(
                        limits.header_read_timeout,
                        acceptor.0.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => serve_connection(stream, app, limits, stop).await,
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    let grace = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period; dropping them"
        );
    }
}

/// The bytes of the 503 that a connection over the cap receives.
fn refusal_response() -> Vec<u8> {
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too Many Connections",
        "the server holds as many connections as it allows; retry shortly",
    );
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        crate::problem::PROBLEM_JSON,
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// Middleware: answers 503 when the inner service takes longer than the request timeout. The
/// handler's future is dropped, so an open transaction rolls back; one that committed stays.
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, limit_ms = limit.as_millis(), "request timed out");
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Request Timeout",
                format!(
                    "the request was not answered within {} ms; it may or may not have taken effect",
                    limit.as_millis()
                ),
            );
            problem.instance = Some(path);
            problem.into_response()
        }
    }
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    app: Router,
    limits: ServerLimits,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let _closed = activity.closed.clone().drop_guard();
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
        scan: HeadScan::default(),
    });
    let service = TowerToHyperService::new(Counted {
        inner: app,
        activity: activity.clone(),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // A backstop only: the watchdog below closes slow and idle connections first.
        .header_read_timeout(limits.idle_timeout + limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        why = watchdog(&activity, limits) => {
            tracing::debug!(why, "closing connection");
        }
        () = activity.hangup.cancelled() => {
            tracing::debug!("closing a streaming connection on its handler's request");
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = watchdog(&activity, limits) => {}
            }
        }
    }
}

/// Resolves when the connection has been idle, or slow to send a head, for too long. Never while
/// a request is in progress: that one is bounded by the request timeout.
async fn watchdog(activity: &Activity, limits: ServerLimits) -> &'static str {
    loop {
        let now = activity.now_ms();
        let (deadline, why) = if activity.in_flight.load(Ordering::Acquire) > 0 {
            (now + millis(limits.idle_timeout), "")
        } else {
            match activity.head_started_ms.load(Ordering::Acquire) {
                NONE => (
                    activity.idle_since_ms.load(Ordering::Acquire) + millis(limits.idle_timeout),
                    "idle timeout",
                ),
                started => (
                    started + millis(limits.header_read_timeout),
                    "header read timeout",
                ),
            }
        };
        if deadline <= now && !why.is_empty() {
            return why;
        }
        let wait = Duration::from_millis(deadline.saturating_sub(now).max(1));
        // Woken early when a head starts or a request ends: either moves the deadline.
        let _ = tokio::time::timeout(wait, activity.changed.notified()).await;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2)
}

/// "Not set" for the millisecond stamps of [`Activity`].
const NONE: u64 = u64::MAX;

/// What a connection is doing, in milliseconds since it opened.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Requests whose answer is not yet complete.
    in_flight: AtomicUsize,
    /// When the connection last became idle (opened, or answered its last request).
    idle_since_ms: AtomicU64,
    /// When the first byte arrived since it became idle ([`NONE`] while nothing did).
    head_started_ms: AtomicU64,
    /// Wakes the watchdog when a head starts or a request ends.
    changed: tokio::sync::Notify,
    /// Requests started so far.
    started: AtomicU64,
    /// Cancelled by a [`Streaming`] answer to close the connection.
    hangup: CancellationToken,
    /// Cancelled when the connection has ended.
    closed: CancellationToken,
    /// The position (1 for the first) of a request whose head had both `Transfer-Encoding` and
    /// `Content-Length`; 0 when none had.
    ambiguous_head: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(NONE),
            changed: tokio::sync::Notify::new(),
            started: AtomicU64::new(0),
            hangup: CancellationToken::new(),
            closed: CancellationToken::new(),
            ambiguous_head: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.opened.elapsed())
    }

    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let now = self.now_ms();
            let started = self.head_started_ms.compare_exchange(
                NONE,
                now,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if started.is_ok() {
                self.changed.notify_one();
            }
        }
    }

    /// Counts a request in; returns its position on the connection (1 for the first).
    fn request_started(&self) -> u64 {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn request_finished(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        self.head_started_ms.store(NONE, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }
}

/// A socket that reports the bytes it reads to its connection's [`Activity`], and looks at each
/// request head for the framing headers hyper does not show (see [`HeadScan`]).
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    scan: HeadScan,
}

/// Finds request heads that carry both `Transfer-Encoding` and `Content-Length`.
///
/// hyper follows RFC 9112 §6.3 for such a request: it decodes the body as chunked, drops the
/// `Content-Length` header before the application sees the request, and closes the connection
/// after answering. A proxy in front may have framed the body by its length instead; that
/// disagreement is how requests are smuggled. So the request is refused outright, which needs the
/// raw head: this scanner follows the byte stream of a connection head by head, skipping each
/// body by its framing (a length, or chunks), so that pipelined requests are covered too. It only
/// reads; hyper still parses everything, and whatever it refuses, the scanner may misread without
/// harm (it stops at the first thing it does not understand).
#[derive(Debug, Default)]
struct HeadScan {
    state: ScanState,
    /// The start of the current line, lowercased (enough to recognise a header name or to read a
    /// chunk size).
    line: Vec<u8>,
    /// Heads seen so far.
    heads: u64,
    /// The current head has a `Transfer-Encoding` line / a `Content-Length` line (its value).
    transfer_encoding: bool,
    content_length: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    /// Reading the lines of a head.
    #[default]
    Head,
    /// Skipping this many bytes of a body framed by its length.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping this many bytes of chunk data, then its CRLF.
    ChunkData(u64),
    /// Reading trailer lines after the last chunk.
    Trailers,
    /// Lost (malformed input, or an ambiguous head after which hyper closes): scan no more.
    Stopped,
}

impl HeadScan {
    const PREFIX: usize = 32;

    /// Reads `bytes`; records in `activity` which request (by position) has an ambiguous head.
    fn feed(&mut self, mut bytes: &[u8], activity: &Activity) {
        while let Some((&byte, rest)) = bytes.split_first() {
            match self.state {
                ScanState::Stopped => return,
                ScanState::Body(n) | ScanState::ChunkData(n) if n > 0 => {
                    let skip = usize::try_from(n).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = &bytes[skip..];
                    let left = n - skip as u64;
                    self.state = match self.state {
                        ScanState::Body(_) if left == 0 => ScanState::Head,
                        ScanState::Body(_) => ScanState::Body(left),
                        // The chunk's CRLF is read as an empty chunk-size line.
                        _ if left == 0 => ScanState::ChunkSize,
                        _ => ScanState::ChunkData(left),
                    };
                    continue;
                }
                _ => {}
            }
            bytes = rest;
            if byte != b'\n' {
                if self.line.len() < Self::PREFIX {
                    self.line.push(byte.to_ascii_lowercase());
                }
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.end_of_line(&line, activity);
        }
    }

    fn end_of_line(&mut self, line: &[u8], activity: &Activity) {
        match self.state {
            ScanState::Head if line.is_empty() => self.end_of_head(activity),
            ScanState::Head => {
                if line.starts_with(b"transfer-encoding:") {
                    self.transfer_encoding = true;
                } else if let Some(value) = line.strip_prefix(b"content-length:") {
                    let value = std::str::from_utf8(value).unwrap_or("").trim();
                    match value.parse() {
                        Ok(n) => self.content_length = Some(n),
                        Err(_) => self.state = ScanState::Stopped,
                    }
                }
            }
            // The CRLF after a chunk's data.
            ScanState::ChunkSize if line.is_empty() => {}
            ScanState::ChunkSize => {
                let size = line.split(|b| *b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(size).unwrap_or("").trim();
                self.state = match u64::from_str_radix(size, 16) {
                    Ok(0) => ScanState::Trailers,
                    Ok(n) => ScanState::ChunkData(n),
                    Err(_) => ScanState::Stopped,
                };
            }
            ScanState::Trailers if line.is_empty() => self.state = ScanState::Head,
            ScanState::Trailers => {}
            ScanState::Body(_) | ScanState::ChunkData(_) | ScanState::Stopped => {}
        }
    }

    fn end_of_head(&mut self, activity: &Activity) {
        self.heads += 1;
        let (te, cl) = (self.transfer_encoding, self.content_length);
        self.transfer_encoding = false;
        self.content_length = None;
        self.state = match (te, cl) {
            (true, Some(_)) => {
                activity.ambiguous_head.store(self.heads, Ordering::Release);
                ScanState::Stopped
            }
            (true, None) => ScanState::ChunkSize,
            (false, Some(0) | None) => ScanState::Head,
            (false, Some(n)) => ScanState::Body(n),
        };
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let this = &mut *self;
            this.activity.bytes_read();
            this.scan.feed(&buf.filled()[before..], &this.activity);
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router, counting the requests in progress on its connection.
#[derive(Clone)]
struct Counted {
    inner: Router,
    activity: Arc<Activity>,
}

/// Marks a request finished when its answer has been sent, or when it is dropped unanswered.
struct InFlight(Arc<Activity>);

/// A response body that keeps its request counted as in progress until the last byte is sent,
/// so that a long answer (a change feed, a slow download) is never taken for an idle connection.
struct CountedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for CountedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

impl tower::Service<hyper::Request<hyper::body::Incoming>> for Counted {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let position = self.activity.request_started();
        let guard = InFlight(self.activity.clone());
        // hyper has parsed this head, so the scanner (which sees bytes first) has too.
        let ambiguous = self.activity.ambiguous_head.load(Ordering::Acquire) == position;
        if let Some(refusal) = framing_problem(&request, ambiguous) {
            return Box::pin(async move {
                drop(guard);
                Ok(refusal)
            });
        }
        let call =
            tower::ServiceExt::oneshot(self.inner.clone(), request.map(axum::body::Body::new));
        let activity = self.activity.clone();
        Box::pin(async move {
            let response = call.await?;
            if let Some(streaming) = response.extensions().get::<Streaming>().cloned() {
                // A stalled client's body is never polled again, and all of a body may sit in
                // hyper's buffer after it ended: a hang-up closes the connection either way.
                tokio::spawn(async move {
                    tokio::select! {
                        () = streaming.hangup.cancelled() => activity.hangup.cancel(),
                        () = activity.closed.cancelled() => {}
                    }
                });
            }
            Ok(response.map(|inner| {
                axum::body::Body::new(CountedBody {
                    inner,
                    _in_flight: guard,
                })
            }))
        })
    }
}

/// A 400 for a request whose body framing is ambiguous: both `Transfer-Encoding` and
/// `Content-Length` (`ambiguous`, seen in the raw head), or a transfer coding other than one
/// `chunked` (hyper refuses codings that do not end in `chunked`, but lets `gzip, chunked` or a
/// repeated `chunked` through, and this server decodes no other coding). The connection is closed
/// after the answer, since where this request's body ends is exactly what is in doubt.
fn framing_problem<B>(request: &hyper::Request<B>, ambiguous: bool) -> Option<Response> {
    let codings: Vec<String> = request
        .headers()
        .get_all(axum::http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let detail = if ambiguous {
        "a request must not carry both Transfer-Encoding and Content-Length"
    } else if !codings.is_empty() && codings != ["chunked"] {
        "Transfer-Encoding must be exactly 'chunked'; no other transfer coding is accepted"
    } else {
        return None;
    };
    tracing::info!(
        path = %request.uri().path(),
        transfer_encoding = ?codings,
        detail,
        "refused an ambiguously framed request"
    );
    let mut problem = Problem::bad_request(detail);
    problem.instance = Some(request.uri().path().to_owned());
    let mut response = problem.into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    Some(response)
}

/// A warning that is logged at most once per period, with how many times it happened.
#[derive(Debug)]
struct RateLimitedWarning {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedWarning {
    fn new(period: Duration) -> Self {
        Self {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one occurrence; returns the count to log when a warning is due.
    fn note(&self) -> Option<u64> {
        let mut state = self.state.lock().ok()?;
        state.1 += 1;
        let due = state.0.is_none_or(|last| last.elapsed() >= self.period);
        if due {
            let count = state.1;
            *state = (Some(Instant::now()), 0);
            Some(count)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let bytes = refusal_response();
        let text = String::from_utf8(bytes).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("Too Many Connections"));
    }

    fn ambiguous_position(stream: &[&[u8]]) -> u64 {
        let activity = Activity::new();
        let mut scan = HeadScan::default();
        for piece in stream {
            scan.feed(piece, &activity);
        }
        activity.ambiguous_head.load(Ordering::Acquire)
    }

    #[test]
    fn the_scanner_finds_both_framings_in_any_order_and_after_any_body() {
        let both =
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(ambiguous_position(&[both]), 1);
        let get = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let sized = b"PUT / HTTP/1.1\r\ncontent-length: 5\r\n\r\n\r\n\r\n\n";
        let chunked = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\n\r\n\n\r\n0\r\nt: 1\r\n\r\n";
        let stream = [&get[..], sized, chunked, both].concat();
        assert_eq!(ambiguous_position(&[&stream]), 4);
        // Split anywhere, byte by byte.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(ambiguous_position(&bytes), 4);
        assert_eq!(ambiguous_position(&[get, sized, chunked]), 0);
    }

    /// A body that sends `left` chunks, one every `every`.
    struct SlowBody {
        left: usize,
        every: Duration,
        sleep: Pin<Box<tokio::time::Sleep>>,
    }

    impl http_body::Body for SlowBody {
        type Data = axum::body::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            std::task::ready!(self.sleep.as_mut().poll(cx));
            self.left -= 1;
            let next = Instant::now() + self.every;
            self.sleep.as_mut().reset(next);
            Poll::Ready(Some(Ok(http_body::Frame::data(
                axum::body::Bytes::from_static(b"chunk\n"),
            ))))
        }
    }

    #[tokio::test]
    async fn a_long_answer_is_not_cut_off_as_an_idle_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let every = Duration::from_millis(100);
        let app = Router::new().route(
            "/slow",
            axum::routing::get(move || async move {
                axum::body::Body::new(SlowBody {
                    left: 6,
                    every,
                    sleep: Box::pin(tokio::time::sleep(every)),
                })
            }),
        );
        let limits = ServerLimits {
            idle_timeout: Duration::from_millis(200),
            header_read_timeout: Duration::from_millis(200),
            ..ServerLimits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, stop.clone(), limits, None));
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer))
            .await
            .expect("answered in time")
            .expect("read");
        assert_eq!(
            answer.matches("\r\nchunk\n").count(),
            6,
            "the whole body arrived, though it took longer than the idle timeout: {answer}"
        );
        stop.cancel();
        server.await.expect("server stops");
    }

    #[test]
    fn warnings_are_rate_limited_and_count_what_they_skipped() {
        let warning = RateLimitedWarning::new(Duration::from_secs(3600));
        assert_eq!(warning.note(), Some(1));
        assert_eq!(warning.note(), None);
        assert_eq!(warning.note(), None);
    }
}
