//! Thresholds: the CI gate's rules, such as `cluster.dropped == 0`,
//! `cluster.checkout.p99 < 800ms` or `lost_orders == 0`. This module parses a rule
//! (`[mode.][step.]metric OP value[unit]`), checks it names a known mode and metric, and
//! evaluates it against any [`Metrics`] source, giving the table of threshold, actual
//! value and verdict. A limit may be relative to a baseline run
//! (`cluster.p99 < baseline * 1.25`, `cluster.throughput > baseline * 0.9`,
//! `cluster.p50 <= baseline + 20ms`): the source also says what the baseline measured,
//! and a rule with no baseline to compare with reads "no baseline". Where the numbers
//! come from (the run's summary, the invariant checks, the event log, the history) is
//! the source's business, not this module's. `value` reads the right-hand side of a
//! rule; `verdict` is the row a rule gives per mode.

use value::{parse_relative, parse_value, split_op};

/// A metric a threshold can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Requests,
    Dropped,
    Failed,
    Status5xx,
    Status503,
    AttemptFailures,
    Retried,
    P50,
    P90,
    P99,
    P999,
    Max,
    Throughput,
    LostOrders,
    DuplicateOrders,
    PhantomOrders,
    Oversold,
    VanishedCarts,
    Downtime,
}

/// How a metric's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number of requests; `%` makes it a share of the requests.
    Count,
    /// A duration, kept in milliseconds.
    Latency,
    /// Requests per second.
    Rate,
    /// A count checked after the run (no step, no percentage).
    Invariant,
}

const METRICS: &[(&str, Metric, Kind)] = &[
    ("requests", Metric::Requests, Kind::Count),
    ("dropped", Metric::Dropped, Kind::Count),
    ("failed", Metric::Failed, Kind::Count),
    ("status_5xx", Metric::Status5xx, Kind::Count),
    ("status_503", Metric::Status503, Kind::Count),
    ("attempt_failures", Metric::AttemptFailures, Kind::Count),
    ("retried", Metric::Retried, Kind::Count),
    ("p50", Metric::P50, Kind::Latency),
    ("p90", Metric::P90, Kind::Latency),
    ("p99", Metric::P99, Kind::Latency),
    ("p999", Metric::P999, Kind::Latency),
    ("max", Metric::Max, Kind::Latency),
    ("throughput", Metric::Throughput, Kind::Rate),
    ("lost_orders", Metric::LostOrders, Kind::Invariant),
    ("duplicate_orders", Metric::DuplicateOrders, Kind::Invariant),
    ("phantom_orders", Metric::PhantomOrders, Kind::Invariant),
    ("oversold", Metric::Oversold, Kind::Invariant),
    ("vanished_carts", Metric::VanishedCarts, Kind::Invariant),
    ("downtime", Metric::Downtime, Kind::Latency),
];

impl Metric {
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m, _)| *m == self)
            .map(|(n, _, _)| *n)
            .unwrap_or("?")
    }

    pub fn kind(self) -> Kind {
        METRICS
            .iter()
            .find(|(_, m, _)| *m == self)
            .map(|(_, _, k)| *k)
            .unwrap_or(Kind::Count)
    }

    fn parse(name: &str) -> Option<Metric> {
        METRICS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, m, _)| *m)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Eq => actual == limit,
            Op::Ne => actual != limit,
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The rule as the scenario wrote it.
    pub text: String,
    /// `None`: the rule applies to every mode, one verdict each.
    pub mode: Option<String>,
    pub step: Option<String>,
    pub metric: Metric,
    pub op: Op,
    /// The limit, in the metric's unit (ms for latencies) or in percent when `percent`.
    pub limit: f64,
    pub percent: bool,
    /// `Some`: the limit is relative to the baseline run's value of the same metric.
    pub baseline: Option<Relative>,
    /// Stop the run as soon as the rule is breached.
    pub abort_on_fail: bool,
}

/// How a limit follows from the baseline's value: `baseline * 1.25`, `baseline + 20ms`
/// (`limit` of the threshold is unused then).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Relative {
    /// `baseline * factor` (`baseline` alone is a factor of 1).
    Times(f64),
    /// `baseline + amount`, in the metric's unit (ms for latencies).
    Plus(f64),
}

impl Relative {
    pub fn limit(self, baseline: f64) -> f64 {
        match self {
            Relative::Times(f) => baseline * f,
            Relative::Plus(a) => baseline + a,
        }
    }
}

/// Why a threshold was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("`{text}`: expected `[mode.][step.]metric OP value`, with OP one of == != < <= > >=")]
    Syntax { text: String },
    #[error("`{text}`: unknown metric `{name}`; known: {known}")]
    UnknownMetric {
        text: String,
        name: String,
        known: String,
    },
    #[error("`{text}`: unknown mode `{name}`; this scenario runs: {known}")]
    UnknownMode {
        text: String,
        name: String,
        known: String,
    },
    #[error("`{text}`: unknown step `{name}`; the journey's steps: {known}")]
    UnknownStep {
        text: String,
        name: String,
        known: String,
    },
    #[error("`{text}`: bad value `{value}`: {why}")]
    Value {
        text: String,
        value: String,
        why: String,
    },
}

