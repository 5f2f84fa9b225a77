//! A minimal server-sent events client for tests: connects, parses `event`/`id`/`data` blocks,
//! skips keep-alive comments.

use std::time::Duration;

use serde_json::Value;

/// One event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field (`message` when absent).
    pub event: String,
    /// The `id` field, if any.
    pub id: Option<String>,
    /// The `data` field(s), joined by newlines.
    pub data: String,
}

impl SseEvent {
    /// The data parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// An open event stream.
#[derive(Debug)]
pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    /// `GET url`, with `Last-Event-ID` when given; panics unless the answer is a 200 event stream.
    pub async fn connect(url: &str, last_event_id: Option<&str>) -> Self {
        Self::connect_with_token(url, last_event_id, None).await
    }

    /// [`connect`](Self::connect) with `Authorization: Bearer token` when a token is given.
    pub async fn connect_with_token(
        url: &str,
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) -> Self {
        let mut request = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        assert_eq!(response.status().as_u16(), 200, "GET {url}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "GET {url}: {content_type}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    fn parse(block: &str) -> Option<SseEvent> {
        let mut event = None;
        let mut id = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = Some(value.to_owned()),
                "id" => id = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
        (event.is_some() || !data.is_empty()).then(|| SseEvent {
            event: event.unwrap_or_else(|| "message".into()),
            id,
            data: data.join("\n"),
        })
    }

    /// The next event, or `None` when the stream ends or nothing comes within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = Self::parse(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until one satisfies `wanted`, returning it and those skipped before it;
    /// panics after `limit`.
    pub async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&SseEvent) -> bool,
    ) -> (SseEvent, Vec<SseEvent>) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(event) if wanted(&event) => return (event, skipped),
                Some(event) => skipped.push(event),
                None => panic!("no event {what} within {limit:?}; saw {skipped:?}"),
            }
        }
    }
}
