//! Paginated lists: `?page=0&size=20` in (size 1..=1000, page ≥ 0), a bare JSON array out, with
//! the total in `X-Total-Count` and RFC 8288 `Link` headers (`first`, `prev`, `next`, `last`).
//! Keyed lists also take `?after=<cursor>` (keyset paging, see [`stockmesh_core::cursor`]) and
//! answer the cursor of the next page in `X-Next-Cursor`.

use std::fmt::Write;

use axum::Json;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

pub use stockmesh_core::cursor::{Cursor, Seek, Slice};
pub use stockmesh_core::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageError};

/// The header that carries the total number of items.
pub const TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// The header that carries the cursor of the next page (absent on the last page).
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

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

/// `page`, `size` and `after` of a keyed list as they arrive in a query string.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeysetParams {
    /// Zero-based page number (offset paging; not with `after`).
    #[param(minimum = 0)]
    pub page: Option<i64>,
    /// Items per page, 1 to 1000 (default 20).
    #[param(minimum = 1, maximum = 1000)]
    pub size: Option<i64>,
    /// Continue after this cursor: the `X-Next-Cursor` of the previous page (keyset paging, as
    /// fast at any depth; not with `page`).
    #[param(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$")]
    pub after: Option<String>,
}

impl KeysetParams {
    /// Where the page these parameters ask for starts; an invalid one is a 400 naming the rule.
    pub fn validate<K: Cursor>(self) -> Result<Seek<K>, Problem> {
        seek(self.page, self.size, self.after.as_deref())
    }
}

/// Where a page of a keyed list starts, from `?page&size&after`: a 400 problem names the
/// parameter and its rule. `after` together with `page` is refused: one counts from the start of
/// the list, the other continues from a key, and no answer could honour both.
pub fn seek<K: Cursor>(
    page: Option<i64>,
    size: Option<i64>,
    after: Option<&str>,
) -> Result<Seek<K>, Problem> {
    let parsed = Page::parse(page, size)?;
    let Some(after) = after else {
        return Ok(Seek::Page(parsed));
    };
    if page.is_some() {
        return Err(Problem::bad_request(
            "after cannot be combined with page (page counts from the start of the list, after \
             continues from a cursor)",
        ));
    }
    let key = K::from_cursor(after).ok_or_else(|| {
        Problem::bad_request(format!(
            "after must be the cursor of a previous page: {}",
            K::RULE
        ))
    })?;
    Ok(Seek::After {
        key,
        size: parsed.size,
    })
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
    /// The cursor that continues after this page (`X-Next-Cursor`), on keyed lists with more.
    pub next: Option<String>,
    /// Whether the page was asked for with `after`: its links are then `first` and `next` by
    /// cursor (a cursor knows no previous or last page).
    pub after: bool,
}

impl<T> Paged<T> {
    /// A page of a keyed list, as [`seek`] asked for it.
    pub fn keyed<K>(
        slice: Slice<T>,
        seek: &Seek<K>,
        next: Option<String>,
        path: impl Into<String>,
        filters: Vec<(&'static str, String)>,
    ) -> Self {
        let (page, after) = match seek {
            Seek::Page(page) => (*page, false),
            Seek::After { size, .. } => (
                Page {
                    number: 0,
                    size: *size,
                },
                true,
            ),
        };
        Paged {
            items: slice.items,
            page,
            total: slice.total,
            path: path.into(),
            filters,
            next,
            after,
        }
    }

    /// `Link` when the page was asked for with `after`: `first`, and `next` when more follow.
    fn cursor_links(&self) -> String {
        let size = self.page.size;
        let mut header = String::new();
        let mut rels = vec![("first", None)];
        if let Some(next) = &self.next {
            rels.push(("next", Some(next)));
        }
        for (rel, after) in rels {
            if !header.is_empty() {
                header.push_str(", ");
            }
            let _ = write!(header, "<{}?", self.path);
            for (key, value) in &self.filters {
                let _ = write!(header, "{key}={}&", crate::uri::query_value(value));
            }
            if let Some(after) = after {
                let _ = write!(header, "after={}&", crate::uri::query_value(after));
            }
            let _ = write!(header, "size={size}>; rel=\"{rel}\"");
        }
        header
    }
}

impl<T> Paged<T> {
    /// The `Link` header value: `first` and `last` always, `prev` and `next` where they exist
    /// (after a cursor: `first`, and `next` where it exists).
    pub fn link_header(&self) -> String {
        if self.after {
            return self.cursor_links();
        }
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
        if let Some(next) = self
            .next
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert(NEXT_CURSOR, next);
        }
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
            next: None,
            after: false,
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
            next: None,
            after: false,
        };
        assert_eq!(
            paged.link_header(),
            "</x?page=0&size=10>; rel=\"first\", </x?page=0&size=10>; rel=\"last\""
        );
    }

    #[test]
    fn after_a_cursor_the_links_are_first_and_next_by_cursor() {
        let paged = Paged::<u8> {
            items: vec![],
            page: Page { number: 0, size: 5 },
            total: 35,
            path: "/inventory".into(),
            filters: vec![("storeId", "store-1".into())],
            next: Some("store-1~sku-9".into()),
            after: true,
        };
        assert_eq!(
            paged.link_header(),
            "</inventory?storeId=store-1&size=5>; rel=\"first\", \
             </inventory?storeId=store-1&after=store-1~sku-9&size=5>; rel=\"next\""
        );
    }

    #[test]
    fn after_with_page_and_malformed_cursors_are_400s_naming_after() {
        use stockmesh_core::ViewKey;
        let both = seek::<ViewKey>(Some(0), None, Some("s~p")).expect_err("refused");
        assert!(
            both.detail
                .starts_with("after cannot be combined with page")
        );
        let bad = seek::<ViewKey>(None, None, Some("s")).expect_err("refused");
        assert_eq!(bad.status.as_u16(), 400);
        assert!(
            bad.detail.starts_with("after must be the cursor"),
            "{}",
            bad.detail
        );
        assert!(matches!(
            seek::<ViewKey>(None, Some(3), Some("s~p")),
            Ok(Seek::After { size: 3, .. })
        ));
    }
}
