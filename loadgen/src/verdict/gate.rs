//! The CI gate: evaluates a scenario's thresholds against what a run measured and
//! prints the verdict table. It is the one place that maps a threshold metric to a
//! number of the run (counts and latencies from the merged mode data, downtime from the
//! event log, lost/duplicate/phantom/oversold/vanished from the invariant checks, the
//! baseline's figures from the history or a named run), so the
//! table, thresholds.csv and the exit status always agree. Parsing and comparing live
//! in `threshold`; deciding the exit code is `main`'s.

use std::fmt::Write as _;

use crate::engine::snapshot::Hist;
use crate::engine::timeline::{ModeOutcome, Timeline};
use crate::history::Baseline;
use crate::observe::events::{EventSink, Kind};
use crate::outcome::{Class, Counts};
use crate::plan::threshold::{Metric, Metrics, Threshold, Verdict};
use crate::verdict::invariants::InvariantReport;

/// The measured values of a run (or of the modes run so far), and the baseline that
/// relative thresholds compare with.
pub struct RunMetrics<'a> {
    pub modes: &'a [ModeOutcome],
    pub events: &'a EventSink,
    pub baseline: Option<&'a Baseline>,
    /// The scenario's `baseline.required`.
    pub baseline_required: bool,
}

impl Metrics for RunMetrics<'_> {
    fn value(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64> {
        let m = self.modes.iter().find(|m| m.mode() == mode)?;
        let invariants = m.invariants.as_ref().and_then(|r| r.as_ref().ok());
        mode_value(&m.measured, invariants, step, metric, self.events)
    }

    fn incomplete(&self, mode: &str) -> Option<String> {
        let m = self.modes.iter().find(|m| m.mode() == mode)?;
        cut_off(&m.measured).map(|why| format!("not fully measured: {why}"))
    }

    fn baseline(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64> {
        self.baseline?.value(mode, step, metric)
    }

    fn baseline_required(&self) -> bool {
        self.baseline_required
    }
}

/// One metric of one mode (and step); `None` when the run did not measure it.
pub fn mode_value(
    data: &Timeline,
    invariants: Option<&InvariantReport>,
    step: Option<&str>,
    metric: Metric,
    events: &EventSink,
) -> Option<f64> {
    let (counts, hist) = match step {
        None => (data.total(), data.all_hist()),
        Some(name) => {
            let i = data.steps.iter().position(|s| s == name)?;
            (
                *data.step_counts.get(i)?,
                data.fin.step_hists.get(i)?.clone(),
            )
        }
    };
    let invariants = || invariants;
    let count = |n: u64| Some(n as f64);
    match metric {
        Metric::Requests => count(counts.completed()),
        Metric::Dropped => count(counts.dropped()),
        Metric::Failed => count(counts.failed()),
        // "Zero 5xx" means every 5xx, 503 included; status_503 singles it out.
        Metric::Status5xx => count(counts.class(Class::Status5xx) + counts.class(Class::Status503)),
        Metric::Status503 => count(counts.class(Class::Status503)),
        Metric::AttemptFailures => count(counts.attempt_failures),
        Metric::Retried => count(counts.retried),
        Metric::P50 => latency(&hist, 0.5),
        Metric::P90 => latency(&hist, 0.9),
        Metric::P99 => latency(&hist, 0.99),
        Metric::P999 => latency(&hist, 0.999),
        Metric::Max => (!hist.0.is_empty()).then(|| hist.max_ms()),
        Metric::Throughput => throughput(&counts, data.fin.duration_s),
        Metric::LostOrders => invariants().map(|r| r.lost_orders as f64),
        Metric::DuplicateOrders => invariants().map(|r| r.duplicate_orders as f64),
        Metric::PhantomOrders => invariants()
            .and_then(|r| r.phantom_orders)
            .map(|n| n as f64),
        Metric::Oversold => invariants().map(|r| r.oversold as f64),
        Metric::VanishedCarts => invariants().map(|r| r.vanished_carts as f64),
        // Total time nobody answered while the naive supervisor restarted the server;
        // zero when no restart happened (a cluster replaces workers with no downtime
        // to measure here: its cost shows in dropped and latency instead).
        Metric::Downtime => Some(
            events
                .of_mode(&data.mode)
                .filter(|e| e.kind == Kind::Downtime)
                .filter_map(|e| e.detail.parse::<f64>().ok())
                .sum(),
        ),
    }
}

/// What a cut-off left unmeasured in a mode: requests in flight, users never started.
pub fn cut_off(data: &Timeline) -> Option<String> {
    let cut = data.total().class(Class::Cut);
    let never = data.fin.users_never_started;
    match (cut, never) {
        (0, 0) => None,
        (cut, 0) => Some(format!("{cut} requests cut off in flight")),
        (0, never) => Some(format!("{never} users never started")),
        (cut, never) => Some(format!(
            "{cut} requests cut off in flight, {never} users never started"
        )),
    }
}

fn latency(hist: &Hist, q: f64) -> Option<f64> {
    (!hist.0.is_empty()).then(|| hist.ms_at(q))
}

fn throughput(counts: &Counts, duration_s: f64) -> Option<f64> {
    (duration_s > 0.0).then(|| counts.completed() as f64 / duration_s)
}

/// Evaluates every threshold for the modes that ran.
pub fn evaluate(thresholds: &[Threshold], metrics: &RunMetrics<'_>) -> Vec<Verdict> {
    let ran: Vec<String> = metrics.modes.iter().map(|m| m.mode().to_string()).collect();
    thresholds
        .iter()
        .flat_map(|t| t.evaluate(&ran, metrics))
        .collect()
}

/// The first abort-on-fail threshold of `mode` that its running numbers already breach.
/// Only what can get no better as the run goes on is judged early: counts that must
/// stay at or below a limit, and the maximum latency.
pub fn breached_early<'a>(
    thresholds: &'a [Threshold],
    data: &Timeline,
    events: &EventSink,
) -> Option<&'a Threshold> {
    use crate::plan::threshold::Op;
    thresholds.iter().filter(|t| t.abort_on_fail).find(|t| {
        // A limit relative to a baseline is judged at the end only.
        let applies = t.baseline.is_none() && t.mode.as_deref().is_none_or(|m| m == data.mode);
        let monotonic = matches!(
            t.metric,
            Metric::Dropped
                | Metric::Failed
                | Metric::Status5xx
                | Metric::Status503
                | Metric::AttemptFailures
                | Metric::Retried
                | Metric::Max
        ) && !t.percent
            && matches!(t.op, Op::Eq | Op::Lt | Op::Le);
        if !applies || !monotonic {
            return false;
        }
        // Only counts are judged early: the invariants are checked after the load.
        let value = mode_value(data, None, t.step.as_deref(), t.metric, events);
        value.is_some_and(|v| match t.op {
            Op::Eq | Op::Le => v > t.limit,
            _ => v >= t.limit,
        })
    })
}

/// The verdict table as printed at the end of a run.
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    let width = verdicts
        .iter()
        .map(|v| v.threshold.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let actuals: Vec<String> = verdicts.iter().map(Verdict::actual_text).collect();
    let actual_w = actuals.iter().map(String::len).max().unwrap_or(16).max(16);
    let _ = writeln!(
        out,
        "{:<width$}  {:>actual_w$}  verdict",
        "threshold", "actual"
    );
    for (v, actual) in verdicts.iter().zip(&actuals) {
        let verdict = v.word();
        let _ = writeln!(
            out,
            "{:<width$}  {actual:>actual_w$}  {verdict}",
            v.threshold
        );
    }
    out
}
