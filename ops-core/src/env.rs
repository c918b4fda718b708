//! Reading settings from environment variables: one place that turns a variable into a value or
//! into an error that names the variable, says what is wrong and what is allowed.
//!
//! Every crate of the workspace reads its environment through [`var`] (or [`non_blank`]), so a
//! value that is not valid UTF-8 is an error naming the variable everywhere, never "unset". The
//! number parsers ([`whole_number`], [`number`], [`seconds`], [`milliseconds`]) are strict:
//! `NaN`, infinities, negatives, fractions where a whole number is meant and values past the
//! allowed range are errors that state the range, and nothing panics.
//!
//! ```
//! use ops_core::env;
//! use std::time::Duration;
//!
//! assert_eq!(env::whole_number("100", 1, 100_000), Ok(100));
//! assert!(env::whole_number("2.7", 1, 100_000).unwrap_err().contains("whole number from 1 to 100000"));
//! assert_eq!(env::seconds("0.5", Duration::from_millis(1), Duration::from_secs(3600)), Ok(Duration::from_millis(500)));
//! assert!(env::seconds("inf", Duration::from_millis(1), Duration::from_secs(3600)).is_err());
//! ```

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

/// A problem with one environment variable. The message names the variable; a value is quoted
/// only by [`EnvError::Invalid`], which is never used for secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The value is not valid UTF-8.
    #[error("environment variable {var} is not valid UTF-8; set it to text (or unset it)")]
    NotUnicode {
        /// The variable.
        var: String,
    },
    /// The value cannot be used.
    #[error("environment variable {var}={value:?} is invalid: {expected}")]
    Invalid {
        /// The variable.
        var: String,
        /// Its value, cut to 100 characters.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// The value cannot be used; the value itself is not shown (it may be a secret).
    #[error("environment variable {var} is invalid: {expected}")]
    InvalidSecret {
        /// The variable.
        var: String,
        /// What is allowed.
        expected: String,
    },
}

impl EnvError {
    /// An [`EnvError::Invalid`] for `var` set to `value`.
    pub fn invalid(var: &str, value: &str, expected: impl fmt::Display) -> Self {
        EnvError::Invalid {
            var: var.to_owned(),
            value: value.chars().take(100).collect(),
            expected: expected.to_string(),
        }
    }

    /// The variable the error is about.
    pub fn var(&self) -> &str {
        match self {
            EnvError::NotUnicode { var }
            | EnvError::Invalid { var, .. }
            | EnvError::InvalidSecret { var, .. } => var,
        }
    }
}

/// The value of environment variable `name`: `Ok(None)` when it is unset, an error naming it
/// when it is set to something that is not valid UTF-8. The value is returned as it is (not
/// trimmed; an empty value is `Some("")`).
pub fn var(name: &str) -> Result<Option<String>, EnvError> {
    from_os(name, std::env::var_os(name))
}

/// [`var`], trimmed; `Ok(None)` also when the value is empty or only whitespace.
pub fn non_blank(name: &str) -> Result<Option<String>, EnvError> {
    Ok(var(name)?
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty()))
}

/// [`var`] for a value already read with [`std::env::var_os`] (or from elsewhere): for tests
/// and for callers that read the environment once.
pub fn from_os(name: &str, value: Option<OsString>) -> Result<Option<String>, EnvError> {
    match value {
        None => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|_| EnvError::NotUnicode {
            var: name.to_owned(),
        }),
    }
}

/// The first of `names` that is set and not blank, with its name.
pub fn first_non_blank<'a>(names: &[&'a str]) -> Result<Option<(&'a str, String)>, EnvError> {
    for name in names {
        if let Some(v) = non_blank(name)? {
            return Ok(Some((name, v)));
        }
    }
    Ok(None)
}

/// Parses `text` (trimmed) as a whole number from `min` to `max`. Signs, fractions, exponents,
/// `inf` and values past `u64` are refused. The error says what is allowed.
pub fn whole_number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let expected = || format!("expected a whole number from {min} to {max}");
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    match t.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(expected()),
    }
}

/// Parses `text` (trimmed) as a finite number from `min` to `max` (decimal, optionally with an
/// exponent: `0.25`, `1e-3`). `NaN` and infinities are refused. The error says what is allowed.
pub fn number(text: &str, min: f64, max: f64) -> Result<f64, String> {
    let expected = || format!("expected a number from {min} to {max}");
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= min && n <= max => Ok(n),
        _ => Err(expected()),
    }
}

/// Parses `text` as a fraction from 0.0 to 1.0 (a sample rate).
pub fn fraction(text: &str) -> Result<f64, String> {
    number(text, 0.0, 1.0)
        .map_err(|_| "expected a number from 0.0 (none) to 1.0 (all), such as 0.25".to_owned())
}

