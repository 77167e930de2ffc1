//! The plan builder's checks of what a mode's target can do, and the paths it names:
//! which processes are its workers (all children of the master, only those whose
//! command line matches, or the process itself), settings that only make sense for a
//! server loadgen starts (`supervise`, `restart_delay`, `host`) or only for one it did
//! not start (`pidfile`), chaos a mode cannot take (a kill with no pidfile to find the
//! workers by; a deploy command on a mode the naive supervisor restarts; a stopping
//! signal sent as a deploy to PM2's daemon, which stops every app), and `~/` and
//! `${NAME}` (an environment variable, e.g. `${PM2_HOME}`) in `url` and `pidfile`.
//! Each refusal names the key and says why.

use std::path::PathBuf;

use nix::sys::signal::Signal;

use super::chaos::{ActionKind, ChaosRule, DeployBy};
use super::scenario::{Mode, WorkerSetName, Workers};
use super::{Launch, ModePlan, Problem};
use crate::observe::watcher::WorkerSet;

fn bad<T>(key: String, message: impl Into<String>) -> Result<T, Problem> {
    Err((key, message.into()))
}

/// Mode `i`'s worker set, as `workers` says.
pub(super) fn workers(i: usize, m: &Mode) -> Result<WorkerSet, Problem> {
    let key = format!("target.modes[{i}].workers");
    match &m.workers {
        Workers::Named(WorkerSetName::Children) => Ok(WorkerSet::ALL_CHILDREN),
        Workers::Named(WorkerSetName::Itself) => Ok(WorkerSet::Itself),
        Workers::Filter(f) if !f.children => bad(
            key,
            "a filter picks among the master's children: write `children = true`, or `workers = \"itself\"` for a server that serves itself",
        ),
        Workers::Filter(f) => match &f.cmdline {
            Some(text) if text.trim().is_empty() => bad(
                key,
                "`cmdline` is empty: give text the workers' command line contains, e.g. \"app.js\"",
            ),
            cmdline => Ok(WorkerSet::Children {
                cmdline: cmdline.clone(),
            }),
        },
    }
}

/// Refuses settings that make no sense for mode `i`'s kind of target.
pub(super) fn settings_fit(i: usize, m: &Mode) -> Result<(), Problem> {
    let key = |k: &str| format!("target.modes[{i}].{k}");
    let external = m.url.is_some();
    if external && m.supervise {
        return bad(
            key("supervise"),
            "loadgen cannot restart a server it did not start (a `url` target): leave `supervise` out, or give a `command` for loadgen to start",
        );
    }
    if external && !m.restart_delay.0.is_zero() {
        return bad(
            key("restart_delay"),
            "only the naive supervisor of a server loadgen starts waits `restart_delay`; this mode is a `url`",
        );
    }
    if external && m.host != "127.0.0.1" {
        return bad(
            key("host"),
            "`host` is where a started `command` listens; a `url` names its own host",
        );
    }
    if !external && m.pidfile.is_some() {
        return bad(
            key("pidfile"),
            "loadgen knows the PID of a server it starts: `pidfile` is for a `url` target",
        );
    }
    if !m.supervise && !m.restart_delay.0.is_zero() {
        return bad(
            key("restart_delay"),
            "`restart_delay` is the naive supervisor's: it needs `supervise = true`",
        );
    }
    Ok(())
}

/// Refuses a rule that the modes it applies to cannot carry out.
pub(super) fn chaos_fits(rule: &ChaosRule, modes: &[ModePlan]) -> Result<(), Problem> {
    let applies = |m: &&ModePlan| rule.modes.is_empty() || rule.modes.contains(&m.name);
    let by_command = matches!(
        rule.kind,
        ActionKind::Deploy {
            by: DeployBy::Command(_),
            ..
        }
    );
    for m in modes.iter().filter(applies) {
        if by_command && m.supervise {
            return bad(
                "command".into(),
                format!(
                    "mode `{}` is restarted by the naive supervisor after a signal; a deploy command there would leave nobody to restart it: deploy it with a `signal`",
                    m.name
                ),
            );
        }
        if let (
            ActionKind::Deploy {
                by: DeployBy::Signal(signal),
                ..
            },
            Launch::External {
                pidfile: Some(pidfile),
                ..
            },
        ) = (&rule.kind, &m.launch)
        {
            let pm2 = pidfile.file_name().is_some_and(|f| f == "pm2.pid");
            let stops = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT].contains(signal);
            if pm2 && stops {
                return bad(
                    "signal".into(),
                    format!(
                        "mode `{}` signals PM2's daemon ({}), which takes {signal} as \"stop every app\": deploy with command = [\"pm2\", \"reload\", \"all\"]",
                        m.name,
                        pidfile.display()
                    ),
                );
            }
        }
        let no_pids = matches!(m.launch, Launch::External { pidfile: None, .. });
        if no_pids && !by_command {
            return bad(
                "action".into(),
                format!(
                    "mode `{}` is a `url` without a `pidfile`: loadgen cannot find its processes to signal; give the master's `pidfile`, deploy by `command`, or limit the rule with `modes`",
                    m.name
                ),
            );
        }
    }
    Ok(())
}

/// `text` with `~/` at its start read as `$HOME/` and every `${NAME}` replaced by the
/// environment variable `NAME`; an unset or unclosed one is an error for `key`.
pub(super) fn expand(key: &str, text: &str) -> Result<String, Problem> {
    let mut out = match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(_), None) => return bad(key.into(), "`~/` needs $HOME, which is not set"),
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest).display().to_string(),
        (None, _) => text.to_string(),
    };
    let mut from = 0;
    while let Some(open) = out[from..].find("${").map(|o| o + from) {
        let Some(close) = out[open..].find('}').map(|c| c + open) else {
            return bad(key.into(), format!("`{text}`: `${{` is never closed"));
        };
        let name = &out[open + 2..close];
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return bad(
                key.into(),
                format!("`{text}`: `${{{name}}}` is not an environment variable name"),
            );
        }
        let Ok(value) = std::env::var(name) else {
            return bad(
                key.into(),
                format!("`{text}` uses ${{{name}}}, which is not set in the environment"),
            );
        };
        out.replace_range(open..=close, &value);
        from = open + value.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_home_and_variables_and_names_what_is_missing() {
        let home = std::env::var("HOME").unwrap_or_default();
        // PATH is set in any test environment; a made-up name is not.
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(
            expand("k", "~/.pm2/pm2.pid"),
            Ok(format!("{home}/.pm2/pm2.pid"))
        );
        assert_eq!(expand("k", "${PATH}/x"), Ok(format!("{path}/x")));
        assert_eq!(expand("k", "/plain/$x"), Ok("/plain/$x".to_string()));
        let (key, message) = expand("k", "${NO_SUCH_VAR_FOR_STAMPEDE}/pm2.pid").unwrap_err();
        assert_eq!(key, "k");
        assert!(message.contains("NO_SUCH_VAR_FOR_STAMPEDE"), "{message}");
        assert!(expand("k", "${PATH").is_err());
        assert!(expand("k", "${A-B}").is_err());
    }
}
