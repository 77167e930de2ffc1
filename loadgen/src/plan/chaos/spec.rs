//! From a scenario's `[[chaos]]` entry to a validated [`ChaosRule`]: which action, its
//! signal, when it fires (fixed times, a rate, or a count of random times), for which
//! modes. Errors come back as (key, message) so the scenario loader can name the file
//! and line.

use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::timetable::{ActionKind, ChaosRule, DeployBy, DeployCommand, Release, When};
use crate::plan::scenario::Chaos;

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
            by: deploy_by(spec, signal(Signal::SIGTERM)?)?,
            release: Release {
                version: spec.version.clone(),
                start_link: spec.start_link.clone(),
            },
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
    if !matches!(kind, ActionKind::Deploy { .. }) {
        if spec.command.is_some() {
            return bad("command", "only a deploy runs a command".into());
        }
        if spec.timeout.is_some() {
            return bad(
                "timeout",
                "only a deploy by `command` has a `timeout`".into(),
            );
        }
        if spec.version.is_some() {
            return bad("version", "only a deploy changes the version".into());
        }
        if spec.start_link.is_some() {
            return bad("start_link", "only a deploy changes the start link".into());
        }
    }
    // The window of random times: from `from` (default the start) to `until`.
    let window = || -> Result<(Duration, Option<Duration>), (String, String)> {
        let from = spec.from.map(|d| d.0).unwrap_or_default();
        if spec.until.is_some_and(|until| until.0 <= from) {
            return Err(("until".into(), "must be later than `from`".into()));
        }
        Ok((from, spec.until.map(|d| d.0)))
    };
    let when = match (&spec.at, spec.rate_per_min, spec.count) {
        (None, None, None) => {
            return bad(
                "at",
                "give `at` (a time or a list), `rate_per_min` or `count`".into(),
            );
        }
        (Some(at), None, None) => {
            if spec.from.is_some() || spec.until.is_some() {
                return bad(
                    "from",
                    "`from` and `until` go with `rate_per_min` or `count`".into(),
                );
            }
            let times = at.times();
            if times.is_empty() {
                return bad("at", "the list of times is empty".into());
            }
            When::At(times)
        }
        (None, Some(rate), None) => {
            if !rate.is_finite() || rate <= 0.0 {
                return bad("rate_per_min", "must be a number above zero".into());
            }
            let (from, until) = window()?;
            When::Rate {
                per_minute: rate,
                from,
                until,
            }
        }
        (None, None, Some(count)) => {
            if count == 0 {
                return bad("count", "must be at least 1".into());
            }
            let (from, until) = window()?;
            let Some(until) = until else {
                return bad("until", "`count` needs the window's end, `until`".into());
            };
            When::Count { count, from, until }
        }
        _ => {
            let key = if spec.count.is_some() {
                "count"
            } else {
                "rate_per_min"
            };
            return bad(
                key,
                "give only one of `at`, `rate_per_min` and `count`".into(),
            );
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
        optional: spec.optional,
    })
}

/// Default limit on a deploy command: a PM2 reload or a rollout of a few workers.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A deploy sends `signal`, or runs the rule's `command` (then no signal is given).
fn deploy_by(spec: &Chaos, signal: Signal) -> Result<DeployBy, (String, String)> {
    let bad = |key: &str, message: &str| Err((key.to_string(), message.to_string()));
    let Some(argv) = &spec.command else {
        if spec.timeout.is_some() {
            return bad("timeout", "a `timeout` goes with a deploy `command`");
        }
        return Ok(DeployBy::Signal(signal));
    };
    if spec.signal.is_some() {
        return bad(
            "command",
            "give either `signal` or `command`: a deploy by command sends no signal",
        );
    }
    if argv.first().is_none_or(|program| program.trim().is_empty()) {
        return bad(
            "command",
            "give the program and its arguments, e.g. [\"pm2\", \"reload\", \"all\"]",
        );
    }
    let timeout = spec.timeout.map_or(DEFAULT_COMMAND_TIMEOUT, |t| t.0);
    if timeout.is_zero() {
        return bad("timeout", "must be above zero");
    }
    Ok(DeployBy::Command(DeployCommand {
        argv: argv.clone(),
        timeout,
    }))
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
