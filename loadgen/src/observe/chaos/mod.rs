//! Carries out one mode's chaos timetable against the live server: sends the deploy
//! signal to the master (or runs the deploy command, see `command`), SIGKILLs a random worker, SIGSTOPs one and SIGCONTs it later,
//! and logs each action with its time and target PID. For a single-process target the
//! harness also plays the seed's naive supervisor: once the process has exited after a
//! deploy or a kill it starts it again and logs the downtime from exit to ready. What a
//! "server" is (a child loadgen started, or a PID from a pidfile) is behind
//! [`ServerControl`], so this file only decides what to do and when.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::observe::events::{EventLog, Kind};
use crate::observe::procs;
use crate::observe::watcher::{Watcher, WorkerSet};
use crate::plan::chaos::{ActionKind, DeployBy, PlannedAction, Release};

mod command;

/// The server as chaos sees it.
pub trait ServerControl: Send {
    /// The process a deploy signal goes to (the master, or the single process), or why
    /// there is none to signal now (the server is down, its pidfile is stale).
    fn root_pid(&self) -> Result<i32, String>;

    /// Whether the root's children serve (a master) or the root serves itself.
    fn worker_set(&self) -> WorkerSet;

    /// Whether the harness restarts the root after it exits (single mode, where the
    /// harness plays the naive supervisor). Requires [`ServerControl::wait_exit`] and
    /// [`ServerControl::restart`] to work.
    fn supervised(&self) -> bool;

    /// Waits until the root has exited; returns its exit status in words.
    fn wait_exit(&mut self) -> impl Future<Output = Result<String, ChaosError>> + Send;

    /// Starts the root again with the same command, port and database, and returns its
    /// PID once it answers its readiness check.
    fn restart(&mut self) -> impl Future<Output = Result<i32, ChaosError>> + Send;

    /// Puts a deploy's release in place (the version file, the start link) before the
    /// deploy signal; says what it did, or why it could not.
    fn install(&mut self, release: &Release) -> Result<String, String>;
}

/// Settings of one chaos run.
pub struct ChaosRun<'a> {
    pub timetable: &'a [PlannedAction],
    pub events: &'a EventLog,
    /// Pointed at the new process after a restart, when there is one.
    pub watcher: Option<&'a Watcher>,
    /// Seeds the choice of victims.
    pub seed: u64,
    /// How long the naive supervisor waits between an exit and the restart.
    pub restart_delay: Duration,
}

enum Step {
    Act(PlannedAction),
    Resume(i32),
}

/// What chaos could not do, as the run must report it.
#[derive(Debug, Default)]
pub struct ChaosReport {
    /// Actions of non-optional rules that could not be applied, each with its time and
    /// reason: the run did not test what the scenario asked for.
    pub unapplied: Vec<String>,
}

