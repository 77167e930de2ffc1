//! The run folder's verdict files: invariants.csv (what the shop still holds after each
//! mode) and thresholds.csv (the CI gate's table), in the columns reports/README.md
//! fixes. A mode whose checks could not run says why in a row of its own, so a reader
//! never mistakes "not checked" for "holds".

use std::io;
use std::path::Path;

use super::csv_err;
use crate::engine::timeline::ModeData;
use crate::plan::threshold::Verdict;

/// Writes invariants.csv for every mode that ran its checks.
pub fn write_invariants(dir: &Path, modes: &[ModeData]) -> io::Result<()> {
    let mut w = csv::Writer::from_path(dir.join("invariants.csv")).map_err(csv_err)?;
    w.write_record(["mode", "check", "expected", "actual", "holds"])
        .map_err(csv_err)?;
    for m in modes {
        match &m.invariants {
            None => {}
            Some(Ok(report)) => {
                for c in &report.checks {
                    w.write_record([
                        m.mode.as_str(),
                        c.check,
                        c.expected.as_str(),
                        c.actual.as_str(),
                        if c.holds { "true" } else { "false" },
                    ])
                    .map_err(csv_err)?;
                }
            }
            Some(Err(why)) => {
                let actual = format!("checks could not run: {why}");
                w.write_record([
                    m.mode.as_str(),
                    "audit",
                    "readable",
                    actual.as_str(),
                    "false",
                ])
                .map_err(csv_err)?;
            }
        }
    }
    w.flush()
}

/// Writes thresholds.csv: the rule, the measured value, `pass` or `FAIL`.
pub fn write_thresholds(dir: &Path, verdicts: &[Verdict]) -> io::Result<()> {
    let mut w = csv::Writer::from_path(dir.join("thresholds.csv")).map_err(csv_err)?;
    w.write_record(["threshold", "actual", "verdict"])
        .map_err(csv_err)?;
    for v in verdicts {
        w.write_record([
            v.threshold.as_str(),
            v.actual_text().as_str(),
            if v.pass { "pass" } else { "FAIL" },
        ])
        .map_err(csv_err)?;
    }
    w.flush()
}
