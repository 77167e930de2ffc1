//! Durations as scenarios write them: `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, and
//! think-time ranges `"1s..3s"`. The duration grammar and its errors are
//! `stampede_common::duration`'s; this module adds the scenario's 7-day limit, the
//! ranges, and serde. It does not know which key the value came from (the scenario
//! loader adds the file, line and key).

use serde::{Deserialize, Deserializer};
use stampede_common::duration;
use std::time::Duration;

/// A duration read from a scenario string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dur(pub Duration);

/// A think time: a fixed duration or a uniform range `min..max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThinkRange {
    pub min: Duration,
    pub max: Duration,
}

/// The longest duration a scenario may write: no run lasts a week.
const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, `"0"`, `"100us"` (the grammar is
/// `stampede_common::duration`'s), up to 7 days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = duration::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > MAX {
        return Err(format!(
            "invalid duration `{}`: a scenario duration is at most 7 days (\"168h\")",
            text.trim()
        ));
    }
    Ok(duration)
}

/// Parses `"500ms"` (fixed) or `"1s..3s"` (uniform range).
pub fn parse_think(text: &str) -> Result<ThinkRange, String> {
    match text.split_once("..") {
        Some((a, b)) => {
            let min = parse_duration(a)?;
            let max = parse_duration(b)?;
            if max < min {
                return Err(format!("invalid think range `{text}`: max is below min"));
            }
            Ok(ThinkRange { min, max })
        }
        None => {
            let d = parse_duration(text)?;
            Ok(ThinkRange { min: d, max: d })
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ThinkRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_think(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn errors_name_the_value_and_the_limit() {
        let bad = parse_duration("2 parsecs").expect_err("unknown unit");
        assert!(bad.starts_with("invalid duration `2 parsecs`: "), "{bad}");
        assert_eq!(parse_duration("168h"), Ok(MAX));
        let long = parse_duration("169h").expect_err("over 7 days");
        assert!(
            long.starts_with("invalid duration `169h`: ") && long.contains("at most 7 days"),
            "{long}"
        );
    }

    #[test]
    fn parses_think_ranges() {
        let r = parse_think("1s..3s").expect("range");
        assert_eq!(r.min, Duration::from_secs(1));
        assert_eq!(r.max, Duration::from_secs(3));
        assert!(parse_think("3s..1s").is_err());
    }
}
