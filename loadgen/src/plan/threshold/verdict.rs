//! One row of the verdict table: the rule as judged for one mode, the measured value,
//! what it was judged against (a fixed limit, or a baseline's value and the limit that
//! gave) and the verdict, with how the table and thresholds.csv spell them.

use std::fmt;

/// One row of the verdict table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// The rule, prefixed with the mode when the scenario wrote it without one.
    pub threshold: String,
    pub actual: Option<f64>,
    pub unit: &'static str,
    pub pass: bool,
    /// Why the value cannot pass whatever it is (the mode was not fully measured).
    pub incomplete: Option<String>,
    /// A rule relative to a baseline: what the baseline measured and the limit that
    /// made (`None` in both: no baseline was found).
    pub baseline: Option<BaselineUse>,
    /// The limit the value was judged against, in `unit` (`None`: no baseline).
    pub limit: Option<f64>,
    /// A rule relative to a baseline that had none to compare with: "no baseline".
    pub no_baseline: bool,
}

/// The baseline value a verdict was judged against, and the limit it gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineUse {
    pub value: f64,
    pub limit: f64,
}

impl Verdict {
    /// The actual value as the table shows it.
    pub fn actual_text(&self) -> String {
        let value = match self.actual {
            None => "not measured".to_string(),
            Some(v) => number(v, self.unit),
        };
        let value = match (&self.baseline, self.no_baseline) {
            (Some(b), _) => format!(
                "{value} (baseline {}, limit {})",
                number(b.value, self.unit),
                number(b.limit, self.unit)
            ),
            (None, true) => format!("{value} (no baseline)"),
            (None, false) => value,
        };
        match &self.incomplete {
            Some(why) => format!("{value} ({why})"),
            None => value,
        }
    }

    /// `pass`, `FAIL` or `no baseline`, as the table shows it.
    pub fn word(&self) -> &'static str {
        match (self.pass, self.no_baseline) {
            (true, true) => "no baseline",
            (true, false) => "pass",
            (false, _) => "FAIL",
        }
    }
}

fn number(v: f64, unit: &str) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}{unit}")
    } else {
        format!("{v:.3}{unit}")
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.threshold,
            self.actual_text(),
            self.word()
        )
    }
}
