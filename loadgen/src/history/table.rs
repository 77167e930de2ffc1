//! `loadgen history [SCENARIO]`: the table of the last runs, newest first, with each
//! mode's p99, dropped requests and throughput, and the verdict; for one scenario, its
//! trend chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::query::Filter;
use super::{History, HistoryError, RunRow};
use crate::plan::threshold::Metric;
use crate::report::ReportError;
use crate::report::chart::trend;

/// Why `loadgen history` could not show the history.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Chart(#[from] ReportError),
}

/// What `loadgen history` shows.
pub struct Shown {
    pub table: String,
    /// The trend chart, drawn when the runs are of one scenario.
    pub chart: Option<PathBuf>,
}

/// The last `last` runs (of `scenario`) in the history at `path`, and their trend
/// chart at `chart` (default reports/<scenario>/trend.png).
pub fn show(
    scenario: Option<&str>,
    path: &Path,
    last: usize,
    chart: Option<PathBuf>,
) -> Result<Shown, ShowError> {
    let Some(h) = History::open_existing(path)? else {
        return Ok(Shown {
            table: format!("no history at {}\n", path.display()),
            chart: None,
        });
    };
    let runs = h.runs(&Filter {
        scenario,
        limit: last.max(1),
        ..Filter::default()
    })?;
    let one_scenario = scenario.or_else(|| {
        let first = runs.first()?.scenario.as_str();
        runs.iter().all(|r| r.scenario == first).then_some(first)
    });
    let chart = match (one_scenario, runs.is_empty()) {
        (Some(name), false) => {
            let file =
                chart.unwrap_or_else(|| PathBuf::from("reports").join(name).join(trend::FILE));
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| ReportError::Write {
                    file: file.clone(),
                    source,
                })?;
            }
            trend::draw(&file, &runs)?;
            Some(file)
        }
        _ => None,
    };
    Ok(Shown {
        table: table(&runs),
        chart,
    })
}

pub fn table(runs: &[RunRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:<16} {:<20} {:<12} {:<10} {:<15} {:<10} {:>10} {:>8} {:>10}",
        "run",
        "scenario",
        "started",
        "commit",
        "branch",
        "verdict",
        "mode",
        "p99 ms",
        "dropped",
        "req/s"
    );
    for r in runs {
        let commit = r
            .git_commit
            .as_deref()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        let branch = r.git_branch.as_deref().unwrap_or("-");
        let modes: Vec<&str> = r
            .summary
            .modes
            .iter()
            .filter_map(|m| m.get("mode").and_then(|v| v.as_str()))
            .collect();
        let fig = |mode: &str, metric: Metric, decimals: usize| {
            r.summary
                .figure(mode, None, metric)
                .map_or("-".to_string(), |v| format!("{v:.decimals$}"))
        };
        if modes.is_empty() {
            let _ = writeln!(
                s,
                "{:<24} {:<16} {:<20} {:<12} {:<10} {:<15}",
                r.id, r.scenario, r.started_at, commit, branch, r.verdict
            );
        }
        for mode in modes {
            let _ = writeln!(
                s,
                "{:<24} {:<16} {:<20} {:<12} {:<10} {:<15} {:<10} {:>10} {:>8} {:>10}",
                r.id,
                r.scenario,
                r.started_at,
                commit,
                branch,
                r.verdict,
                mode,
                fig(mode, Metric::P99, 3),
                fig(mode, Metric::Dropped, 0),
                fig(mode, Metric::Throughput, 1)
            );
        }
    }
    s
}
