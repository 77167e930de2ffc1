//! What a finished run leaves behind for CI systems and for later runs, after the
//! verdicts and before the report: `summary.json` in the run folder, a row in the
//! history (and the history's trend chart, `trend.png`, which the report then shows),
//! the `--junit` file, and the Markdown summary appended to `GITHUB_STEP_SUMMARY` when
//! that is set. A step that cannot be done is a harness failure of the run (exit 3),
//! never silently skipped: a CI that asked for a file must get it or be told.

pub mod args;
pub mod junit;
pub mod step_summary;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::history::{Baseline, History, facts, query::Filter};
use crate::plan::RunPlan;
use crate::report::chart::trend;
use crate::run::RunResult;
use crate::runfolder::summary_json::{RunFacts, RunSummary, RunVerdict, ScenarioRef};

/// How many runs of a scenario the trend chart shows.
pub const TREND_RUNS: usize = 30;

/// What the command line asked a run to leave behind.
#[derive(Debug, Default)]
pub struct PublishOptions {
    /// The history file; `None`: `--no-history`.
    pub history: Option<PathBuf>,
    /// `--junit FILE`.
    pub junit: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`, when set.
    pub step_summary: Option<PathBuf>,
    /// The baseline of relative thresholds, found before the run.
    pub baseline: Option<Baseline>,
}

/// The run's verdict as a whole, in the order the exit code decides it.
pub fn run_verdict(r: &RunResult) -> RunVerdict {
    if r.interrupted {
        RunVerdict::Interrupted
    } else if !r.harness_failures.is_empty() {
        RunVerdict::HarnessFailed
    } else if r.aborted_by.is_some() || r.verdicts.iter().any(|v| !v.pass) {
        RunVerdict::Fail
    } else {
        RunVerdict::Pass
    }
}

/// Writes summary.json, appends the history and draws its trend, writes the JUnit file
/// and the GitHub step summary. Failures become harness failures of `result`.
pub fn after_run(plan: &RunPlan, opts: &PublishOptions, result: &mut RunResult) {
    let started = result
        .modes
        .first()
        .map(|m| m.started_at)
        .unwrap_or_else(SystemTime::now);
    let facts = RunFacts {
        run_id: facts::run_id(started),
        scenario: ScenarioRef {
            name: plan.name.clone(),
            hash: facts::content_hash(plan.source.as_bytes()),
        },
        started_at: stampede_common::time::rfc3339(started),
        git: facts::git(Path::new(".")),
        machine: facts::machine(),
        verdict: run_verdict(result),
        baseline: opts.baseline.as_ref().map(|b| b.source.clone()),
        harness_failures: result.harness_failures.clone(),
    };
    let mut summary = match RunSummary::build(&result.dir, facts, &result.verdicts) {
        Ok(s) => s,
        Err(e) => {
            result
                .harness_failures
                .push(format!("cannot build summary.json: {e}"));
            return;
        }
    };
    let mut failures = Vec::new();
    // The history first: when it cannot take the run, the files written after it say
    // so (a harness failure), instead of a "pass" the exit status contradicts.
    if let Some(path) = &opts.history
        && let Err(e) = record(path, &summary, &result.dir)
    {
        let failure = format!("cannot record the run in the history: {e}");
        summary.verdict = RunVerdict::HarnessFailed;
        summary.harness_failures.push(failure.clone());
        failures.push(failure);
    }
    if let Err(e) = summary.write(&result.dir) {
        failures.push(format!("cannot write summary.json: {e}"));
    }
    if let Some(file) = &opts.junit
        && let Err(e) = junit::write(file, &summary)
    {
        failures.push(format!(
            "cannot write the JUnit file {}: {e}",
            file.display()
        ));
    }
    if let Some(file) = &opts.step_summary
        && let Err(e) = step_summary::append(file, &summary)
    {
        failures.push(format!(
            "cannot append to GITHUB_STEP_SUMMARY {}: {e}",
            file.display()
        ));
    }
    result.harness_failures.extend(failures);
}

/// Appends the run and redraws the scenario's trend into the run folder.
fn record(path: &Path, summary: &RunSummary, dir: &Path) -> Result<(), String> {
    let mut history = History::open(path).map_err(|e| e.to_string())?;
    // Absolute, so `loadgen compare RUN_ID` finds the folder from anywhere.
    let folder = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    history
        .append(summary, &folder)
        .map_err(|e| e.to_string())?;
    let runs = history
        .runs(&Filter {
            scenario: Some(&summary.scenario.name),
            limit: TREND_RUNS,
            ..Filter::default()
        })
        .map_err(|e| e.to_string())?;
    trend::draw(&dir.join(trend::FILE), &runs).map_err(|e| e.to_string())
}
