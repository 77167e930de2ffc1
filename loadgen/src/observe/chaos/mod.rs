//! Carries out one mode's chaos timetable against the live server: sends the deploy
//! signal to the master, SIGKILLs a random worker, SIGSTOPs one and SIGCONTs it later,
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
use crate::plan::chaos::{ActionKind, PlannedAction};

/// The server as chaos sees it.
pub trait ServerControl: Send {
    /// The process a deploy signal goes to (the master, or the single process); `None`
    /// while it is not running.
    fn root_pid(&self) -> Option<i32>;

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
    Act(ActionKind),
    Resume(i32),
}

impl ChaosRun<'_> {
    /// Runs the timetable until it is done or `stop` resolves, then resumes any process
    /// it left paused. Errors only for what makes the run's numbers meaningless (the
    /// harness cannot signal or restart the server); a missing victim is logged instead.
    pub async fn run<S: ServerControl>(
        &self,
        server: &mut S,
        stop: impl Future<Output = ()>,
    ) -> Result<(), ChaosError> {
        let start = self.events.start();
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x00C4_A05C_4A05);
        // Keyed by (due time, sequence) so equal times keep their order.
        let mut queue: BTreeMap<(Duration, usize), Step> = self
            .timetable
            .iter()
            .enumerate()
            .map(|(i, a)| ((a.at, i), Step::Act(a.kind)))
            .collect();
        let mut seq = self.timetable.len();
        let mut paused: Vec<i32> = Vec::new();
        tokio::pin!(stop);

        let result = loop {
            let Some(((due, _), step)) = queue.pop_first() else {
                break Ok(());
            };
            tokio::select! {
                _ = tokio::time::sleep_until((start + due).into()) => {}
                _ = &mut stop => break Ok(()),
            }
            let outcome = match step {
                Step::Resume(pid) => {
                    paused.retain(|p| *p != pid);
                    self.resume(pid);
                    Ok(())
                }
                Step::Act(ActionKind::Pause { duration }) => {
                    if let Some(pid) = self.pick_worker(server, &mut rng) {
                        if self.send(
                            Kind::Pause,
                            pid,
                            Signal::SIGSTOP,
                            &format!("for {} ms", duration.as_millis()),
                        ) {
                            paused.push(pid);
                            seq += 1;
                            queue.insert((start.elapsed() + duration, seq), Step::Resume(pid));
                        }
                    }
                    Ok(())
                }
                Step::Act(ActionKind::Kill { signal }) => {
                    match self.pick_worker(server, &mut rng) {
                        Some(pid) => {
                            let sent = self.send(Kind::Kill, pid, signal, signal.as_str());
                            if sent && server.supervised() {
                                self.supervise_restart(server).await
                            } else {
                                Ok(())
                            }
                        }
                        None => Ok(()),
                    }
                }
                Step::Act(ActionKind::Deploy { signal }) => match server.root_pid() {
                    Some(pid) => {
                        let sent = self.send(Kind::Deploy, pid, signal, signal.as_str());
                        if sent && server.supervised() {
                            self.supervise_restart(server).await
                        } else {
                            Ok(())
                        }
                    }
                    None => {
                        self.events
                            .record(Kind::Deploy, 0, "skipped: the server is down");
                        Ok(())
                    }
                },
            };
            if outcome.is_err() {
                break outcome;
            }
        };
        for pid in paused {
            self.resume(pid);
        }
        result
    }

    /// A random live worker (or the single process); logs and returns `None` when there
    /// is none to hit. Workers are sorted by PID so a seed picks the same position.
    fn pick_worker<S: ServerControl>(&self, server: &S, rng: &mut StdRng) -> Option<i32> {
        let root = server.root_pid()?;
        let candidates: Vec<i32> = match server.worker_set() {
            WorkerSet::Itself => vec![root],
            WorkerSet::Children => procs::children(root)
                .unwrap_or_default()
                .into_iter()
                .filter(|pid| matches!(procs::read_stat(*pid), Ok(Some(s)) if s.state != 'Z'))
                .collect(),
        };
        if candidates.is_empty() {
            self.events.record(Kind::Kill, 0, "skipped: no live worker");
            return None;
        }
        Some(candidates[rng.random_range(0..candidates.len())])
    }

    /// Sends `signal` and logs the action; a process that vanished first is logged too.
    fn send(&self, kind: Kind, pid: i32, signal: Signal, detail: &str) -> bool {
        match signal::kill(Pid::from_raw(pid), signal) {
            Ok(()) => {
                self.events.record(kind, pid, detail);
                true
            }
            Err(errno) => {
                self.events
                    .record(kind, pid, format!("{detail} failed: {errno}"));
                false
            }
        }
    }

    fn resume(&self, pid: i32) {
        self.send(Kind::Resume, pid, Signal::SIGCONT, "SIGCONT");
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
mod tests;