/// Where evaluated values come from. `None` means the run did not measure it.
pub trait Metrics {
    fn value(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64>;

    /// Why `mode` was not fully measured (requests cut off in flight, users never
    /// started), if it was not: then no count of failures can pass, since the
    /// requests nobody saw end might have failed too.
    fn incomplete(&self, _mode: &str) -> Option<String> {
        None
    }

    /// The baseline run's value of the metric (`None`: no baseline, or it did not
    /// measure this).
    fn baseline(&self, _mode: &str, _step: Option<&str>, _metric: Metric) -> Option<f64> {
        None
    }

    /// Whether a rule relative to a baseline fails when there is none (the scenario's
    /// `baseline.required`); otherwise it reads "no baseline" and does not fail.
    fn baseline_required(&self) -> bool {
        false
    }
}

impl Threshold {
    /// Parses `text` for a scenario that runs `modes` over a journey of `steps`.
    pub fn parse(
        text: &str,
        modes: &[String],
        steps: &[String],
    ) -> Result<Threshold, ThresholdError> {
        let syntax = || ThresholdError::Syntax {
            text: text.to_string(),
        };
        let (lhs, op, rhs) = split_op(text).ok_or_else(syntax)?;
        let parts: Vec<&str> = lhs.split('.').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(syntax());
        }
        let (metric_name, scope) = parts.split_last().ok_or_else(syntax)?;
        let metric = Metric::parse(metric_name).ok_or_else(|| ThresholdError::UnknownMetric {
            text: text.to_string(),
            name: metric_name.to_string(),
            known: METRICS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let (mode, step) = match scope {
            [] => (None, None),
            [one] if modes.iter().any(|m| m == one) => (Some(one.to_string()), None),
            [one] if steps.iter().any(|s| s == one) => (None, Some(one.to_string())),
            [one] => return Err(unknown_mode(text, one, modes)),
            [mode, step] => {
                if !modes.iter().any(|m| m == mode) {
                    return Err(unknown_mode(text, mode, modes));
                }
                if !steps.iter().any(|s| s == step) {
                    return Err(ThresholdError::UnknownStep {
                        text: text.to_string(),
                        name: step.to_string(),
                        known: steps.join(", "),
                    });
                }
                (Some(mode.to_string()), Some(step.to_string()))
            }
            _ => return Err(syntax()),
        };
        let baseline = parse_relative(text, rhs, metric)?;
        let (limit, percent) = match baseline {
            Some(_) => (0.0, false),
            None => parse_value(text, rhs, metric.kind())?,
        };
        let per_mode_only = metric.kind() == Kind::Invariant || metric == Metric::Downtime;
        if step.is_some() && per_mode_only {
            return Err(ThresholdError::Value {
                text: text.to_string(),
                value: rhs.to_string(),
                why: format!("`{}` is measured per mode, not per step", metric.name()),
            });
        }
        Ok(Threshold {
            text: text.trim().to_string(),
            mode,
            step,
            metric,
            op,
            limit,
            percent,
            baseline,
            abort_on_fail: false,
        })
    }

    /// Evaluates the rule; a rule without a mode gives one verdict per mode.
    pub fn evaluate(&self, modes: &[String], metrics: &dyn Metrics) -> Vec<Verdict> {
        let targets: Vec<&str> = match &self.mode {
            Some(mode) => vec![mode.as_str()],
            None => modes.iter().map(String::as_str).collect(),
        };
        targets
            .into_iter()
            .map(|mode| {
                let step = self.step.as_deref();
                let mut actual = metrics.value(mode, step, self.metric);
                if self.percent {
                    let total = metrics.value(mode, step, Metric::Requests);
                    actual = match (actual, total) {
                        (Some(v), Some(t)) if t > 0.0 => Some(v * 100.0 / t),
                        (Some(_), Some(_)) => Some(0.0),
                        _ => None,
                    };
                }
                // Something unmeasured never passes a gate, nor does a count of failures
                // in a mode whose cut-off left requests nobody saw end.
                let incomplete = matches!(self.metric, Metric::Dropped | Metric::Failed)
                    .then(|| metrics.incomplete(mode))
                    .flatten();
                let (limit, baseline, no_baseline) = match self.baseline {
                    None => (Some(self.limit), None, false),
                    Some(rel) => match metrics.baseline(mode, step, self.metric) {
                        Some(value) => {
                            let limit = rel.limit(value);
                            (Some(limit), Some(BaselineUse { value, limit }), false)
                        }
                        None => (None, None, true),
                    },
                };
                let pass = match limit {
                    Some(limit) => {
                        incomplete.is_none() && actual.is_some_and(|v| self.op.holds(v, limit))
                    }
                    // No baseline: passes unless the scenario requires one, and never
                    // when the run's own value is missing or incomplete.
                    None => {
                        !metrics.baseline_required() && incomplete.is_none() && actual.is_some()
                    }
                };
                let threshold = match &self.mode {
                    Some(_) => self.text.clone(),
                    None => format!("{mode}.{}", self.text),
                };
                let unit = match (self.percent, self.metric.kind()) {
                    (true, _) => "%",
                    (false, Kind::Latency) => "ms",
                    (false, Kind::Rate) => "/s",
                    _ => "",
                };
                Verdict {
                    threshold,
                    actual,
                    unit,
                    pass,
                    incomplete,
                    baseline,
                    limit,
                    no_baseline,
                }
            })
            .collect()
    }
}

fn unknown_mode(text: &str, name: &str, modes: &[String]) -> ThresholdError {
    ThresholdError::UnknownMode {
        text: text.to_string(),
        name: name.to_string(),
        known: modes.join(", "),
    }
}

mod value;
mod verdict;

pub use verdict::{BaselineUse, Verdict};

#[cfg(test)]
mod tests;
