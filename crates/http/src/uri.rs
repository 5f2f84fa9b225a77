//! Building the URIs this API answers with (`Location`, `Link`): every value put into a path
//! segment or a query is percent-encoded, so that what a client follows is what was meant.
//!
//! Ids are made of URI-unreserved characters and are never `.` or `..` (see
//! `stockmesh_core::ids`), so today's ids pass unchanged; the encoding keeps that true for any
//! value a future field might carry.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` as one path segment: `/`, `?`, `#`, `%`, spaces and non-ASCII are encoded.
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

/// `value` as the value of a query parameter: `&`, `=`, `+`, `#`, spaces and non-ASCII are
/// encoded.
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pass_unchanged_and_everything_else_is_encoded() {
        assert_eq!(segment("sku-1.a_b~"), "sku-1.a_b~");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é?#%"), "%C3%A9%3F%23%25");
        assert_eq!(query_value("a&b=c+d"), "a%26b%3Dc%2Bd");
    }
}
