//! Why a value from outside failed to become a domain type.

/// A value that does not satisfy the rules of a domain type. The message names the rule, so it can
/// be shown to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// An identifier that is empty, too long or holds a character outside `A-Za-z0-9._-`.
    #[error(
        "{what} must be 1 to {max} characters of A-Z, a-z, 0-9, '.', '_' or '-', got {value:?}"
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
    #[error("{what} must be between {min} and {max}, got {value}")]
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
