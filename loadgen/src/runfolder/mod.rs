//! The run folder's file format, in one place: one row type per CSV file ([`rows`]),
//! the file names and typed [`write_rows`]/[`read_rows`] ([`table`]), the one `.hgrm`
//! writer and reader ([`hgrm`]), and the run's writers that fill those rows from merged
//! `ModeOutcome`s (modes, summary, timeseries, workers, events and histograms in `write`;
//! invariants, stock and thresholds in `checks`). The engine keeps its per-second rows as
//! [`SecondRow`]; the report reads every file back through the same types; the scenario
//! copy is written when the run starts. reports/README.md documents the files.

mod checks;
pub mod hgrm;
pub mod hlog;
pub mod rows;
pub mod summary_json;
pub mod table;
mod write;

#[cfg(test)]
mod bytes_tests;

pub use checks::write_thresholds;
pub use hgrm::{HgrmPoint, hgrm_file, hgrm_text, read_hgrm, write_hgrm};
pub use rows::{
    EventKind, EventRow, InvariantRow, ModeRow, Ms, SecondRow, StockRow, SummaryRow, ThresholdRow,
    WorkerRow,
};
pub use table::{ReadError, Table, read_rows, read_rows_if_present, write_rows};
// The run folder spells times as the shared crate does: RFC 3339 UTC in modes.csv,
// the compact stamp in a run folder's name.
pub use stampede_common::time::{rfc3339, stamp};
pub use write::write_run;

use crate::engine::timeline::ModeOutcome;
use crate::outcome::Class;
use std::fmt::Write as _;

/// The end-of-run table, one line per mode.
pub fn summary_table(modes: &[ModeOutcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "mode",
        "requests",
        "ok",
        "dropped",
        "failed",
        "retried",
        "503",
        "5xx",
        "p50 ms",
        "p99 ms",
        "max ms",
        "req/s"
    );
    for m in modes {
        let m = &m.measured;
        let c = m.total();
        let h = m.all_hist();
        let rps = if m.fin.duration_s > 0.0 {
            c.completed() as f64 / m.fin.duration_s
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.1}",
            m.mode,
            c.completed(),
            c.class(Class::Ok),
            c.dropped(),
            c.failed(),
            c.retried,
            c.class(Class::Status503),
            c.class(Class::Status5xx),
            h.ms_at(0.5),
            h.ms_at(0.99),
            h.max_ms(),
            rps
        );
    }
    s
}
