//! Baselines of relative thresholds (`cluster.p99 < baseline * 1.25`): the last
//! passing run of the same scenario in the history (on one git branch with
//! `--baseline-branch`), or the median of the last K passing runs (scenario key
//! `baseline.runs`, `--baseline-runs`), or one run named with `--baseline` (a run
//! folder holding summary.json, or a run id of the history). A metric's baseline is
//! the same figure of the same mode and step in those runs; with several runs, the
//! median of the values present.

use std::path::Path;

use super::query::Filter;
use super::{History, HistoryError};
use crate::plan::threshold::Metric;
use crate::runfolder::summary_json::{RunSummary, SummaryError};

/// The run(s) relative thresholds are judged against.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// In words: "run ID", "median of 3 runs: ID, ID, ID", "run ID (folder DIR)".
    pub source: String,
    runs: Vec<RunSummary>,
}

/// Why a named baseline could not be found.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("--baseline {0}: {1}")]
    Folder(String, SummaryError),
    #[error(
        "--baseline {0}: neither a run folder with summary.json nor a run id of the history {1}"
    )]
    Unknown(String, String),
}

impl Baseline {
    /// A baseline made of `runs` (newest first).
    pub fn of(runs: Vec<RunSummary>) -> Option<Baseline> {
        let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        let source = match ids.as_slice() {
            [] => return None,
            [one] => format!("run {one}"),
            many => format!("median of {} runs: {}", many.len(), many.join(", ")),
        };
        Some(Baseline { source, runs })
    }

    /// The last `k` passing runs of `scenario` (on `branch`, if given).
    pub fn last_passing(
        history: &History,
        scenario: &str,
        branch: Option<&str>,
        k: usize,
    ) -> Result<Option<Baseline>, HistoryError> {
        let runs = history.runs(&Filter {
            scenario: Some(scenario),
            branch,
            passing: true,
            limit: k.max(1),
        })?;
        Ok(Self::of(runs.into_iter().map(|r| r.summary).collect()))
    }

    /// The run `name` names: a run folder (its summary.json), else a run id of
    /// `history`.
    pub fn named(name: &str, history: Option<&History>) -> Result<Baseline, BaselineError> {
        let dir = Path::new(name);
        if dir.is_dir() {
            let run = RunSummary::read(dir).map_err(|e| BaselineError::Folder(name.into(), e))?;
            return Ok(Baseline {
                source: format!("run {} (folder {name})", run.run_id),
                runs: vec![run],
            });
        }
        let found = match history {
            Some(h) => h.run(name)?,
            None => None,
        };
        let where_ = history.map_or("(no history)".to_string(), |h| {
            h.path().display().to_string()
        });
        found
            .and_then(|r| Self::of(vec![r]))
            .ok_or_else(|| BaselineError::Unknown(name.to_string(), where_))
    }

    /// The baseline's value of a metric: the median over its runs of the values present.
    pub fn value(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64> {
        let mut values: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.figure(mode, step, metric))
            .collect();
        median(&mut values)
    }
}

/// The median (the mean of the two middle values for an even count).
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
