//! Rules that span several settings, checked once at start so that a node never runs with a
//! combination that cannot work. Each error names the flags involved, as the CLI spells them.

use std::time::Duration;

/// A setting, or a combination of settings, that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{flag} must be greater than zero")]
    Zero {
        /// The flag, e.g. `--heartbeat-interval`.
        flag: &'static str,
    },
    /// One duration must be shorter than another.
    #[error(
        "{shorter} ({shorter_value:?}) must be shorter than {longer} ({longer_value:?}): {why}"
    )]
    NotShorter {
        /// The flag that must be shorter.
        shorter: &'static str,
        /// Its value.
        shorter_value: Duration,
        /// The flag that must be longer.
        longer: &'static str,
        /// Its value.
        longer_value: Duration,
        /// What would go wrong otherwise.
        why: &'static str,
    },
    /// A value outside the range the setting allows.
    #[error("{flag} is {value}: it must be {allowed}")]
    OutOfRange {
        /// The flag, e.g. `--group-commit-max`.
        flag: &'static str,
        /// The value given.
        value: String,
        /// The range allowed, in words.
        allowed: &'static str,
    },
}

/// Checks that `value` (the setting `flag`) is not zero.
pub fn positive(flag: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        Err(ConfigError::Zero { flag })
    } else {
        Ok(())
    }
}

/// Checks that `shorter` is strictly shorter than `longer`; `why` says what breaks otherwise.
pub fn shorter(
    shorter: (&'static str, Duration),
    longer: (&'static str, Duration),
    why: &'static str,
) -> Result<(), ConfigError> {
    if shorter.1 < longer.1 {
        Ok(())
    } else {
        Err(ConfigError::NotShorter {
            shorter: shorter.0,
            shorter_value: shorter.1,
            longer: longer.0,
            longer_value: longer.1,
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_refused_by_name() {
        let error = positive("--claim-idle", Duration::ZERO).expect_err("zero");
        assert_eq!(error.to_string(), "--claim-idle must be greater than zero");
        assert!(positive("--claim-idle", Duration::from_millis(1)).is_ok());
    }

    #[test]
    fn equal_or_longer_is_refused_naming_both_flags() {
        let s = Duration::from_secs(5);
        let error = shorter(("--a", s), ("--b", s), "because").expect_err("equal");
        let text = error.to_string();
        assert!(text.contains("--a") && text.contains("--b") && text.contains("because"));
        assert!(shorter(("--a", s), ("--b", s * 2), "because").is_ok());
    }
}
