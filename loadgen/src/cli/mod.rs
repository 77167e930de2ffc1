//! The `loadgen` command line: parses the arguments, builds the run plan at the edge,
//! hands it to the stages, prints what came out and maps it to an exit code in one function,
//! [`exit_code`]: 0 ok, 1 a threshold breached, 2 bad scenario or usage, 3 the harness
//! failed, 130 interrupted after writing what was measured. The same failure gives the
//! same code in every command.

mod print;

use crate::compare::{self, CompareError};
use crate::engine::shards::{self, ShardArgs};
use crate::history::baseline::BaselineError;
use crate::history::{self, table::ShowError};
use crate::live::LiveMetrics;
use crate::merge::{self, MergeError, MergeOptions};
use crate::plan::scenario::ScenarioError;
use crate::plan::{PlanOptions, RunPlan};
use crate::report::{self, ReportError};
use crate::run::{self, RunError, RunOptions, RunResult};
use crate::segment::{self, flags::SegmentFlags};
use clap::{Parser, Subcommand};
use print::print_run;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Replays a scenario against a server and records honest latency and drop counts"
)]
struct Cli {
    /// Runtime threads that run users in every loadgen process (default: one per CPU).
    #[arg(long, global = true, env = "LOADGEN_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario once per server mode and write the run folder.
    Run {
        scenario: PathBuf,
        /// Run folder (default reports/<scenario>/<timestamp>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only these modes (repeatable), in the scenario's order otherwise.
        #[arg(long = "mode")]
        modes: Vec<String>,
        /// No live progress line (CI logs).
        #[arg(long)]
        quiet: bool,
        /// Allow a target that is not on loopback.
        #[arg(long)]
        allow_remote: bool,
        #[command(flatten)]
        segment: SegmentFlags,
        #[command(flatten)]
        gate: crate::publish::args::GateArgs,
    },
    /// Compare two runs (run folders or run ids): every figure with its change, the
    /// latency distributions overlaid, as compare.md and compare.html.
    Compare {
        a: String,
        b: String,
        /// Folder for the page and chart (default reports/compare/<A>-vs-<B>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The history that run ids are looked up in.
        #[arg(long, env = "LOADGEN_HISTORY", default_value = history::DEFAULT_PATH)]
        history: PathBuf,
    },
    /// The last runs in the history (of one scenario), and their trend chart.
    History {
        scenario: Option<String>,
        #[arg(long, env = "LOADGEN_HISTORY", default_value = history::DEFAULT_PATH)]
        history: PathBuf,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        last: usize,
        /// Where the trend chart goes (default reports/<scenario>/trend.png; drawn only
        /// for one scenario).
        #[arg(long)]
        chart: Option<PathBuf>,
    },
    /// Merge the run folders of a run's execution segments (`run --shard I/N`) into
    /// one run folder, then judge it: thresholds, report, exit code as `run`'s.
    Merge {
        /// The merged run folder to write.
        out: PathBuf,
        /// Every segment's run folder (all N of them).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Skip the invariant checks against the target (it is gone, or unreachable
        /// from where the merge runs).
        #[arg(long)]
        no_checks: bool,
        /// A segment whose second 0 came later than this after the agreed start fails
        /// the merge.
        #[arg(long, default_value_t = 5000, value_name = "MS")]
        late_ms: u64,
        #[command(flatten)]
        gate: crate::publish::args::GateArgs,
    },
    /// Check a scenario, print its plan and exit (0 valid, 2 invalid).
    Validate { scenario: PathBuf },
    /// Re-render a run folder's charts and pages from its CSV files.
    Report { run_dir: PathBuf },
    /// Internal: run one shard of the users and stream snapshots on stdout.
    #[command(hide = true)]
    Shard(ShardArgs),
}

/// What a command came to.
enum Outcome {
    /// The command did its job and printed what it had to.
    Done,
    Ran(RunResult),
    Failed(Failure),
}

/// A command that could not do its job.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("shard: {0}")]
    Shard(String),
    #[error("{0}")]
    Usage(String),
    #[error("merge: {0}")]
    Merge(#[from] MergeError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error(transparent)]
    History(#[from] ShowError),
    #[error(transparent)]
    Compare(#[from] CompareError),
    #[error("--metrics-listen {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let opts = PlanOptions {
        threads: cli.threads.map(usize::from),
        modes: Vec::new(),
        segment: None,
    };
    // One control thread merges, draws progress and runs chaos; users run on the
    // plan's own threads (`--threads`), each with a runtime of its own.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("loadgen-control")
        .enable_all()
        .build();
    let outcome = match rt {
        Ok(rt) => {
            let outcome = rt.block_on(dispatch(cli.command, opts));
            // A shard may still be blocked reading stdin; do not wait for it.
            rt.shutdown_timeout(Duration::from_millis(200));
            outcome
        }
        Err(e) => Outcome::Failed(Failure::Runtime(e)),
    };
    if let Outcome::Failed(f) = &outcome {
        eprintln!("loadgen: {f}");
    }
    ExitCode::from(exit_code(&outcome))
}

/// The exit status of every command, decided here and nowhere else.
fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Done => 0,
        Outcome::Ran(r) if r.interrupted => 130,
        Outcome::Ran(r) if r.report_error.is_some() || !r.harness_failures.is_empty() => 3,
        Outcome::Ran(r) if r.aborted_by.is_some() || r.verdicts.iter().any(|v| !v.pass) => 1,
        Outcome::Ran(_) => 0,
        Outcome::Failed(f) => match f {
            Failure::Scenario(_) => 2,
            Failure::Run(RunError::Target(t)) if t.is_usage() => 2,
            // A folder that is not a run folder is bad input; failing to draw or write
            // what was read is the harness's own failure.
            Failure::Report(ReportError::Folder(_) | ReportError::NoModes { .. }) => 2,
            Failure::Usage(_) | Failure::Merge(MergeError::Scenario(_)) => 2,
            Failure::Baseline(BaselineError::Folder(..) | BaselineError::Unknown(..))
            | Failure::Merge(MergeError::Baseline(
                BaselineError::Folder(..) | BaselineError::Unknown(..),
            )) => 2,
            Failure::Compare(c) if c.is_usage() => 2,
            Failure::Listen { .. } => 2,
            Failure::Run(_)
            | Failure::Report(_)
            | Failure::Shard(_)
            | Failure::Runtime(_)
            | Failure::Baseline(_)
            | Failure::History(_)
            | Failure::Compare(_)
            // A segment missing, unfinished or late: the run is not whole.
            | Failure::Merge(_) => 3,
        },
    }
}

