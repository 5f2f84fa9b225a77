//! Extractors that turn every malformed input into a 4xx problem with a useful `detail`.
//!
//! They replace axum's own; a handler that takes `ApiJson<T>` never sees bad input, and the
//! client never sees axum's plain-text rejections.
//!
//! A `detail` names the field and the rule it breaks (`quantity must be an integer from 1 to
//! 1,000,000,000, got 0`, `productId is required`, `the body is not valid JSON`). It never quotes
//! a parser (serde messages, line and column numbers, Rust type names): those are not a contract,
//! and they tell a stranger what the server is built with. The parser's own words go to the log,
//! inside the request's span (which carries its correlation id).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// The largest request body accepted, in bytes. Every body of this API is a few dozen bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A JSON body. Rejections: 415 without `Content-Type: application/json`, 413 over the body
/// limit, 400 for malformed JSON, a wrong type, a missing or unknown field, or a value that
/// breaks a domain rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Payload Too Large",
                    format!("the body exceeds the limit of {} bytes", BODY_LIMIT),
                )
            } else {
                tracing::debug!(cause = %rejection.body_text(), "request body unreadable");
                Problem::bad_request("the body could not be read")
            }
        })?;
        parse_json(&bytes).map(Self)
    }
}

/// `application/json`, or any `application/*+json`, with or without parameters.
pub(crate) fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body, with a problem that names the field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        tracing::debug!(field = %path, cause = %inner, "request body rejected");
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = without_position(&inner);
                Problem::bad_request(data_detail(field(&path), &message))
            }
            _ => Problem::bad_request("the body is not valid JSON"),
        }
    })?;
    de.end().map_err(|error| {
        tracing::debug!(cause = %error, "request body rejected");
        Problem::bad_request("the body is not valid JSON: it goes on after its value")
    })?;
    Ok(value)
}

/// serde_json's message without its ` at line L column C` suffix.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .map_or_else(|| message.clone(), str::to_owned)
}

/// The field a path names, or `None` for the value as a whole.
fn field(path: &str) -> Option<&str> {
    (!path.is_empty() && path != "." && path != "?").then_some(path)
}

/// Reads `x` out of a message such as ``missing field `x` ``.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// What serde calls the types our bodies use, in words.
fn in_words(expected: &str) -> String {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "isize"
        | "usize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a string" | "a borrowed string" | "string" => "a string".to_owned(),
        "a boolean" | "bool" => "true or false".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("a map") => {
            "a JSON object".to_owned()
        }
        other if other.starts_with("a sequence") || other.starts_with("tuple") => {
            "a list".to_owned()
        }
        // Our domain types state their rule here ("an integer from 1 to 1,000,000,000").
        other => other.to_owned(),
    }
}

/// The detail of a value that parsed as JSON (or as a query string) but does not fit the request.
///
/// serde's own messages have a stable shape (`missing field`, `unknown field`, `invalid type`,
/// `invalid value`); each is reworded to name the field and the rule. Anything else is a domain
/// type's message, which already does (`productId must be …`), or is replaced by a generic one.
fn data_detail(field: Option<&str>, message: &str) -> String {
    let subject = field.map_or_else(|| "the body".to_owned(), str::to_owned);
    if message.starts_with("missing field `") {
        let name = quoted(message).unwrap_or("a field");
        return format!("{name} is required");
    }
    if message.starts_with("unknown field `") {
        let name = quoted(message).unwrap_or("?");
        let allowed = message
            .split_once(", expected ")
            .map(|(_, rest)| rest.replace('`', ""))
            .map(|rest| {
                rest.strip_prefix("one of ")
                    .map(str::to_owned)
                    .unwrap_or(rest)
            });
        return match allowed {
            Some(allowed) if !allowed.starts_with("no fields") => {
                format!("{name} is not a field of this request (allowed: {allowed})")
            }
            _ => format!("{name} is not a field of this request"),
        };
    }
    if message.starts_with("duplicate field `") {
        let name = quoted(message).unwrap_or("a field");
        return format!("{name} is given twice");
    }
    if message.starts_with("invalid type: ")
        || message.starts_with("invalid value: ")
        || message.starts_with("invalid length ")
    {
        return match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("{subject} must be {}", in_words(expected)),
            None => format!("{subject} is not valid"),
        };
    }
    if is_integer_parse_error(message) {
        return format!("{subject} must be an integer");
    }
    // A domain type's message names its field and rule ("quantity must be …").
    if message.contains(" must be ") {
        return message.to_owned();
    }
    format!("{subject} is not valid")
}

