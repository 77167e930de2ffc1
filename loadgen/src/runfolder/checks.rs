//! The run folder's verdict files: invariants.csv (what the shop still holds after each
//! mode), stock.csv (each product's stock after it) and thresholds.csv (the CI gate's
//! table), in the columns reports/README.md fixes. A mode whose checks could not run says why in a row of its own, so a reader
//! never mistakes "not checked" for "holds".

use std::io;
use std::path::Path;

use super::rows::{InvariantRow, StockRow, ThresholdRow};
use super::table::write_rows;
use crate::engine::timeline::ModeOutcome;
use crate::plan::threshold::Verdict;

/// Writes invariants.csv and stock.csv for every mode that ran its checks.
pub fn write_invariants(dir: &Path, modes: &[ModeOutcome]) -> io::Result<()> {
    let rows = modes.iter().flat_map(|m| {
        let row = |check: &str, expected: &str, actual: String, holds| InvariantRow {
            mode: m.mode().to_string(),
            check: check.to_string(),
            expected: expected.to_string(),
            actual,
            holds,
            ..InvariantRow::default()
        };
        match &m.invariants {
            None => Vec::new(),
            Some(Ok(report)) => report
                .checks
                .iter()
                .map(|c| InvariantRow {
                    compared: c.compared.clone(),
                    items: Some(c.items),
                    ..row(c.check, &c.expected, c.actual.clone(), c.holds)
                })
                .collect(),
            Some(Err(why)) => vec![row(
                "audit",
                "readable",
                format!("checks could not run: {why}"),
                false,
            )],
        }
    });
    write_rows::<InvariantRow>(dir, rows)?;
    let stock = modes.iter().flat_map(|m| {
        let lines = match &m.invariants {
            Some(Ok(report)) => report.stock.as_slice(),
            _ => &[],
        };
        lines.iter().map(|l| StockRow {
            mode: m.mode().to_string(),
            product: l.product.clone(),
            initial_stock: l.initial_stock,
            stock: l.stock,
            sold: l.sold,
            promised: l.promised,
        })
    });
    write_rows::<StockRow>(dir, stock)
}

/// Writes thresholds.csv: the rule, the measured value, `pass` or `FAIL`.
pub fn write_thresholds(dir: &Path, verdicts: &[Verdict]) -> io::Result<()> {
    write_rows::<ThresholdRow>(
        dir,
        verdicts.iter().map(|v| ThresholdRow {
            threshold: v.threshold.clone(),
            actual: v.actual_text(),
            pass: v.pass,
        }),
    )
}
