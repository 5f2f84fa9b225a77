//! RFC 9457 problem details: every error a client sees is `application/problem+json` with
//! `{type, title, status, detail, instance}`.

use std::borrow::Cow;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One error, as a client receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, stable summary of the kind (e.g. `Insufficient Stock`).
    #[schema(value_type = String)]
    pub title: Cow<'static, str>,
    /// The HTTP status code.
    #[serde(serialize_with = "as_u16")]
    #[schema(value_type = u16, minimum = 400, maximum = 599)]
    pub status: StatusCode,
    /// What exactly went wrong this time.
    pub detail: String,
    /// The request path that failed; set by [`fill_instance`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

fn as_u16<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem with `status`, `title` and `detail`; the type URI is derived from the title.
    pub fn new(
        status: StatusCode,
        title: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        let title = title.into();
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        Self {
            kind: format!("https://stockmesh.dev/problems/{slug}"),
            title,
            status,
            detail: detail.into(),
            instance: None,
        }
    }

    /// 400 `Bad Request` saying what is wrong with the input.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }

    /// 500 with a detail that reveals nothing; the cause must be logged by the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the server failed to handle the request; the cause is in its log",
        )
    }

    fn render(&self) -> Response {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.render();
        // Kept for `fill_instance`, which knows the request path and renders the final body.
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: renders every problem response again with `instance` set to the request path.
pub async fn fill_instance(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    match response.extensions_mut().remove::<Problem>() {
        Some(mut problem) => {
            problem.instance = Some(path);
            let mut rendered = problem.render();
            std::mem::swap(rendered.headers_mut(), response.headers_mut());
            rendered
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            rendered.headers_mut().remove(header::CONTENT_LENGTH);
            rendered
        }
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_serializes_with_the_rfc_field_names() {
        let problem = Problem::new(StatusCode::CONFLICT, "Insufficient Stock", "only 1 left");
        let json = serde_json::to_value(&problem).expect("serializes");
        assert_eq!(
            json["type"],
            "https://stockmesh.dev/problems/insufficient-stock"
        );
        assert_eq!(json["title"], "Insufficient Stock");
        assert_eq!(json["status"], 409);
        assert_eq!(json["detail"], "only 1 left");
        assert!(json.get("instance").is_none());
    }
}
