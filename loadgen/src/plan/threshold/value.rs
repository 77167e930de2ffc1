//! Reading the two sides of a threshold: splitting `a OP b` at its operator, and the
//! limit, either a value with its unit (`800ms`, `1s`, `0.1%`) or a limit relative to
//! the baseline (`baseline * 1.25`, `baseline + 20ms`).

use super::{Kind, Metric, Op, Relative, ThresholdError};

/// Splits `a OP b` at its operator (two-character operators first).
pub(super) fn split_op(text: &str) -> Option<(&str, Op, &str)> {
    const OPS: &[(&str, Op)] = &[
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    OPS.iter().find_map(|(token, op)| {
        let at = text.find(token)?;
        let (lhs, rhs) = (text[..at].trim(), text[at + token.len()..].trim());
        (!lhs.is_empty() && !rhs.is_empty()).then_some((lhs, *op, rhs))
    })
}

/// Reads `baseline`, `baseline * F` or `baseline + V[unit]`; `None` when `value` does
/// not start with `baseline`. Only the run's summary figures have a baseline: counts
/// (not as a share), latencies and throughput of a mode or step.
pub(super) fn parse_relative(
    text: &str,
    value: &str,
    metric: Metric,
) -> Result<Option<Relative>, ThresholdError> {
    let Some(rest) = value.strip_prefix("baseline") else {
        return Ok(None);
    };
    let bad = |why: &str| ThresholdError::Value {
        text: text.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    };
    if matches!(metric.kind(), Kind::Invariant) || metric == Metric::Downtime {
        return Err(bad(
            "a baseline exists for the summary figures only (counts, latencies, throughput)",
        ));
    }
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(Some(Relative::Times(1.0)));
    }
    if let Some(factor) = rest.strip_prefix('*') {
        let f: f64 = factor
            .trim()
            .parse()
            .map_err(|_| bad("expected `baseline * NUMBER`"))?;
        if !f.is_finite() || f < 0.0 {
            return Err(bad("the factor must be a finite number >= 0"));
        }
        return Ok(Some(Relative::Times(f)));
    }
    if let Some(amount) = rest.strip_prefix('+') {
        let (v, percent) = parse_value(text, amount.trim(), metric.kind())?;
        if percent {
            return Err(bad("`baseline + N%` is not supported: use `baseline * F`"));
        }
        return Ok(Some(Relative::Plus(v)));
    }
    Err(bad(
        "expected `baseline`, `baseline * NUMBER` or `baseline + VALUE`",
    ))
}

/// Reads a limit: `0`, `1.5`, `800ms`, `1s`, `0.1%`. Latencies come back in ms.
pub(super) fn parse_value(
    text: &str,
    value: &str,
    kind: Kind,
) -> Result<(f64, bool), ThresholdError> {
    let bad = |why: &str| ThresholdError::Value {
        text: text.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    };
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(value.len());
    let (number, unit) = (value[..split].trim(), value[split..].trim());
    let number: f64 = number.parse().map_err(|_| bad("not a number"))?;
    if !number.is_finite() {
        return Err(bad("not a finite number"));
    }
    match (kind, unit) {
        (Kind::Latency, "" | "ms") => Ok((number, false)),
        (Kind::Latency, "s") => Ok((number * 1000.0, false)),
        (Kind::Latency, "us" | "µs") => Ok((number / 1000.0, false)),
        (Kind::Count, "%") => Ok((number, true)),
        (Kind::Count | Kind::Rate | Kind::Invariant, "") => Ok((number, false)),
        (Kind::Latency, _) => Err(bad("a latency takes ms, s or us")),
        (Kind::Count, _) => Err(bad("a count takes no unit, or % of the requests")),
        (Kind::Rate | Kind::Invariant, _) => Err(bad("this metric takes no unit")),
    }
}