async fn dispatch(cmd: Cmd, mut opts: PlanOptions) -> Outcome {
    match cmd {
        Cmd::Validate { scenario } => match RunPlan::load(&scenario, &opts) {
            Ok(plan) => {
                let _ = write!(std::io::stdout(), "{}", plan.describe());
                Outcome::Done
            }
            Err(e) => Outcome::Failed(e.into()),
        },
        Cmd::Run {
            scenario,
            out,
            modes,
            quiet,
            allow_remote,
            segment,
            gate,
        } => {
            opts.modes = modes;
            let segment = match segment.segment_run() {
                Ok(s) => s,
                Err(e) => return Outcome::Failed(Failure::Usage(e)),
            };
            opts.segment = segment.as_ref().map(|s| s.segment);
            let mut plan = match RunPlan::load(&scenario, &opts) {
                Ok(plan) => plan,
                Err(e) => return Outcome::Failed(e.into()),
            };
            if let Some(seg) = &segment
                && let Err(e) = segment::prepare(&mut plan, seg)
            {
                return Outcome::Failed(Failure::Usage(e));
            }
            let publish = match crate::publish::args::options(&plan, &gate) {
                Ok(p) => p,
                Err(e) => return Outcome::Failed(e.into()),
            };
            let live = match &gate.metrics_listen {
                None => None,
                Some(addr) => match LiveMetrics::start(addr, &plan.name).await {
                    Ok(live) => {
                        eprintln!("loadgen: live metrics at http://{}/metrics", live.addr);
                        Some(live)
                    }
                    Err(source) => {
                        return Outcome::Failed(Failure::Listen {
                            addr: addr.clone(),
                            source,
                        });
                    }
                },
            };
            let run = RunOptions {
                plan,
                out,
                quiet,
                allow_remote,
                segment,
                publish,
                live,
            };
            match run::run(run).await {
                Ok(r) => {
                    print_run(&r);
                    Outcome::Ran(r)
                }
                Err(e) => Outcome::Failed(e.into()),
            }
        }
        Cmd::Report { run_dir } => match report::render(&run_dir) {
            Ok(rendered) => {
                let mut out = std::io::stdout();
                for chart in &rendered.charts {
                    let _ = writeln!(out, "{}", chart.path.display());
                }
                let _ = writeln!(out, "{}", rendered.markdown.display());
                let _ = writeln!(out, "{}", rendered.html.display());
                Outcome::Done
            }
            Err(e) => Outcome::Failed(e.into()),
        },
        Cmd::Merge {
            out,
            dirs,
            no_checks,
            late_ms,
            gate,
        } => {
            if gate.metrics_listen.is_some() {
                return Outcome::Failed(Failure::Usage(
                    "--metrics-listen: a merge has no live run to serve (give it to the segments' `loadgen run`)".into(),
                ));
            }
            let merge = MergeOptions {
                out,
                dirs,
                checks: !no_checks,
                late_limit: Duration::from_millis(late_ms),
                gate,
            };
            match merge::merge(&merge).await {
                Ok(r) => {
                    print_run(&r);
                    Outcome::Ran(r)
                }
                Err(e) => Outcome::Failed(e.into()),
            }
        }
        Cmd::Compare { a, b, out, history } => match compare_runs(&a, &b, out, &history) {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        },
        Cmd::History {
            scenario,
            history,
            last,
            chart,
        } => match show_history(scenario.as_deref(), &history, last, chart) {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        },
        Cmd::Shard(args) => match shards::shard_main(args, &opts).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(Failure::Shard(e)),
        },
    }
}

/// `loadgen compare A B`: the page is printed, then the files written.
fn compare_runs(a: &str, b: &str, out: Option<PathBuf>, history: &Path) -> Result<(), Failure> {
    let done = compare::command(a, b, out, history)?;
    let mut stdout = std::io::stdout();
    let _ = write!(stdout, "{}", done.text);
    for file in done.chart.iter().chain([&done.markdown, &done.html]) {
        let _ = writeln!(stdout, "{}", file.display());
    }
    Ok(())
}

/// `loadgen history [SCENARIO]`: the table, then the trend chart's file.
fn show_history(
    scenario: Option<&str>,
    path: &Path,
    last: usize,
    chart: Option<PathBuf>,
) -> Result<(), Failure> {
    let shown = history::table::show(scenario, path, last, chart)?;
    let mut stdout = std::io::stdout();
    let _ = write!(stdout, "{}", shown.table);
    if let Some(file) = shown.chart {
        let _ = writeln!(stdout, "{}", file.display());
    }
    Ok(())
}
