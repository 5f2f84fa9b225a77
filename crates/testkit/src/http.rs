//! A typed HTTP client for tests.

use reqwest::{Method, Response};
use serde_json::Value;

/// A client bound to one service's base URL.
#[derive(Debug, Clone)]
pub struct Api {
    /// e.g. `http://127.0.0.1:40123`.
    pub base: String,
    client: reqwest::Client,
    token: Option<String>,
}

/// A response reduced to what tests look at.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// The body parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// Panics with the body unless the status is `expected`.
    #[track_caller]
    pub fn expect(self, expected: u16) -> Self {
        assert_eq!(
            self.status, expected,
            "expected HTTP {expected}, got {}: {}",
            self.status, self.text
        );
        self
    }
}

impl Api {
    /// A client for the service at `base`.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            token: None,
        }
    }

    /// The same client, sending `Authorization: Bearer <token>` unless a request names its own.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sends a request with an optional raw body and content type.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(token) = &self.token
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        Self::reply(response).await
    }

    async fn reply(response: Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            text,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None, &[]).await
    }

    /// `POST path` without a body.
    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None, None, &[]).await
    }

    /// A request with a JSON body.
    pub async fn json(&self, method: Method, path: &str, body: &Value) -> Reply {
        self.send(
            method,
            path,
            Some("application/json"),
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.json(Method::POST, path, body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.json(Method::PUT, path, body).await
    }

    /// Store: `POST /inventory {"productId"}`.
    pub async fn create_item(&self, product: &str) -> Reply {
        self.post("/inventory", &serde_json::json!({ "productId": product }))
            .await
    }

    /// Store: `PUT /inventory/{product} {"quantity"}`.
    pub async fn set_quantity(&self, product: &str, quantity: i64) -> Reply {
        self.put(
            &format!("/inventory/{product}"),
            &serde_json::json!({ "quantity": quantity }),
        )
        .await
    }

    /// Store: `POST /purchase/{product} {"quantity"}`.
    pub async fn purchase(&self, product: &str, quantity: i64) -> Reply {
        self.post(
            &format!("/purchase/{product}"),
            &serde_json::json!({ "quantity": quantity }),
        )
        .await
    }

    /// Store: the quantity of `product`, or `None` when it answers otherwise than 200.
    pub async fn quantity(&self, path: &str) -> Option<i64> {
        let reply = self.get(path).await;
        (reply.status == 200)
            .then(|| reply.json()["quantity"].as_i64())
            .flatten()
    }
}
