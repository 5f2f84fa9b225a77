//! The syntax of every duration flag: `200us`, `250ms`, `30s`, `5m`, `1h`; a bare number means
//! seconds.

use std::time::Duration;

/// Why a duration flag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text does not start with a whole number.
    #[error("invalid duration {0:?}: expected e.g. 500ms, 30s, 5m")]
    Number(String),
    /// The unit after the number is not one of us, ms, s, m, h.
    #[error("invalid duration unit {0:?}: use us, ms, s, m or h")]
    Unit(String),
    /// The duration does not fit in a `Duration`.
    #[error("duration {0:?} is too long")]
    TooLong(String),
}

/// Parses `200us`, `250ms`, `30s`, `5m`, `1h` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| DurationError::Number(text.to_owned()))?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| DurationError::TooLong(text.to_owned()))
    };
    match unit {
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        other => Err(DurationError::Unit(other.to_owned())),
    }
}

/// Parses a duration as [`parse_duration`] does, or a number of days (`30d`): token lifetimes.
pub fn parse_ttl(text: &str) -> Result<Duration, DurationError> {
    match text.trim().strip_suffix('d') {
        Some(days) => {
            let days: u64 = days
                .parse()
                .map_err(|_| DurationError::Number(text.to_owned()))?;
            Ok(Duration::from_secs(days.saturating_mul(86_400)))
        }
        None => parse_duration(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("200us"), Ok(Duration::from_micros(200)));
        assert_eq!(parse_duration("0us"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5 days").is_err());
    }

    #[test]
    fn hours_parse_and_a_duration_too_long_is_refused() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            parse_duration(&format!("{}h", u64::MAX)),
            Err(DurationError::TooLong(format!("{}h", u64::MAX)))
        );
    }

    #[test]
    fn a_ttl_takes_days_beside_the_usual_units() {
        assert_eq!(parse_ttl("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert!(matches!(parse_ttl("xd"), Err(DurationError::Number(_))));
    }
}
