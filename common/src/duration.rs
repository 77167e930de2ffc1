//! Human durations as both binaries read them: `250ms`, `30s`, `1.5s`, `2m`, `1h`,
//! `100us` and a bare `0` (a space between number and unit is allowed). Owns the
//! grammar and the error a user sees for a bad value; it knows nothing of where the
//! value came from (a flag, a scenario key) nor of any upper bound a caller imposes
//! (loadgen caps scenario durations at 7 days itself).

use std::time::Duration;

/// The grammar, repeated in every error so the user knows what to write instead.
const EXPECTED: &str = "expected a number with a unit (us, ms, s, m, h), e.g. \"250ms\" or \"10s\"";

/// Why a duration did not parse; `text` is the value as given (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A number without a unit (only `0` may go without one).
    #[error("invalid duration `{text}`: the unit is missing; {}", EXPECTED)]
    NoUnit { text: String },
    /// Nothing numeric before the unit (`ms`, `-1s`, an empty value).
    #[error("invalid duration `{text}`: it must start with a number; {}", EXPECTED)]
    NoNumber { text: String },
    /// Digits and dots that do not make a number (`1.2.3s`).
    #[error("invalid duration `{text}`: `{number}` is not a number; {}", EXPECTED)]
    BadNumber { text: String, number: String },
    #[error("invalid duration `{text}`: unknown unit `{unit}`; {}", EXPECTED)]
    UnknownUnit { text: String, unit: String },
    /// More than a `Duration` holds.
    #[error("invalid duration `{text}`: too large")]
    TooLarge { text: String },
}

/// Parses `250ms`, `30s`, `1.5s`, `2m` (or `2min`), `1h`, `100us` (or `100µs`) or a
/// bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let owned = || text.to_owned();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(DurationError::NoNumber { text: owned() });
    }
    if unit.is_empty() {
        return Err(DurationError::NoUnit { text: owned() });
    }
    let value: f64 = number.parse().map_err(|_| DurationError::BadNumber {
        text: owned(),
        number: number.to_owned(),
    })?;
    let seconds_per_unit = match unit.trim_start() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(DurationError::UnknownUnit {
                text: owned(),
                unit: other.to_owned(),
            });
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| DurationError::TooLarge { text: owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_of_the_grammar() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 10 s "), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn each_error_names_the_problem() {
        let cases = [
            ("30", "the unit is missing"),
            ("ms", "must start with a number"),
            ("-1s", "must start with a number"),
            ("", "must start with a number"),
            ("1.2.3s", "`1.2.3` is not a number"),
            ("2 parsecs", "unknown unit `parsecs`"),
            ("3 weeks", "unknown unit `weeks`"),
            ("99999999999999999999999h", "too large"),
        ];
        for (text, problem) in cases {
            let error = parse_duration(text).expect_err(text).to_string();
            assert!(
                error.starts_with(&format!("invalid duration `{}`: ", text.trim())),
                "{text:?} gave {error:?}"
            );
            assert!(error.contains(problem), "{text:?} gave {error:?}");
        }
    }

    #[test]
    fn errors_say_what_to_write_instead() {
        let error = parse_duration("2 parsecs")
            .expect_err("bad unit")
            .to_string();
        assert_eq!(
            error,
            "invalid duration `2 parsecs`: unknown unit `parsecs`; expected a number with a \
             unit (us, ms, s, m, h), e.g. \"250ms\" or \"10s\""
        );
    }
}
