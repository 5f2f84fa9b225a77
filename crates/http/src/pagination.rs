//! Paginated lists: `?page=0&size=20` in (size 1..=1000, page ≥ 0), a bare JSON array out, with
//! the total in `X-Total-Count` and RFC 8288 `Link` headers (`first`, `prev`, `next`, `last`).

use std::fmt::Write;

use axum::Json;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

pub use stockmesh_core::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageError};

/// The header that carries the total number of items.
pub const TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// `page` and `size` as they arrive in a query string (wide integers, so that a negative or huge
/// value gets our message rather than a parser's).
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Zero-based page number.
    #[param(minimum = 0)]
    pub page: Option<i64>,
    /// Items per page, 1 to 1000 (default 20).
    #[param(minimum = 1, maximum = 1000)]
    pub size: Option<i64>,
}

impl PageParams {
    /// The page these parameters ask for; an invalid one is a 400 problem naming the rule.
    pub fn validate(self) -> Result<Page, Problem> {
        Ok(Page::parse(self.page, self.size)?)
    }
}

impl From<PageError> for Problem {
    fn from(error: PageError) -> Problem {
        Problem::bad_request(error.to_string())
    }
}

/// One page of a list, ready to be answered.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Which page.
    pub page: Page,
    /// Items in the whole list.
    pub total: u64,
    /// The path the links point to, e.g. `/inventory`, its segments already encoded (see
    /// [`crate::uri::segment`]).
    pub path: String,
    /// Further query parameters the links keep (filters), as plain values: they are
    /// percent-encoded here.
    pub filters: Vec<(&'static str, String)>,
}

impl<T> Paged<T> {
    /// The `Link` header value: `first` and `last` always, `prev` and `next` where they exist.
    pub fn link_header(&self) -> String {
        let size = u64::from(self.page.size);
        let last = self.total.div_ceil(size).saturating_sub(1);
        let current = u64::from(self.page.number);
        let mut rels = vec![("first", 0)];
        if current > 0 {
            rels.push(("prev", (current - 1).min(last)));
        }
        if current < last {
            rels.push(("next", current + 1));
        }
        rels.push(("last", last));
        let mut header = String::new();
        for (rel, page) in rels {
            if !header.is_empty() {
                header.push_str(", ");
            }
            let _ = write!(header, "<{}?", self.path);
            for (key, value) in &self.filters {
                let _ = write!(header, "{key}={}&", crate::uri::query_value(value));
            }
            let _ = write!(header, "page={page}&size={size}>; rel=\"{rel}\"");
        }
        header
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let link = self.link_header();
        let mut response = Json(&self.items).into_response();
        let headers = response.headers_mut();
        headers.insert(TOTAL_COUNT, HeaderValue::from(self.total));
        if let Ok(link) = HeaderValue::from_str(&link) {
            headers.insert(axum::http::header::LINK, link);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(page: Option<i64>, size: Option<i64>) -> PageParams {
        PageParams { page, size }
    }

    #[test]
    fn defaults_are_page_zero_of_twenty() {
        assert_eq!(
            params(None, None).validate(),
            Ok(Page {
                number: 0,
                size: 20
            })
        );
    }

    #[test]
    fn out_of_range_pages_and_sizes_are_rejected_with_the_rule() {
        for (page, size) in [
            (Some(-1), None),
            (None, Some(0)),
            (None, Some(1001)),
            (None, Some(-5)),
        ] {
            let problem = params(page, size).validate().expect_err("must be rejected");
            assert_eq!(problem.status.as_u16(), 400);
            assert!(
                problem.detail.contains("must be between"),
                "{}",
                problem.detail
            );
        }
    }

    #[test]
    fn links_point_to_the_neighbouring_pages() {
        let paged = Paged::<u8> {
            items: vec![],
            page: Page {
                number: 1,
                size: 10,
            },
            total: 35,
            path: "/inventory".into(),
            filters: vec![("storeId", "store-1".into())],
        };
        assert_eq!(
            paged.link_header(),
            "</inventory?storeId=store-1&page=0&size=10>; rel=\"first\", \
             </inventory?storeId=store-1&page=0&size=10>; rel=\"prev\", \
             </inventory?storeId=store-1&page=2&size=10>; rel=\"next\", \
             </inventory?storeId=store-1&page=3&size=10>; rel=\"last\""
        );
    }

    #[test]
    fn an_empty_list_has_one_page() {
        let paged = Paged::<u8> {
            items: vec![],
            page: Page {
                number: 0,
                size: 10,
            },
            total: 0,
            path: "/x".into(),
            filters: vec![],
        };
        assert_eq!(
            paged.link_header(),
            "</x?page=0&size=10>; rel=\"first\", </x?page=0&size=10>; rel=\"last\""
        );
    }
}
