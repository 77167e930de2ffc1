//! Durations as scenarios write them: `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, and
//! think-time ranges `"1s..3s"`. Owns parsing and the error text a user sees for a
//! bad value; it does not know which key the value came from (the scenario loader
//! adds the file, line and key).

use serde::{Deserialize, Deserializer};
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

/// Parses `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, `"0"`, `"100us"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| bad_duration(text))?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad_duration(text))?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad_duration(text)),
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=7.0 * 24.0 * 3600.0).contains(&secs) {
        return Err(bad_duration(text));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn bad_duration(text: &str) -> String {
    format!(
        "invalid duration `{text}`: expected a number with a unit (us, ms, s, m, h), e.g. \"250ms\" or \"10s\""
    )
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
    fn parses_think_ranges() {
        let r = parse_think("1s..3s").expect("range");
        assert_eq!(r.min, Duration::from_secs(1));
        assert_eq!(r.max, Duration::from_secs(3));
        assert!(parse_think("3s..1s").is_err());
    }
}