impl ChaosRun<'_> {
    /// Runs the timetable until it is done or `stop` resolves, then resumes any process
    /// it left paused. An action that cannot be applied (no victim, no root to signal)
    /// is logged as `chaos-skipped` with the reason, and reported unless its rule is
    /// optional; actions still due when the load ends are logged the same way. Errors
    /// only for what stops chaos altogether (the naive supervisor cannot restart the
    /// server).
    pub async fn run<S: ServerControl>(
        &self,
        server: &mut S,
        stop: impl Future<Output = ()>,
    ) -> Result<ChaosReport, ChaosError> {
        let start = self.events.start();
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x00C4_A05C_4A05);
        // Keyed by (due time, sequence) so equal times keep their order.
        let mut queue: BTreeMap<(Duration, usize), Step> = self
            .timetable
            .iter()
            .enumerate()
            .map(|(i, a)| ((a.at, i), Step::Act(a.clone())))
            .collect();
        let mut seq = self.timetable.len();
        let mut paused: Vec<i32> = Vec::new();
        let mut report = ChaosReport::default();
        // Deploy commands still running, each with its action.
        let mut commands = Vec::new();
        tokio::pin!(stop);

        let result = loop {
            let Some(((due, key), step)) = queue.pop_first() else {
                break Ok(());
            };
            tokio::select! {
                _ = tokio::time::sleep_until((start + due).into()) => {}
                _ = &mut stop => {
                    queue.insert((due, key), step);
                    break Ok(());
                }
            }
            let action = match step {
                Step::Resume(pid) => {
                    paused.retain(|p| *p != pid);
                    self.resume(pid);
                    continue;
                }
                Step::Act(action) => action,
            };
            if let ActionKind::Deploy {
                by: DeployBy::Command(cmd),
                release,
            } = &action.kind
            {
                let started = match release.is_empty() {
                    true => Ok(String::new()),
                    false => server.install(release),
                }
                .and_then(|installed| command::start(cmd, &installed, self.events));
                match started {
                    Ok(task) => commands.push((action, task)),
                    Err(reason) => self.skipped(&action, &reason, &mut report),
                }
                continue;
            }
            // The process the action goes to (a deploy first installs its release),
            // then whether the signal reached it.
            let mut installed = String::new();
            let target = match &action.kind {
                ActionKind::Deploy { release, .. } if !release.is_empty() => server
                    .root_pid()
                    .and_then(|pid| server.install(release).map(|what| (pid, what)))
                    .map(|(pid, what)| {
                        installed = what;
                        pid
                    }),
                ActionKind::Deploy { .. } => server.root_pid(),
                ActionKind::Kill { .. } | ActionKind::Pause { .. } => {
                    self.pick_worker(server, &mut rng)
                }
            };
            let sent = target.and_then(|pid| {
                let (kind, signal, detail) = match &action.kind {
                    ActionKind::Deploy {
                        by: DeployBy::Signal(signal),
                        ..
                    } if installed.is_empty() => (Kind::Deploy, *signal, signal.to_string()),
                    ActionKind::Deploy {
                        by: DeployBy::Signal(signal),
                        ..
                    } => (Kind::Deploy, *signal, format!("{signal}, {installed}")),
                    ActionKind::Deploy { .. } => {
                        return Err("a deploy by command sends no signal".to_string());
                    }
                    ActionKind::Kill { signal } => (Kind::Kill, *signal, signal.to_string()),
                    ActionKind::Pause { duration } => (
                        Kind::Pause,
                        Signal::SIGSTOP,
                        format!("for {} ms", duration.as_millis()),
                    ),
                };
                self.send(kind, pid, signal, &detail).map(|()| pid)
            });
            let outcome = match (sent, &action.kind) {
                (Err(reason), _) => {
                    self.skipped(&action, &reason, &mut report);
                    Ok(())
                }
                (Ok(pid), ActionKind::Pause { duration }) => {
                    paused.push(pid);
                    seq += 1;
                    queue.insert((start.elapsed() + *duration, seq), Step::Resume(pid));
                    Ok(())
                }
                (Ok(_), _) if server.supervised() => self.supervise_restart(server).await,
                (Ok(_), _) => Ok(()),
            };
            if outcome.is_err() {
                break outcome;
            }
        };
        for pid in paused {
            self.resume(pid);
        }
        // Each command is bounded by its own time limit.
        for (action, task) in commands {
            let failed = match task.await {
                Ok(Ok(())) => continue,
                Ok(Err(reason)) => reason,
                Err(e) => format!("the task that ran the deploy command failed: {e}"),
            };
            let optional = if action.optional { " (optional)" } else { "" };
            let detail = format!(
                "deploy at {:.2}s{optional}: {failed}",
                action.at.as_secs_f64()
            );
            if !action.optional {
                report.unapplied.push(detail);
            }
        }
        // What the load did not last long enough for: said, not counted against the
        // server (`loadgen validate` refuses fixed times after the expected end).
        for step in queue.into_values() {
            if let Step::Act(action) = step {
                self.events.record(
                    Kind::ChaosSkipped,
                    0,
                    format!(
                        "{} due at {:.2}s: not run, the load ended first",
                        action.kind.name(),
                        action.at.as_secs_f64()
                    ),
                );
            }
        }
        result.map(|()| report)
    }

    /// Logs an action that could not be applied; reports it unless its rule is optional.
    fn skipped(&self, action: &PlannedAction, reason: &str, report: &mut ChaosReport) {
        let optional = if action.optional { " (optional)" } else { "" };
        let detail = format!(
            "{} due at {:.2}s{optional}: {reason}",
            action.kind.name(),
            action.at.as_secs_f64()
        );
        self.events.record(Kind::ChaosSkipped, 0, detail.clone());
        if !action.optional {
            report.unapplied.push(detail);
        }
    }

    /// A random live worker (or the single process), or why there is none to hit.
    /// Workers are sorted by PID so a seed picks the same position.
    fn pick_worker<S: ServerControl>(&self, server: &S, rng: &mut StdRng) -> Result<i32, String> {
        let root = server.root_pid()?;
        let set = server.worker_set();
        let candidates: Vec<i32> = match set {
            WorkerSet::Itself => vec![root],
            WorkerSet::Children { .. } => set
                .members(root)
                .into_iter()
                .filter(|pid| matches!(procs::read_stat(*pid), Ok(Some(s)) if s.state != 'Z'))
                .collect(),
        };
        if candidates.is_empty() {
            return Err(match set {
                WorkerSet::Children {
                    cmdline: Some(text),
                } => format!("no live worker under pid {root} whose command line has `{text}`"),
                _ => format!("no live worker under pid {root}"),
            });
        }
        Ok(candidates[rng.random_range(0..candidates.len())])
    }

    /// Sends `signal` and logs the action, or says why it could not be sent.
    fn send(&self, kind: Kind, pid: i32, signal: Signal, detail: &str) -> Result<(), String> {
        // Timed before the signal: what it causes (a worker the watcher sees start) must
        // never appear to come first.
        let at = Instant::now();
        signal::kill(Pid::from_raw(pid), signal)
            .map(|()| self.events.record_at(at, kind, pid, detail))
            .map_err(|errno| format!("{signal} to pid {pid} failed: {errno}"))
    }

    fn resume(&self, pid: i32) {
        if let Err(reason) = self.send(Kind::Resume, pid, Signal::SIGCONT, "SIGCONT") {
            // Resuming a process that exited while paused is no failure of the run.
            self.events.record(Kind::Resume, pid, reason);
        }
    }

    /// The naive supervisor: wait for the process to die, wait the restart delay, start
    /// it again, and log how long nobody was there to answer.
    async fn supervise_restart<S: ServerControl>(&self, server: &mut S) -> Result<(), ChaosError> {
        let old = server.root_pid().unwrap_or(0);
        let status = server.wait_exit().await?;
        let exited = Instant::now();
        tokio::time::sleep(self.restart_delay).await;
        let pid = server.restart().await?;
        let ready = Instant::now();
        if let Some(watcher) = self.watcher {
            watcher.set_root(pid);
        }
        self.events.record_at(
            ready,
            Kind::ServerRestarted,
            pid,
            format!("replaces pid {old}, which exited with {status}"),
        );
        let downtime = ready.duration_since(exited);
        self.events.record_at(
            ready,
            Kind::Downtime,
            pid,
            format!("{}", downtime.as_millis()),
        );
        Ok(())
    }
}

/// Why chaos could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("waiting for the server process {pid} to exit failed: {reason}")]
    Wait { pid: i32, reason: String },
    #[error("restarting the server failed: {reason}")]
    Restart { reason: String },
}

#[cfg(test)]
mod command_tests;
#[cfg(test)]
mod tests;
