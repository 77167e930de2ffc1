//! What `loadgen run` and `loadgen merge` print when a run is over: the summary table,
//! the verdicts, the run folder and, on stderr, why the run did not pass.

use crate::run::RunResult;
use crate::runfolder;
use crate::verdict::gate;
use std::io::Write;

/// The end of a run on the terminal: the summary, the verdicts, where the folder is and,
/// on stderr, why the run did not pass. A closed stdout (piped into head) must not turn
/// a finished run into a panic: the exit code still tells what happened.
pub(super) fn print_run(r: &RunResult) {
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", runfolder::summary_table(&r.modes));
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
    for m in &r.modes {
        if let Some(why) = gate::cut_off(&m.measured) {
            eprintln!(
                "loadgen: mode {} was cut off before its load ended ({why}): its dropped and failed counts are incomplete and cannot pass a threshold",
                m.mode()
            );
        }
    }
    for failure in &r.harness_failures {
        eprintln!("loadgen: {failure}");
    }
    if r.interrupted {
        eprintln!("loadgen: interrupted; wrote what was measured");
    } else if !r.harness_failures.is_empty() {
        eprintln!("loadgen: the run did not do what the scenario asked; see events.csv");
    } else if let Some(e) = &r.report_error {
        eprintln!("loadgen: the report could not be rendered: {e}");
    } else if !failed.is_empty() || r.aborted_by.is_some() {
        eprintln!("loadgen: thresholds breached: {}", failed.join(", "));
    } else if r.dir.join("index.html").exists() {
        let _ = writeln!(out, "report: {}", r.dir.join("index.html").display());
    }
}
