//! From a scenario's `[[chaos]]` entry to a validated [`ChaosRule`]: which action, its
//! signal, when it fires (fixed times or a rate), for which modes. Errors come back as
//! (key, message) so the scenario loader can name the file and line.

use std::str::FromStr;

use nix::sys::signal::Signal;

use super::plan::{ActionKind, ChaosRule, When};
use crate::scenario::Chaos;

/// Validates one `[[chaos]]` entry of a scenario whose modes are `modes`.
pub fn rule_from(spec: &Chaos, modes: &[String]) -> Result<ChaosRule, (String, String)> {
    let bad = |key: &str, message: String| Err((key.to_string(), message));
    let signal = |default: Signal| match spec.signal.as_deref() {
        None => Ok(default),
        Some(name) => parse_signal(name).ok_or_else(|| {
            (
                "signal".to_string(),
                format!("`{name}` is not a signal name such as SIGTERM or SIGHUP"),
            )
        }),
    };
    let kind = match spec.action.as_str() {
        "deploy" => ActionKind::Deploy {
            signal: signal(Signal::SIGTERM)?,
        },
        "kill" => ActionKind::Kill {
            signal: signal(Signal::SIGKILL)?,
        },
        "pause" => {
            if spec.signal.is_some() {
                return bad(
                    "signal",
                    "a pause always sends SIGSTOP, then SIGCONT".into(),
                );
            }
            match spec.duration {
                Some(d) if !d.0.is_zero() => ActionKind::Pause { duration: d.0 },
                _ => return bad("duration", "a pause needs a `duration` above zero".into()),
            }
        }
        other => {
            return bad(
                "action",
                format!("`{other}` is not `deploy`, `kill` or `pause`"),
            );
        }
    };
    if spec.duration.is_some() && !matches!(kind, ActionKind::Pause { .. }) {
        return bad("duration", "only a pause has a `duration`".into());
    }
    let when = match (&spec.at, spec.rate_per_min) {
        (Some(_), Some(_)) => {
            return bad(
                "rate_per_min",
                "give either `at` or `rate_per_min`, not both".into(),
            );
        }
        (None, None) => {
            return bad(
                "at",
                "give `at` (a time or a list) or `rate_per_min`".into(),
            );
        }
        (Some(at), None) => {
            if spec.from.is_some() || spec.until.is_some() {
                return bad("from", "`from` and `until` go with `rate_per_min`".into());
            }
            let times = at.times();
            if times.is_empty() {
                return bad("at", "the list of times is empty".into());
            }
            When::At(times)
        }
        (None, Some(rate)) => {
            if !rate.is_finite() || rate <= 0.0 {
                return bad("rate_per_min", "must be a number above zero".into());
            }
            let from = spec.from.map(|d| d.0).unwrap_or_default();
            if spec.until.is_some_and(|until| until.0 <= from) {
                return bad("until", "must be later than `from`".into());
            }
            When::Rate {
                per_minute: rate,
                from,
                until: spec.until.map(|d| d.0),
            }
        }
    };
    if let Some(unknown) = spec.modes.iter().find(|m| !modes.contains(m)) {
        return bad(
            "modes",
            format!(
                "`{unknown}` is not a mode of this scenario: {}",
                modes.join(", ")
            ),
        );
    }
    Ok(ChaosRule {
        kind,
        when,
        modes: spec.modes.clone(),
    })
}

/// `SIGTERM`, `TERM` or `sigterm`.
fn parse_signal(name: &str) -> Option<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).ok()
}