/// A duration for messages: `250 ms`, `5 s`, `1 h`.
pub fn describe(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        format!("{} µs", d.as_micros())
    } else if ms < 1000 || !ms.is_multiple_of(1000) {
        format!("{ms} ms")
    } else if ms.is_multiple_of(3_600_000) {
        format!("{} h", ms / 3_600_000)
    } else {
        format!("{} s", ms / 1000)
    }
}

/// Parses `text` as a number of seconds (fractions allowed: `0.5`) from `min` to `max`.
/// `NaN`, infinities, negatives and anything out of range are refused, so the result can be
/// added to an `Instant` without overflow.
pub fn seconds(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let expected = || {
        format!(
            "expected a number of seconds from {} to {} ({} to {}; fractions such as 0.5 are allowed)",
            min.as_secs_f64(),
            max.as_secs_f64(),
            describe(min),
            describe(max)
        )
    };
    let secs = text.trim().parse::<f64>().map_err(|_| expected())?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(expected());
    }
    // Bounded by `max` first, so the conversion cannot panic.
    if secs > max.as_secs_f64() {
        return Err(expected());
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|_| expected())?;
    if d < min || d > max {
        return Err(expected());
    }
    Ok(d)
}

/// Parses `text` as a whole number of milliseconds from `min` to `max`.
pub fn milliseconds(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    // Rounded up: a minimum below a millisecond must not let "0" through.
    let lo = u64::try_from(min.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    let hi = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    whole_number(text, lo, hi)
        .map(Duration::from_millis)
        .map_err(|_| {
            format!(
                "expected a whole number of milliseconds from {lo} to {hi} ({} to {})",
                describe(min),
                describe(max)
            )
        })
}

/// Reads `name` and parses it with `parse` (one of the parsers of this module, or any that
/// returns what is allowed as its error). `Ok(None)` when the variable is unset or blank.
pub fn parse_var<T>(
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, EnvError> {
    match var(name)? {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => parse(&v)
            .map(Some)
            .map_err(|expected| EnvError::invalid(name, &v, expected)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn whole_numbers_are_strict() {
        assert_eq!(whole_number(" 100 ", 1, 100), Ok(100));
        for bad in [
            "",
            "2.7",
            "inf",
            "-1",
            "+1",
            "1e3",
            "NaN",
            "0",
            "101",
            "18446744073709551616",
            "0x10",
        ] {
            let err = whole_number(bad, 1, 100).unwrap_err();
            assert!(err.contains("whole number from 1 to 100"), "{bad}: {err}");
        }
    }

    #[test]
    fn numbers_refuse_nan_and_infinities() {
        assert_eq!(number("0.25", 0.0, 1.0), Ok(0.25));
        assert_eq!(number("1e-1", 0.0, 1.0), Ok(0.1));
        for bad in ["NaN", "nan", "inf", "-inf", "1.5", "-0.1", "x", "1e308"] {
            assert!(number(bad, 0.0, 1.0).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_never_panic_and_state_the_range() {
        assert_eq!(seconds("5", MS, HOUR), Ok(Duration::from_secs(5)));
        assert_eq!(seconds("0.5", MS, HOUR), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("1e-3", MS, HOUR), Ok(MS));
        for bad in [
            "inf",
            "-inf",
            "NaN",
            "1e308",
            "18446744073709551616",
            "1e-12",
            "-1",
            "3601",
            "",
            "5s",
        ] {
            let err = seconds(bad, MS, HOUR).unwrap_err();
            assert!(
                err.contains("from 0.001 to 3600") && err.contains("1 ms to 1 h"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn milliseconds_are_whole() {
        assert_eq!(
            milliseconds("200", MS, HOUR),
            Ok(Duration::from_millis(200))
        );
        for bad in ["0", "2.5", "-5", "3600001", "inf"] {
            let err = milliseconds(bad, MS, HOUR).unwrap_err();
            assert!(err.contains("from 1 to 3600000"), "{bad}: {err}");
        }
    }

    #[test]
    fn milliseconds_never_fall_below_a_fractional_minimum() {
        let min = Duration::from_micros(500);
        assert!(milliseconds("0", min, HOUR).is_err());
        assert_eq!(milliseconds("1", min, HOUR), Ok(MS));
    }

    #[cfg(unix)]
    #[test]
    fn not_unicode_names_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let err = from_os("OPS_X", Some(OsString::from_vec(vec![0xff, 0xfe]))).unwrap_err();
        assert_eq!(err.var(), "OPS_X");
        assert!(err.to_string().contains("OPS_X") && err.to_string().contains("UTF-8"));
        assert_eq!(from_os("OPS_X", None), Ok(None));
        assert_eq!(
            from_os("OPS_X", Some(" v ".into())),
            Ok(Some(" v ".to_owned()))
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,40}") {
            let _ = whole_number(&text, 1, u64::MAX);
            let _ = number(&text, f64::MIN, f64::MAX);
            let _ = seconds(&text, Duration::ZERO, Duration::MAX);
            let _ = seconds(&text, MS, HOUR);
            let _ = milliseconds(&text, Duration::ZERO, Duration::MAX);
        }
    }
}
