//! The `Idempotency-Key` request header: a client's promise that two requests with the same key
//! are one request, so a retry returns the first outcome instead of acting twice.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::problem::Problem;

/// The header's name.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A valid key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why a header value is not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// Validates a header value.
    pub fn parse(value: &str) -> Result<Self, InvalidIdempotencyKey> {
        let ok =
            !value.is_empty() && value.len() <= 255 && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidIdempotencyKey)
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Extracts the optional `Idempotency-Key` header; a malformed one is a 400 problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaybeIdempotencyKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeIdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        let text = value
            .to_str()
            .map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII"))?;
        IdempotencyKey::parse(text)
            .map(|key| Self(Some(key)))
            .map_err(|e| Problem::bad_request(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_bounded_and_visible() {
        assert!(IdempotencyKey::parse("order-42").is_ok());
        assert_eq!(IdempotencyKey::parse(""), Err(InvalidIdempotencyKey));
        assert_eq!(IdempotencyKey::parse("a b"), Err(InvalidIdempotencyKey));
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)),
            Err(InvalidIdempotencyKey)
        );
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
    }
}
