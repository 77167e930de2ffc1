//! `loadgen run`: for each mode of the plan, start the server under test, wait until
//! it is ready, run one mode (`mode`), stop the server whatever happened, and write the
//! run folder after every mode so a failure later keeps what was measured. After the
//! last mode: the thresholds' verdicts and the report. Ctrl-C stops the load, writes
//! the folder and reports `interrupted`. Decides nothing about exit codes: the binary
//! maps the result.

pub(crate) mod accounting;
mod generators;
mod mode;
pub mod progress;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::sync::watch;

use crate::engine::shards;
use crate::engine::timeline::ModeOutcome;
use crate::observe::chaos::ChaosError;
use crate::observe::events::EventSink;
use crate::plan::threshold::Verdict;
use crate::plan::{ModePlan, RunPlan};
use crate::report::{self, ReportError};
use crate::runfolder;
use crate::sut::{Server, TargetError};
use crate::verdict::gate::{self, RunMetrics};

/// A run as the command line asks for it.
pub struct RunOptions {
    pub plan: RunPlan,
    /// The run folder; default reports/<scenario>/<timestamp>/.
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub allow_remote: bool,
    /// One execution segment of a run spread over machines (`--shard I/N`).
    pub segment: Option<crate::segment::SegmentRun>,
    /// What the run leaves for CI and later runs (summary.json, history, JUnit...).
    pub publish: crate::publish::PublishOptions,
    /// `--metrics-listen`: live OpenMetrics, fed from the merged snapshots.
    pub live: Option<crate::live::LiveMetrics>,
}

/// Why a run could not finish its job.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("cannot write the run folder {}: {source}", dir.display())]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("mode {mode}: {message}")]
    Generator { mode: String, message: String },
    #[error("mode {mode}: chaos: {source}")]
    Chaos { mode: String, source: ChaosError },
    /// loadgen's own limits cannot hold the planned users: checked before any load.
    #[error("{0}")]
    Limits(String),
}

/// What a finished (or interrupted) run measured and decided.
pub struct RunResult {
    pub dir: PathBuf,
    pub interrupted: bool,
    pub modes: Vec<ModeOutcome>,
    /// The thresholds' verdicts (empty when the scenario has none).
    pub verdicts: Vec<Verdict>,
    /// The abort-on-fail threshold that stopped the run early, if one did.
    pub aborted_by: Option<String>,
    /// Why the report pages could not be rendered (the CSV files are written).
    pub report_error: Option<ReportError>,
    /// Why the figures are not the server's alone (the generator's own faults or
    /// lateness, a broken conservation, chaos that could not be applied): the run
    /// cannot pass.
    pub harness_failures: Vec<String>,
}

/// How one mode ended, as the loop over modes needs to know.
struct ModeEnd {
    outcome: ModeOutcome,
    aborted_by: Option<String>,
    interrupted: bool,
    /// Why the mode's figures are not the server's alone (the generator's faults, a
    /// broken conservation, chaos that could not be applied).
    failures: Vec<String>,
}

pub async fn run(opts: RunOptions) -> Result<RunResult, RunError> {
    let plan = &opts.plan;
    let dir = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&plan.name)
            .join(runfolder::stamp(SystemTime::now()))
    });
    let folder_err = |source| RunError::Folder {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(folder_err)?;
    std::fs::write(dir.join("scenario.toml"), &plan.source).map_err(folder_err)?;
    // Before anything starts: can one loadgen process hold its share of the users?
    let per_process = plan.load.users.div_ceil(u64::from(plan.load.processes()));
    crate::limits::check_files(per_process).map_err(RunError::Limits)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });
    // Makes idempotency keys unique across runs against one database.
    let nonce = shards::unix_ns(SystemTime::now()) as u64 / 1_000_000;
    let mut done: Vec<ModeOutcome> = Vec::new();
    let mut events = EventSink::default();
    let mut interrupted = false;
    let mut aborted_by = None;
    let mut harness_failures = Vec::new();
    for mode in &plan.modes {
        let ended = with_server(&opts, mode, &dir, stop_rx.clone(), async |server| {
            mode::run_mode(
                &opts,
                mode,
                server,
                &dir,
                nonce,
                stop_rx.clone(),
                &mut events,
            )
            .await
        })
        .await;
        let ended = match ended {
            Ok(Some(ended)) => ended,
            // Interrupted before the server was ready.
            Ok(None) => {
                interrupted = true;
                break;
            }
            Err(e) => {
                write(&dir, &done, &events)?;
                return Err(e);
            }
        };
        harness_failures.extend(
            ended
                .failures
                .into_iter()
                .map(|what| format!("mode {}: {what}", mode.name)),
        );
        if let Some(live) = &opts.live {
            live.mode_ended(&mode.name);
        }
        done.push(ended.outcome);
        write(&dir, &done, &events)?;
        aborted_by = ended.aborted_by;
        interrupted = ended.interrupted;
        if interrupted || aborted_by.is_some() {
            break;
        }
    }
    let verdicts = if plan.thresholds.is_empty() {
        Vec::new()
    } else {
        let metrics = RunMetrics {
            modes: &done,
            events: &events,
            baseline: opts.publish.baseline.as_ref(),
            baseline_required: plan.baseline.required,
        };
        let verdicts = gate::evaluate(&plan.thresholds, &metrics);
        runfolder::write_thresholds(&dir, &verdicts).map_err(folder_err)?;
        verdicts
    };
    // A segment's folder holds every file the report is drawn from; its pages are the
    // merged run's (`loadgen report DIR` draws one segment's on demand), and so is its
    // place in the history (a 1/N share there would be taken for a run of the scenario).
    let segment = opts.segment.is_some();
    let mut result = RunResult {
        dir,
        interrupted,
        modes: done,
        verdicts,
        aborted_by,
        report_error: None,
        harness_failures,
    };
    // summary.json, history (and its trend chart), JUnit: before the report reads the folder.
    if !segment {
        crate::publish::after_run(plan, &opts.publish, &mut result);
        result.report_error = report::render(&result.dir).err();
    }
    Ok(result)
}

/// Starts the mode's server, waits until it is ready, runs `body` with it, and stops
/// it whatever `body` returned: the one place a server is stopped. `Ok(None)`: a
/// Ctrl-C came before the server was ready.
async fn with_server(
    opts: &RunOptions,
    mode: &ModePlan,
    dir: &Path,
    mut stop: watch::Receiver<bool>,
    body: impl AsyncFnOnce(&mut Server) -> Result<ModeEnd, RunError>,
) -> Result<Option<ModeEnd>, RunError> {
    let target = &opts.plan.target;
    let mut server = Server::start(mode, dir, opts.allow_remote).await?;
    let ready = tokio::select! {
        r = server.wait_ready(&target.ready_path, target.ready_timeout) => Some(r),
        _ = crate::engine::stopped(&mut stop) => None,
    };
    let result = match ready {
        None => Ok(None),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(())) => body(&mut server).await.map(Some),
    };
    server.stop(target.stop_signal, target.stop_timeout).await;
    result
}

fn write(dir: &Path, modes: &[ModeOutcome], events: &EventSink) -> Result<(), RunError> {
    runfolder::write_run(dir, modes, events).map_err(|source| RunError::Folder {
        dir: dir.to_path_buf(),
        source,
    })
}
