//! The `loadgen` command: parses the CLI, hands a plan to the library, maps the
//! result to an exit code (0 ok, 1 a threshold breached, 2 bad scenario or usage,
//! 3 the harness failed, 130 interrupted after writing what was measured).

use clap::{Parser, Subcommand};
use loadgen::engine::shards as shard;
use loadgen::plan::chaos;
use loadgen::plan::scenario::Scenario;
use loadgen::run::{self as runner, RunError, RunOptions};
use loadgen::verdict::gate;
use loadgen::{report, runfolder as output};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Replays a scenario against a server and records honest latency and drop counts"
)]
struct Cli {
    /// Runtime threads per loadgen process (default: one per CPU; or LOADGEN_THREADS).
    #[arg(long, global = true)]
    threads: Option<usize>,
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
    },
    /// Check a scenario and exit (0 valid, 2 invalid).
    Validate { scenario: PathBuf },
    /// Re-render a run folder's charts and pages from its CSV files.
    Report { run_dir: PathBuf },
    /// Internal: run one shard of the users and stream snapshots on stdout.
    #[command(hide = true)]
    Shard(shard::ShardArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let code = rt.block_on(dispatch(cli.command));
    // A worker may still be blocked reading stdin; do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(200));
    ExitCode::from(code)
}

async fn dispatch(cmd: Cmd) -> u8 {
    match cmd {
        Cmd::Validate { scenario } => match Scenario::load(&scenario) {
            Ok(l) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}: valid: scenario `{}`, {} users, {} steps, modes {:?}",
                    scenario.display(),
                    l.scenario.name,
                    l.scenario.load.users,
                    l.scenario.journey.len(),
                    l.scenario
                        .target
                        .modes
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                );
                // The chaos timetable each mode will get: the same for every run of
                // this scenario, since random times come from its seed.
                let rules = chaos::rules_of(&l.scenario);
                for mode in &l.scenario.target.modes {
                    let plan = chaos::plan(
                        &rules,
                        l.scenario.seed,
                        &mode.name,
                        l.scenario.load.max_duration.0,
                    );
                    if plan.is_empty() {
                        continue;
                    }
                    let actions: Vec<String> = plan
                        .iter()
                        .map(|a| format!("{} at {:.2}s", a.kind.name(), a.at.as_secs_f64()))
                        .collect();
                    let _ = writeln!(
                        std::io::stdout(),
                        "  chaos in {}: {}",
                        mode.name,
                        actions.join(", ")
                    );
                }
                0
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                2
            }
        },
        Cmd::Run {
            scenario,
            out,
            modes,
            quiet,
            allow_remote,
        } => {
            let loaded = match Scenario::load(&scenario) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    return 2;
                }
            };
            let opts = RunOptions {
                loaded,
                out,
                modes,
                quiet,
                allow_remote,
            };
            match runner::run(opts).await {
                Ok(r) => {
                    // A closed stdout (piped into head) must not turn a finished run
                    // into a panic: the exit code still tells what happened.
                    let mut out = std::io::stdout();
                    let _ = write!(out, "{}", output::summary_table(&r.modes));
                    if !r.verdicts.is_empty() {
                        let _ = writeln!(out);
                        let _ = write!(out, "{}", gate::table(&r.verdicts));
                    }
                    let _ = writeln!(out, "run folder: {}", r.dir.display());
                    if let Some(threshold) = &r.aborted_by {
                        eprintln!("loadgen: stopped early: threshold `{threshold}` breached");
                    }
                    let failed: Vec<&str> = r
                        .verdicts
                        .iter()
                        .filter(|v| !v.pass)
                        .map(|v| v.threshold.as_str())
                        .collect();
                    if r.interrupted {
                        eprintln!("loadgen: interrupted; wrote what was measured");
                        130
                    } else if let Some(e) = &r.report_error {
                        eprintln!("loadgen: the report could not be rendered: {e}");
                        3
                    } else if !failed.is_empty() || r.aborted_by.is_some() {
                        eprintln!("loadgen: thresholds breached: {}", failed.join(", "));
                        1
                    } else {
                        let _ = writeln!(out, "report: {}", r.dir.join("index.html").display());
                        0
                    }
                }
                Err(RunError::Usage(m)) => {
                    eprintln!("loadgen: {m}");
                    2
                }
                Err(RunError::Harness(m)) => {
                    eprintln!("loadgen: {m}");
                    3
                }
            }
        }
        Cmd::Report { run_dir } => match report::render(&run_dir) {
            Ok(rendered) => {
                for chart in &rendered.charts {
                    println!("{}", chart.path.display());
                }
                println!("{}", rendered.markdown.display());
                println!("{}", rendered.html.display());
                0
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                // A folder that is not a run folder is bad usage, not a harness failure.
                2
            }
        },
        Cmd::Shard(args) => match shard::shard_main(args).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("loadgen shard: {e}");
                3
            }
        },
    }
}
