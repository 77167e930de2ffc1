//! How the run folder writes and reads one cell that is more than a plain string or
//! integer: milliseconds ([`Ms`], three decimals, so microsecond precision, or empty),
//! other fixed-decimal figures (seconds with three decimals, throughput with two), and
//! the two words that stand for a boolean (`true`/`false` in invariants.csv,
//! `pass`/`FAIL` in thresholds.csv). Reading is as forgiving as the report always was.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds, written with three decimals. Empty means no value: some writers leave
/// the latency of a second in which nothing completed empty (this crate writes 0.000).
/// Displays like the `f64` it holds, precision included; `-` when empty.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ms(Option<f64>);

impl Ms {
    /// An empty cell.
    pub const EMPTY: Ms = Ms(None);

    pub fn get(self) -> Option<f64> {
        self.0
    }
}

impl From<f64> for Ms {
    fn from(ms: f64) -> Self {
        Ms(Some(ms))
    }
}

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => fmt::Display::fmt(&v, f),
            None => f.pad("-"),
        }
    }
}

impl Serialize for Ms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) => Fixed::<3>(v).serialize(s),
            None => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for Ms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<f64>::deserialize(d).map(Ms)
    }
}

/// A figure written with `D` decimals.
pub(crate) struct Fixed<const D: usize>(pub f64);

impl<const D: usize> Serialize for Fixed<D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:.*}", D, self.0))
    }
}

/// `serialize_with` for seconds and CPU seconds.
pub(crate) fn three_decimals<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    Fixed::<3>(*v).serialize(s)
}

/// `serialize_with` for an optional figure in seconds: empty when unknown.
pub(crate) fn three_decimals_or_empty<S: Serializer>(
    v: &Option<f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    v.map(Fixed::<3>).serialize(s)
}

/// `deserialize_with` for `holds`: written `true`/`false`; the usual spellings of
/// "yes" read as true, anything else as false.
pub(crate) fn yes_or_no<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let word = String::deserialize(d)?;
    Ok(matches!(
        word.to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "pass" | "ok"
    ))
}

/// `with` for a verdict: written `pass` or `FAIL`; read as passed when it says pass in
/// any case.
pub(crate) mod pass_fail {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(pass: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *pass { "pass" } else { "FAIL" })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(String::deserialize(d)?.eq_ignore_ascii_case("pass"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_displays_like_its_number() {
        assert_eq!(format!("{:.1}", Ms::from(12.345)), "12.3");
        assert_eq!(format!("{}", Ms::EMPTY), "-");
    }

    #[test]
    fn fixed_rounds_like_format() {
        let text = |v: f64| {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            w.serialize((Fixed::<3>(v), Fixed::<2>(v), Ms::from(v), Ms::EMPTY))
                .expect("serialize");
            String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
        };
        assert_eq!(
            text(1.0005),
            format!("{:.3},{:.2},{:.3},\n", 1.0005, 1.0005, 1.0005)
        );
        assert_eq!(text(0.0), "0.000,0.00,0.000,\n");
    }
}
