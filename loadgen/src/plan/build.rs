//! The plan's builder: checks what serde cannot (an empty journey, a zero rate, a
//! mode listed twice, a threshold naming an unknown step) and turns each part of a
//! parsed scenario into its typed, already-parsed form. Every check reports a key path
//! such as `load.arrival.peak_rate` or `thresholds[1]`; the caller adds the file and
//! line. The parts it returns are the ones the run uses: nothing is checked here and
//! parsed again later.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::arrivals::Profile;
use super::chaos::{ActionKind, ChaosRule, Release, When, rule_from};
use super::journey::{Journey, safe_char};
use super::scenario::{Arrival, Load, Mode, Scenario};
use super::threshold::Threshold;
use super::{Launch, LoadPlan, ModePlan, Problem, RunPlan, TargetPlan};
use crate::verdict::invariants::AuditPaths;

/// Signals that may stop a server loadgen started.
const STOP_SIGNALS: &[&str] = &["SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP", "SIGKILL"];
/// One process must keep file descriptors for the connections plus a margin.
pub const MAX_USERS_PER_PROCESS: u64 = 18_000;

fn bad<T>(key: &str, message: impl Into<String>) -> Result<T, Problem> {
    Err((key.to_string(), message.into()))
}

/// Builds the plan of every mode of `s`; `threads` is the command line's choice.
pub(super) fn build(s: Scenario, source: &str, threads: Option<usize>) -> Result<RunPlan, Problem> {
    if s.name.is_empty() || !s.name.chars().all(safe_char) {
        return bad(
            "name",
            format!(
                "`{}` must be non-empty letters, digits, `-`, `_` or `.`",
                s.name
            ),
        );
    }
    if s.target.modes.is_empty() {
        return bad("target.modes", "at least one [[target.modes]] is needed");
    }
    let stop_signal = match STOP_SIGNALS.contains(&s.target.stop_signal.as_str()) {
        true => Signal::from_str(&s.target.stop_signal).ok(),
        false => None,
    };
    let Some(stop_signal) = stop_signal else {
        return bad(
            "target.stop_signal",
            format!("`{}` is not one of {STOP_SIGNALS:?}", s.target.stop_signal),
        );
    };
    let modes = s
        .target
        .modes
        .iter()
        .enumerate()
        .map(|(i, m)| mode(i, m, &s.target.modes[..i]))
        .collect::<Result<Vec<ModePlan>, Problem>>()?;
    let load = load(&s.load, threads)?;
    let journey = Journey::compile(&s.journey, &s.request)?;
    let mode_names: Vec<String> = modes.iter().map(|m| m.name.clone()).collect();
    let length = load_length(&load, &journey);
    let chaos = s
        .chaos
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let rule =
                rule_from(c, &mode_names).map_err(|(k, m)| (format!("chaos[{i}].{k}"), m))?;
            within_load(&rule, length, &load).map_err(|(k, m)| (format!("chaos[{i}].{k}"), m))?;
            releases_fit(&rule, &modes).map_err(|(k, m)| (format!("chaos[{i}].{k}"), m))?;
            super::target::chaos_fits(&rule, &modes)
                .map_err(|(k, m)| (format!("chaos[{i}].{k}"), m))?;
            Ok(rule)
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let steps = journey.step_names();
    let thresholds = s
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut parsed = Threshold::parse(t.check(), &mode_names, &steps)
                .map_err(|e| (format!("thresholds[{i}]"), e.to_string()))?;
            parsed.abort_on_fail = t.abort();
            Ok(parsed)
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let baseline = match s.baseline.runs {
        Some(0) => return bad("baseline.runs", "must be at least 1"),
        runs => super::BaselinePlan {
            runs: runs.unwrap_or(1) as usize,
            branch: s.baseline.branch.clone(),
            required: s.baseline.required,
        },
    };
    Ok(RunPlan {
        baseline,
        name: s.name,
        path: PathBuf::new(),
        source: source.to_string(),
        seed: s.seed,
        target: TargetPlan {
            ready_path: s.target.ready_path,
            ready_timeout: s.target.ready_timeout.0,
            stop_signal,
            stop_timeout: s.target.stop_timeout.0,
        },
        modes,
        load,
        journey,
        chaos,
        thresholds,
        invariants: s
            .invariants
            .map(|i| AuditPaths::new(i.audit, i.order, i.cart, i.orders))
            .transpose()?,
    })
}

