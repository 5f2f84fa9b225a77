//! The W3C trace context (`traceparent`) that events and commands carry, so that one request is
//! one trace across nodes. This crate stays free of any tracing library: the binary installs the
//! function that reads the current span's context ([`install`]); without it (no trace export)
//! envelopes carry none.

use std::sync::OnceLock;

static CURRENT: OnceLock<fn() -> Option<String>> = OnceLock::new();

/// Installs the function that renders the current span's context as a `traceparent`. The first
/// installation wins.
pub fn install(current: fn() -> Option<String>) {
    let _ = CURRENT.set(current);
}

/// The current span's `traceparent`, if trace export is on and a span is current.
pub fn current() -> Option<String> {
    CURRENT.get().and_then(|current| current())
}

/// Whether `value` is a well-formed `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`, ids not all
/// zero. Envelopes from the wire are checked before their context is used.
pub fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && nonzero(parts[1])
        && hex(parts[2], 16)
        && nonzero(parts[2])
        && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_checked() {
        assert!(is_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-01"));
        assert!(!is_traceparent("garbage"));
    }
}
