//! Semantic checks of a parsed scenario (what serde cannot say: an empty journey, a
//! zero rate, a variable used before it is captured), and locating a key in the
//! source text so every error names its line. Key paths read like
//! `load.arrival.peak_rate` or `journey[2].path`.

use super::{Arrival, Scenario};
use crate::plan::journey::Template;

/// A semantic error: (key path, message).
pub type Problem = (String, String);

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
pub const SIGNALS: &[&str] = &["SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP", "SIGKILL"];
/// One process must keep file descriptors for the connections plus a margin.
pub const MAX_USERS_PER_PROCESS: u64 = 18_000;

pub fn check(s: &Scenario) -> Result<(), Problem> {
    let bad = |key: &str, msg: String| Err((key.to_string(), msg));
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
        return bad(
            "target.modes",
            "at least one [[target.modes]] is needed".into(),
        );
    }
    if !SIGNALS.contains(&s.target.stop_signal.as_str()) {
        return bad(
            "target.stop_signal",
            format!("`{}` is not one of {SIGNALS:?}", s.target.stop_signal),
        );
    }
    for (i, m) in s.target.modes.iter().enumerate() {
        let key = |k: &str| format!("target.modes[{i}].{k}");
        if m.name.is_empty() || !m.name.chars().all(safe_char) {
            return bad(
                &key("name"),
                format!("`{}` must be letters, digits, `-`, `_` or `.`", m.name),
            );
        }
        if s.target.modes[..i].iter().any(|o| o.name == m.name) {
            return bad(&key("name"), format!("mode `{}` is listed twice", m.name));
        }
        match (&m.url, m.command.is_empty()) {
            (Some(_), false) => {
                return bad(
                    &key("url"),
                    "give either `command` or `url`, not both".into(),
                );
            }
            (None, true) => {
                return bad(
                    &key("command"),
                    "give a `command` to start or an external `url`".into(),
                );
            }
            (Some(u), true) if !u.starts_with("http://") => {
                return bad(
                    &key("url"),
                    format!("`{u}` must start with http:// (no TLS here)"),
                );
            }
            (None, false) if !m.command.iter().any(|a| a.contains("{port}")) => {
                return bad(
                    &key("command"),
                    "the command must use the `{port}` placeholder".into(),
                );
            }
            _ => {}
        }
    }
    let l = &s.load;
    if l.users == 0 {
        return bad("load.users", "must be at least 1".into());
    }
    if l.users_per_process == 0 || l.users_per_process > MAX_USERS_PER_PROCESS {
        return bad(
            "load.users_per_process",
            format!("must be 1..={MAX_USERS_PER_PROCESS} (open-file limit)"),
        );
    }
    if l.source_addresses == 0 {
        return bad("load.source_addresses", "must be at least 1".into());
    }
    if l.timeout.0.is_zero() {
        return bad("load.timeout", "must be above zero".into());
    }
    if l.max_duration.0.is_zero() {
        return bad("load.max_duration", "must be above zero".into());
    }
    check_arrival(&l.arrival)?;
    if s.journey.is_empty() {
        return bad(
            "journey",
            "the journey is empty: add at least one [[journey]] step".into(),
        );
    }
    let mut known: Vec<String> = Vec::new();
    for (i, st) in s.journey.iter().enumerate() {
        let key = |k: &str| format!("journey[{i}].{k}");
        if st.name.is_empty() || !st.name.chars().all(safe_char) || st.name == "all" {
            return bad(
                &key("name"),
                format!(
                    "`{}` must be letters, digits, `-`, `_` or `.` (and not `all`)",
                    st.name
                ),
            );
        }
        if s.journey[..i].iter().any(|o| o.name == st.name) {
            return bad(&key("name"), format!("step `{}` is listed twice", st.name));
        }
        if !METHODS.contains(&st.method.as_str()) {
            return bad(
                &key("method"),
                format!("`{}` is not one of {METHODS:?}", st.method),
            );
        }
        if !st.path.starts_with('/') {
            return bad(&key("path"), format!("`{}` must start with /", st.path));
        }
        for (k, text) in [("path", Some(&st.path)), ("body", st.body.as_ref())] {
            let Some(text) = text else { continue };
            let t = Template::parse(text).map_err(|m| (key(k), m))?;
            if let Some(v) = t.variables().find(|v| !known.iter().any(|k| k == v)) {
                return bad(
                    &key(k),
                    format!("variable `${{{v}}}` is not captured by an earlier step"),
                );
            }
        }
        if let Some(code) = st.expect.iter().find(|c| !(100..=599).contains(*c)) {
            return bad(&key("expect"), format!("{code} is not an HTTP status"));
        }
        if st.repeat == 0 {
            return bad(&key("repeat"), "must be at least 1".into());
        }
        for (var, field) in &st.capture {
            if !field.is_str() {
                return bad(
                    &key("capture"),
                    format!("`{var}` must name a JSON field as a string"),
                );
            }
            known.push(var.clone());
        }
    }
    for (i, st) in s.journey.iter().enumerate() {
        let key = format!("journey[{i}].records");
        match st.records.as_deref() {
            None => {}
            Some("order" | "cart") if st.capture.is_empty() => {
                return bad(
                    &key,
                    "a recording step must capture the id it records".into(),
                );
            }
            Some("order") if !st.idempotency_key => {
                return bad(&key, "an order step needs `idempotency_key = true`".into());
            }
            Some("order" | "cart") => {}
            Some(other) => return bad(&key, format!("`{other}` is not `order` or `cart`")),
        }
    }
    let modes: Vec<String> = s.target.modes.iter().map(|m| m.name.clone()).collect();
    for (i, c) in s.chaos.iter().enumerate() {
        crate::plan::chaos::rule_from(c, &modes)
            .map_err(|(k, m)| (format!("chaos[{i}].{k}"), m))?;
    }
    let steps: Vec<String> = s.journey.iter().map(|st| st.name.clone()).collect();
    for (i, t) in s.thresholds.iter().enumerate() {
        crate::plan::threshold::Threshold::parse(t.check(), &modes, &steps)
            .map_err(|e| (format!("thresholds[{i}]"), e.to_string()))?;
    }
    Ok(())
}