/// Mode `i`, given the modes listed before it.
fn mode(i: usize, m: &Mode, earlier: &[Mode]) -> Result<ModePlan, Problem> {
    let key = |k: &str| format!("target.modes[{i}].{k}");
    if m.name.is_empty() || !m.name.chars().all(safe_char) {
        return bad(
            &key("name"),
            format!("`{}` must be letters, digits, `-`, `_` or `.`", m.name),
        );
    }
    if earlier.iter().any(|o| o.name == m.name) {
        return bad(&key("name"), format!("mode `{}` is listed twice", m.name));
    }
    let launch = match (&m.url, m.command.is_empty()) {
        (Some(_), false) => return bad(&key("url"), "give either `command` or `url`, not both"),
        (None, true) => {
            return bad(
                &key("command"),
                "give a `command` to start or an external `url`",
            );
        }
        (Some(u), true) if !u.starts_with("http://") && !u.starts_with("https://") => {
            return bad(
                &key("url"),
                format!("`{u}` must start with http:// or https://"),
            );
        }
        (None, false) if !m.command.iter().any(|a| a.contains("{port}")) => {
            return bad(
                &key("command"),
                "the command must use the `{port}` placeholder",
            );
        }
        (Some(_), true) if m.version.is_some() || m.start_link.is_some() => {
            return bad(
                &key("version"),
                "`version` and `start_link` are for a server loadgen starts, not a `url`",
            );
        }
        (Some(url), true) => Launch::External {
            url: super::target::expand(&key("url"), url)?,
            pidfile: m
                .pidfile
                .as_deref()
                .map(|p| super::target::expand(&key("pidfile"), p).map(PathBuf::from))
                .transpose()?,
        },
        (None, false) => Launch::Command {
            argv: m.command.clone(),
            host: m.host.clone(),
        },
    };
    super::target::settings_fit(i, m)?;
    let uses = |p: &str| m.command.iter().any(|a| a.contains(p));
    if uses("{start}") && m.start_link.is_none() {
        return bad(
            &key("start_link"),
            "the command uses `{start}`: say what it points at first, e.g. start_link = \"{bin_dir}/shop-server\"",
        );
    }
    if uses("{version_file}") && m.version.is_none() {
        return bad(
            &key("version"),
            "the command uses `{version_file}`: give the first version, e.g. version = \"v1\"",
        );
    }
    Ok(ModePlan {
        name: m.name.clone(),
        // Nobody can restart a server the harness did not start.
        supervise: m.supervise && matches!(launch, Launch::Command { .. }),
        launch,
        deploy_strategy: m.deploy_strategy.clone(),
        workers: super::target::workers(i, m)?,
        restart_delay: m.restart_delay.0,
        release: Release {
            version: m.version.clone(),
            start_link: m.start_link.clone(),
        },
    })
}

fn load(l: &Load, threads: Option<usize>) -> Result<LoadPlan, Problem> {
    if l.users == 0 {
        return bad("load.users", "must be at least 1");
    }
    if l.users_per_process == 0 || l.users_per_process > MAX_USERS_PER_PROCESS {
        return bad(
            "load.users_per_process",
            format!("must be 1..={MAX_USERS_PER_PROCESS} (open-file limit)"),
        );
    }
    if l.source_addresses == 0 {
        return bad("load.source_addresses", "must be at least 1");
    }
    if l.timeout.0.is_zero() {
        return bad("load.timeout", "must be above zero");
    }
    if l.max_duration.0.is_zero() {
        return bad("load.max_duration", "must be above zero");
    }
    if l.late_after.0.is_zero() {
        return bad("load.late_after", "must be above zero");
    }
    if !(0.0..=1.0).contains(&l.late_budget) {
        return bad(
            "load.late_budget",
            format!(
                "{} is not a share between 0 and 1 (0.01 = 1%)",
                l.late_budget
            ),
        );
    }
    check_arrival(&l.arrival)?;
    let schedule = Profile::from_scenario(&l.arrival).schedule(l.users);
    let last_arrival = schedule.last().copied().unwrap_or_default();
    if l.max_duration.0 < last_arrival {
        return bad(
            "load.max_duration",
            format!(
                "{:.1}s ends before the last user is due ({:.1}s): users due after it would never start; raise it above {:.0}s plus the journey's length",
                l.max_duration.0.as_secs_f64(),
                last_arrival.as_secs_f64(),
                last_arrival.as_secs_f64().ceil(),
            ),
        );
    }
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    Ok(LoadPlan {
        users: l.users,
        schedule,
        timeout: l.timeout.0,
        max_duration: l.max_duration.0,
        retry_count: l.retry.count,
        retry_backoff: l.retry.backoff.0,
        users_per_process: l.users_per_process,
        source_addresses: l.source_addresses,
        threads,
        late_after: l.late_after.0,
        late_budget: l.late_budget,
        segment: crate::segment::Segment::WHOLE,
    })
}

