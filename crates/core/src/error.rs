//! Why a value from outside failed to become a domain type.

/// A value that does not satisfy the rules of a domain type. The message names the rule, so it can
/// be shown to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// An identifier that is empty, too long, holds a character outside `A-Za-z0-9._-`, or is
    /// `.` or `..`.
    #[error(
        "{what} must be 1 to {max} characters of A-Z, a-z, 0-9, '.', '_' or '-', and not '.' or '..', got {value:?}"
    )]
    InvalidId {
        /// Which identifier (e.g. `productId`).
        what: &'static str,
        /// The longest value allowed.
        max: usize,
        /// The value received, cut to a readable length.
        value: String,
    },
    /// A quantity outside its allowed range.
    #[error("{what} must be an integer from {} to {}, got {value}", grouped(*.min), grouped(*.max))]
    OutOfRange {
        /// Which quantity (e.g. `quantity`).
        what: &'static str,
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
        /// The value received.
        value: i64,
    },
    /// A value that is not a valid UUID.
    #[error("{what} must be a UUID, got {value:?}")]
    InvalidUuid {
        /// Which identifier.
        what: &'static str,
        /// The value received, cut to a readable length.
        value: String,
    },
}

/// Cuts `value` to at most 80 characters so that an error message stays readable.
pub(crate) fn excerpt(value: &str) -> String {
    value.chars().take(80).collect()
}

/// `1000000000` as `1,000,000,000`: the form people read limits in.
pub(crate) fn grouped(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_grouped_in_thousands() {
        assert_eq!(super::grouped(0), "0");
        assert_eq!(super::grouped(999), "999");
        assert_eq!(super::grouped(1000), "1,000");
        assert_eq!(super::grouped(1_000_000_000), "1,000,000,000");
        assert_eq!(super::grouped(-12345), "-12,345");
    }
}