fn check_arrival(a: &Arrival) -> Result<(), Problem> {
    let bad = |key: &str, msg: &str| Err((format!("load.arrival.{key}"), msg.to_string()));
    let spike = a.baseline_rate.is_some()
        || a.baseline.is_some()
        || a.ramp.is_some()
        || a.peak_rate.is_some();
    match (spike, a.stages.is_empty()) {
        (true, false) => return bad("stages", "give either the spike keys or `stages`, not both"),
        (false, true) => {
            return bad(
                "peak_rate",
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
                "peak_rate",
                "must be a number of users per second above zero",
            );
        }
        if !rate_ok(a.baseline_rate.unwrap_or(0.0)) {
            return bad("baseline_rate", "must be zero or more users per second");
        }
        return Ok(());
    }
    for (i, st) in a.stages.iter().enumerate() {
        if !rate_ok(st.rate) || !rate_ok(st.to.unwrap_or(st.rate)) {
            return Err((
                format!("load.arrival.stages[{i}]"),
                "rates must be zero or more".into(),
            ));
        }
    }
    let last = &a.stages[a.stages.len() - 1];
    if last.to.unwrap_or(last.rate) <= 0.0 {
        return bad(
            "stages",
            "the last stage must end with a rate above zero so every user arrives",
        );
    }
    Ok(())
}

fn safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// One line of the source as the scanner sees it: its 1-based number and full key.
fn scan(source: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    let mut last = String::new();
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let idx = match arrays.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => {
                    *c += 1;
                    *c - 1
                }
                None => {
                    arrays.push((name.clone(), 1));
                    0
                }
            };
            table = format!("{name}[{idx}]");
            last = table.clone();
        } else if let Some(name) = line.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
            last = table.clone();
        } else if !line.starts_with('#') && line.contains('=') {
            let key = line
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            last = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
        }
        out.push((i + 1, last.clone()));
    }
    out
}

/// The line and key at a byte offset of the source (for serde/toml errors).
pub fn key_at(source: &str, offset: usize) -> (usize, String) {
    let line = source[..offset.min(source.len())].matches('\n').count() + 1;
    let key = scan(source)
        .into_iter()
        .find(|(n, _)| *n == line)
        .map(|(_, k)| k)
        .unwrap_or_default();
    (
        line,
        if key.is_empty() {
            "(top level)".into()
        } else {
            key
        },
    )
}

/// The line where a key path (or its nearest enclosing table) is written; 1 if absent.
pub fn line_of_key(source: &str, key: &str) -> usize {
    let lines = scan(source);
    let mut probe = key.to_string();
    loop {
        if let Some((n, _)) = lines.iter().find(|(_, k)| *k == probe) {
            return *n;
        }
        match probe.rfind(['.', '[']) {
            Some(cut) => probe.truncate(cut),
            None => return 1,
        }
    }
}