fn check_arrival(a: &Arrival) -> Result<(), Problem> {
    let key = |k: &str| format!("load.arrival.{k}");
    let spike = a.baseline_rate.is_some()
        || a.baseline.is_some()
        || a.ramp.is_some()
        || a.peak_rate.is_some();
    match (spike, a.stages.is_empty()) {
        (true, false) => {
            return bad(
                &key("stages"),
                "give either the spike keys or `stages`, not both",
            );
        }
        (false, true) => {
            return bad(
                &key("peak_rate"),
                "give `peak_rate` (with baseline_rate, baseline, ramp) or `stages`",
            );
        }
        _ => {}
    }
    let rate_ok = |r: f64| r.is_finite() && r >= 0.0;
    if spike {
        let peak = a.peak_rate.unwrap_or(0.0);
        if !rate_ok(peak) || peak <= 0.0 {
            return bad(
                &key("peak_rate"),
                "must be a number of users per second above zero",
            );
        }
        if !rate_ok(a.baseline_rate.unwrap_or(0.0)) {
            return bad(
                &key("baseline_rate"),
                "must be zero or more users per second",
            );
        }
        return Ok(());
    }
    for (i, st) in a.stages.iter().enumerate() {
        if !rate_ok(st.rate) || !rate_ok(st.to.unwrap_or(st.rate)) {
            return bad(&key(&format!("stages[{i}]")), "rates must be zero or more");
        }
    }
    let last_rate = a
        .stages
        .last()
        .map_or(0.0, |last| last.to.unwrap_or(last.rate));
    if last_rate <= 0.0 {
        return bad(
            &key("stages"),
            "the last stage must end with a rate above zero so every user arrives",
        );
    }
    Ok(())
}

/// How long the load is expected to last: the last arrival plus one journey walked with
/// average think times (answers taken as instant), capped by `max_duration`. Chaos after
/// it would hit a server nobody is measuring.
pub(super) fn load_length(load: &LoadPlan, journey: &Journey) -> Duration {
    let walk: Duration = journey
        .steps
        .iter()
        .map(|st| (st.think.min + st.think.max) / 2 * st.repeat)
        .sum();
    (load.last_arrival() + walk).min(load.max_duration)
}

/// Refuses chaos timed after the load's expected end: a fixed time, or a count of
/// random times whose window ends after it (some would be lost).
fn within_load(rule: &ChaosRule, length: Duration, load: &LoadPlan) -> Result<(), Problem> {
    let late = |key: &str, at: Duration| {
        bad(
            key,
            format!(
                "{:.1}s is after the load's expected end at {:.1}s (last arrival {:.1}s plus one journey with average think times, at most max_duration): nothing would measure it",
                at.as_secs_f64(),
                length.as_secs_f64(),
                load.last_arrival().as_secs_f64(),
            ),
        )
    };
    match &rule.when {
        When::At(times) => match times.iter().find(|t| **t > length) {
            Some(t) => late("at", *t),
            None => Ok(()),
        },
        // A rate's window may run past the end: its random times stop there, and
        // `loadgen validate` shows the timetable that results.
        When::Rate { from, .. } if *from >= length => late("from", *from),
        When::Rate { .. } => Ok(()),
        When::Count { until, .. } if *until > length => late("until", *until),
        When::Count { .. } => Ok(()),
    }
}

/// A file a scenario names, read as `url` and `pidfile` are (`~/` and `${NAME}`
/// expanded); a relative path is relative to the scenario file's folder.
pub(super) fn resolve_file(scenario: &str, key: &str, path: &Path) -> Result<PathBuf, Problem> {
    let path = PathBuf::from(super::target::expand(key, &path.to_string_lossy())?);
    Ok(match Path::new(scenario).parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    })
}

/// A deploy that writes a version or moves the start link needs a mode that uses the
/// matching placeholder, or it would change nothing.
fn releases_fit(rule: &ChaosRule, modes: &[ModePlan]) -> Result<(), Problem> {
    let ActionKind::Deploy { release, .. } = &rule.kind else {
        return Ok(());
    };
    let applies = |m: &&ModePlan| rule.modes.is_empty() || rule.modes.contains(&m.name);
    for m in modes.iter().filter(applies) {
        let argv = match &m.launch {
            Launch::Command { argv, .. } => argv,
            Launch::External { .. } if release.is_empty() => continue,
            Launch::External { .. } => {
                return bad(
                    "version",
                    format!("mode `{}` is a server loadgen did not start", m.name),
                );
            }
        };
        let uses = |p: &str| argv.iter().any(|a| a.contains(p));
        if release.version.is_some() && !uses("{version_file}") {
            return bad(
                "version",
                format!(
                    "mode `{}`'s command does not use `{{version_file}}`, so a new version would not reach it",
                    m.name
                ),
            );
        }
        if release.start_link.is_some() && !uses("{start}") {
            return bad(
                "start_link",
                format!(
                    "mode `{}`'s command does not start `{{start}}`, so moving the link would not reach it",
                    m.name
                ),
            );
        }
    }
    Ok(())
}
