//! The command-line options of `loadgen run` that belong to the regression gate
//! (history, baselines, JUnit, live metrics) and turning them into
//! [`PublishOptions`]. The baseline is found here, before any load: a bad `--baseline`
//! is a usage error that costs no run.

use std::path::PathBuf;

use super::PublishOptions;
use crate::history::baseline::BaselineError;
use crate::history::{self, Baseline, History};
use crate::plan::RunPlan;

/// The regression gate's options of `loadgen run`: history, baselines, CI outputs.
#[derive(clap::Args)]
pub struct GateArgs {
    /// The run history (SQLite) this run is appended to and baselines are read from.
    #[arg(long, env = "LOADGEN_HISTORY", default_value = history::DEFAULT_PATH)]
    pub history: PathBuf,
    /// Do not read or write a history.
    #[arg(long, env = "LOADGEN_NO_HISTORY", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_history: bool,
    /// The baseline of relative thresholds: a run folder or a run id of the history
    /// (default: the last passing run of this scenario).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Baselines come only from runs made on this git branch.
    #[arg(long)]
    pub baseline_branch: Option<String>,
    /// The baseline is the median of the last K passing runs (overrides baseline.runs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub baseline_runs: Option<u32>,
    /// Write the thresholds and invariants as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Serve live OpenMetrics at http://ADDR/metrics while the run goes.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

/// The history, baseline and CI outputs a run asked for; the baseline is found here,
/// before any load, so a bad `--baseline` is a usage error that costs no run.
pub fn options(plan: &RunPlan, gate: &GateArgs) -> Result<PublishOptions, BaselineError> {
    let history = (!gate.no_history).then(|| gate.history.clone());
    let opened = match &history {
        Some(path) if gate.baseline.is_some() || plan.has_relative_thresholds() => {
            History::open_existing(path)?
        }
        _ => None,
    };
    let baseline = match (&gate.baseline, plan.has_relative_thresholds()) {
        (Some(name), _) => Some(Baseline::named(name, opened.as_ref())?),
        (None, true) => match &opened {
            Some(h) => {
                let branch = gate
                    .baseline_branch
                    .as_deref()
                    .or(plan.baseline.branch.as_deref());
                let k = gate
                    .baseline_runs
                    .map_or(plan.baseline.runs, |k| k as usize);
                Baseline::last_passing(h, &plan.name, branch, k)?
            }
            None => None,
        },
        (None, false) => None,
    };
    Ok(PublishOptions {
        history,
        junit: gate.junit.clone(),
        step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        baseline,
    })
}
