//! Which slice of a long list to return: a zero-based page number and a page size. Shared by the
//! repositories (as `LIMIT`/`OFFSET`) and the HTTP layer (which parses it from `?page&size`).

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The page size when the client names none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Zero-based page number.
    pub number: u32,
    /// Items per page, `1..=1000`.
    pub size: u32,
}

/// Why a page request is invalid; the message names the parameter and its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `page` is negative or too large.
    #[error("page must be between 0 and {max}, got {got}", max = u32::MAX)]
    Number {
        /// What was asked.
        got: i64,
    },
    /// `size` is outside `1..=1000`.
    #[error("size must be between 1 and {MAX_PAGE_SIZE}, got {got}")]
    Size {
        /// What was asked.
        got: i64,
    },
}

impl Page {
    /// Validates `page ≥ 0` and `size` in `1..=1000`; absent values take the defaults.
    pub fn parse(page: Option<i64>, size: Option<i64>) -> Result<Page, PageError> {
        let number = match page {
            None => 0,
            Some(p) => u32::try_from(p).map_err(|_| PageError::Number { got: p })?,
        };
        let size = match size {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => u32::try_from(s)
                .ok()
                .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
                .ok_or(PageError::Size { got: s })?,
        };
        Ok(Page { number, size })
    }

    /// Rows to skip.
    pub fn offset(self) -> i64 {
        i64::from(self.number) * i64::from(self.size)
    }

    /// Rows to return.
    pub fn limit(self) -> i64 {
        i64::from(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_number_and_size() {
        let page = Page::parse(Some(3), Some(50)).expect("valid");
        assert_eq!((page.offset(), page.limit()), (150, 50));
    }

    #[test]
    fn each_bad_parameter_names_itself() {
        assert_eq!(
            Page::parse(Some(-1), None),
            Err(PageError::Number { got: -1 })
        );
        assert_eq!(Page::parse(None, Some(0)), Err(PageError::Size { got: 0 }));
        assert!(
            PageError::Size { got: 1001 }
                .to_string()
                .starts_with("size must be between 1 and 1000")
        );
    }
}