/// The messages of `ParseIntError`, which a query string's numbers fail with.
fn is_integer_parse_error(message: &str) -> bool {
    matches!(
        message,
        "invalid digit found in string"
            | "cannot parse integer from empty string"
            | "number too large to fit in target type"
            | "number too small to fit in target type"
    )
}

/// Path parameters, parsed through their domain types (e.g. `ProductId`). Rejection: 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| path_problem(&rejection))
    }
}

fn path_problem(rejection: &PathRejection) -> Problem {
    use axum::extract::path::ErrorKind;
    tracing::debug!(cause = %rejection.body_text(), "path rejected");
    let PathRejection::FailedToDeserializePathParams(failed) = rejection else {
        // The route and its extractor disagree: our bug, not the client's.
        tracing::error!(cause = %rejection.body_text(), "path parameters missing");
        return Problem::internal();
    };
    let detail = match failed.kind() {
        ErrorKind::Message(message) => data_detail(None, message),
        ErrorKind::DeserializeError { key, message, .. } => data_detail(Some(key), message),
        ErrorKind::ParseErrorAtKey {
            key, expected_type, ..
        } => format!("{key} must be {}", in_words(expected_type)),
        ErrorKind::InvalidUtf8InPathParam { key } => {
            format!("{key} must be valid UTF-8 once percent-decoded")
        }
        _ => "the path is not valid".to_owned(),
    };
    let detail = if detail == "the body is not valid" {
        "the path is not valid".to_owned()
    } else {
        detail.replace("the body", "the path")
    };
    Problem::bad_request(detail)
}

/// Query parameters. Rejection: 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Self)
    }
}

/// Parses a query string, with a problem that names the parameter on failure.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Problem> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        tracing::debug!(parameter = %path, cause = %inner, "query rejected");
        let detail = data_detail(field(&path), &inner.to_string());
        Problem::bad_request(detail.replace("the body", "the query string"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        quantity: stockmesh_core::PurchaseQuantity,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Query {
        page: Option<i64>,
        store_id: Option<stockmesh_core::StoreId>,
    }

    fn detail(body: &str) -> String {
        parse_json::<Body>(body.as_bytes())
            .expect_err("rejected")
            .detail
    }

    #[test]
    fn json_details_name_the_field_and_the_rule_never_the_parser() {
        let rule = "quantity must be an integer from 1 to 1,000,000,000";
        for (body, expected) in [
            ("{\"quantity\":", "the body is not valid JSON"),
            ("not json", "the body is not valid JSON"),
            ("{\"quantity\":1} x", "the body is not valid JSON"),
            ("{\"quantity\":\"7\"}", rule),
            ("{\"quantity\":1.5}", rule),
            ("{\"quantity\":99999999999999999999999}", rule),
            ("{\"quantity\":true}", rule),
            (
                "{\"quantity\":0}",
                "quantity must be an integer from 1 to 1,000,000,000, got 0",
            ),
            ("{}", "quantity is required"),
            (
                "{\"quantity\":1,\"extra\":2}",
                "extra is not a field of this request (allowed: quantity)",
            ),
            ("[]", "the body must be a JSON object"),
            ("null", "the body must be a JSON object"),
        ] {
            let got = detail(body);
            assert!(got.starts_with(expected), "{body}: {got:?}");
            for internal in ["line", "column", "i64", "struct", "`"] {
                assert!(!got.contains(internal), "{body}: {got:?} quotes the parser");
            }
        }
    }

    #[test]
    fn query_details_name_the_parameter() {
        let err = parse_query::<Query>("page=abc").expect_err("rejected");
        assert_eq!(err.detail, "page must be an integer");
        let err = parse_query::<Query>("storeId=a%20b").expect_err("rejected");
        assert!(err.detail.starts_with("storeId must be"), "{}", err.detail);
        let ok = parse_query::<Query>("page=2&storeId=s-1").expect("parses");
        assert_eq!(ok.page, Some(2));
    }
}
