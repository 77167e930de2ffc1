//! The master's lifecycle as a plain state machine, with no processes, signals or
//! clocks of its own: it is fed [`Event`]s (a worker became ready or exited, a timer
//! fired, a restart or stop was asked for) with the current time, and answers with
//! [`Action`]s (spawn, drain, kill, schedule a respawn, exit, log) that the thin
//! process layer in [`crate::master`] carries out. Phases: `Starting` (first workers
//! booting), `Serving`, `RollingOut { pending }` (one old worker at a time: spawn its
//! replacement, wait until ready, drain the old one, wait for its exit; `pending`
//! coalesces restarts asked for meanwhile), `Stopping`. Crash recovery with
//! exponential back-off lives here too. The rollout's own steps are decided by
//! [`crate::rollout`], which answers with orders (start a replacement, drain an old
//! worker, finished, aborted) that the supervisor turns into actions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rollout::{ExitTaken, Order, Rollout};

/// The master's own numbering of workers (PIDs are the process layer's business).
pub type WorkerId = u64;

/// A worker that dies sooner than this after becoming ready (or before it) counts as
/// a quick failure: the next respawn is delayed.
pub const QUICK_EXIT: Duration = Duration::from_secs(1);
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Serving,
    RollingOut { pending: bool },
    Stopping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Ready(WorkerId),
    /// The worker's process is gone (`clean` = exit status 0).
    Exited {
        id: WorkerId,
        clean: bool,
    },
    BootTimedOut(WorkerId),
    DrainTimedOut(WorkerId),
    RespawnDue,
    Restart,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a worker process (and its boot timer).
    Spawn(WorkerId),
    /// Ask a worker to drain (SIGTERM) and start its drain timer.
    Drain(WorkerId),
    /// SIGKILL.
    Kill(WorkerId),
    /// Send [`Event::RespawnDue`] after this long.
    RespawnAfter(Duration),
    /// The master is done.
    Exit(u8),
    Log(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Booting,
    Ready,
    /// Told to go (drain, or killed for a failed boot): its exit is expected.
    Leaving,
}

#[derive(Debug, Clone)]
struct Worker {
    role: Role,
    ready_at: Option<Instant>,
    /// When this worker replaces a crashed one: when the crash was seen.
    replaces_crash_at: Option<Instant>,
}

pub struct Supervisor {
    target: usize,
    phase: Phase,
    workers: BTreeMap<WorkerId, Worker>,
    next_id: WorkerId,
    rollout: Option<Rollout<WorkerId>>,
    /// A restart asked for while starting: run once everything is ready.
    restart_after_start: bool,
    /// Consecutive quick failures.
    crash_streak: u32,
    /// Crashed workers not replaced yet, with when each crash was seen.
    owed: Vec<Instant>,
    respawn_scheduled: bool,
}

impl Supervisor {
    /// A supervisor for `target` workers, and the actions that start them.
    pub fn new(target: usize) -> (Supervisor, Vec<Action>) {
        let mut sup = Supervisor {
            target,
            phase: Phase::Starting,
            workers: BTreeMap::new(),
            next_id: 1,
            rollout: None,
            restart_after_start: false,
            crash_streak: 0,
            owed: Vec::new(),
            respawn_scheduled: false,
        };
        let mut out = Vec::new();
        for _ in 0..target {
            sup.spawn(None, &mut out);
        }
        (sup, out)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn role(&self, id: WorkerId) -> Option<Role> {
        self.workers.get(&id).map(|w| w.role)
    }

    pub fn ready_count(&self) -> usize {
        self.count(Role::Ready)
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    fn count(&self, role: Role) -> usize {
        self.workers.values().filter(|w| w.role == role).count()
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Ready(id) => self.on_ready(id, now, &mut out),
            Event::Exited { id, clean } => self.on_exit(id, clean, now, &mut out),
            Event::BootTimedOut(id) => self.on_boot_timeout(id, &mut out),
            Event::DrainTimedOut(id) => {
                if self.role(id) == Some(Role::Leaving) {
                    out.push(Action::Log(format!(
                        "worker #{id} still running at the drain timeout: killing it"
                    )));
                    out.push(Action::Kill(id));
                }
            }
            Event::RespawnDue => {
                self.respawn_scheduled = false;
                if self.phase != Phase::Stopping {
                    for crashed_at in std::mem::take(&mut self.owed) {
                        self.spawn(Some(crashed_at), &mut out);
                    }
                }
            }
            Event::Restart => self.on_restart(now, &mut out),
            Event::Stop => self.on_stop(&mut out),
        }
        out
    }

    fn spawn(&mut self, replaces_crash_at: Option<Instant>, out: &mut Vec<Action>) -> WorkerId {
        let id = self.next_id;
        self.next_id += 1;
        self.workers.insert(
            id,
            Worker {
                role: Role::Booting,
                ready_at: None,
                replaces_crash_at,
            },
        );
        out.push(Action::Spawn(id));
        id
    }

    /// Tells a worker to drain; its exit is then expected.
    fn drain(&mut self, id: WorkerId, out: &mut Vec<Action>) {
        if let Some(worker) = self.workers.get_mut(&id) {
            if worker.role != Role::Leaving {
                worker.role = Role::Leaving;
                out.push(Action::Drain(id));
            }
        }
    }

    fn on_ready(&mut self, id: WorkerId, now: Instant, out: &mut Vec<Action>) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        if worker.role != Role::Booting {
            return;
        }
        worker.role = Role::Ready;
        worker.ready_at = Some(now);
        if let Some(crashed_at) = worker.replaces_crash_at {
            out.push(Action::Log(format!(
                "worker #{id} replaces a crashed worker: ready {} ms after the crash",
                now.saturating_duration_since(crashed_at).as_millis()
            )));
        }
        match self.phase {
            Phase::Starting => {
                if self.ready_count() >= self.target {
                    self.phase = Phase::Serving;
                    out.push(Action::Log(format!("all {} workers ready", self.target)));
                    if std::mem::take(&mut self.restart_after_start) {
                        self.start_rollout(now, out);
                    }
                }
            }
            Phase::RollingOut { .. } => {
                let order = self.rollout.as_mut().and_then(|r| r.on_ready(id, now));
                self.carry_out(order, now, out);
            }
            Phase::Stopping => self.drain(id, out),
            Phase::Serving => {}
        }
    }

    fn on_exit(&mut self, id: WorkerId, clean: bool, now: Instant, out: &mut Vec<Action>) {
        let Some(worker) = self.workers.remove(&id) else {
            return;
        };
        if self.phase == Phase::Stopping {
            if self.workers.is_empty() {
                out.push(Action::Log(
                    "every worker has exited: master exits 0".into(),
                ));
                out.push(Action::Exit(0));
            }
            return;
        }
        // The rollout decides whether this exit is its business (its replacement
        // died: abort; the old worker it drained or that crashed: next step).
        let taken = match self.rollout.as_mut() {
            Some(rollout) => rollout.on_exit(id, now),
            None => ExitTaken::NotOurs,
        };
        if let ExitTaken::Ours(order) = taken {
            self.carry_out(order, now, out);
            return;
        }
        if worker.role == Role::Leaving {
            return; // told to go: never respawned
        }
        let quick = worker
            .ready_at
            .is_none_or(|ready| now.saturating_duration_since(ready) < QUICK_EXIT);
        self.crash_streak = if quick { self.crash_streak + 1 } else { 0 };
        let state = if clean { "exited 0" } else { "died" };
        self.owed.push(now);
        if !quick {
            out.push(Action::Log(format!(
                "worker #{id} {state} unexpectedly: replacing it now"
            )));
            for crashed_at in std::mem::take(&mut self.owed) {
                self.spawn(Some(crashed_at), out);
            }
        } else if !self.respawn_scheduled {
            let delay = backoff(self.crash_streak);
            out.push(Action::Log(format!(
                "worker #{id} {state} unexpectedly ({} quick failures in a row): respawning in {} ms",
                self.crash_streak,
                delay.as_millis()
            )));
            self.respawn_scheduled = true;
            out.push(Action::RespawnAfter(delay));
        }
    }

    fn on_boot_timeout(&mut self, id: WorkerId, out: &mut Vec<Action>) {
        if self.role(id) != Some(Role::Booting) {
            return;
        }
        out.push(Action::Log(format!(
            "worker #{id} not ready within the boot timeout: killing it"
        )));
        out.push(Action::Kill(id));
        // Its exit then aborts the rollout it belonged to, or counts as a failure.
    }

    fn on_restart(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Starting => {
                self.restart_after_start = true;
                out.push(Action::Log(
                    "restart requested while starting: it runs once every worker is ready".into(),
                ));
            }
            Phase::Serving => self.start_rollout(now, out),
            Phase::RollingOut { pending } => {
                self.phase = Phase::RollingOut { pending: true };
                let note = if pending {
                    " (one is queued already)"
                } else {
                    ""
                };
                out.push(Action::Log(format!(
                    "restart requested during a rollout: one more pass after it{note}"
                )));
            }
            Phase::Stopping => {}
        }
    }

    fn on_stop(&mut self, out: &mut Vec<Action>) {
        if self.phase == Phase::Stopping {
            return;
        }
        self.phase = Phase::Stopping;
        self.rollout = None;
        self.owed.clear();
        out.push(Action::Log(format!(
            "stopping: draining {} workers",
            self.workers.len()
        )));
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.drain(id, out);
        }
        if self.workers.is_empty() {
            out.push(Action::Exit(0));
        }
    }

    fn start_rollout(&mut self, now: Instant, out: &mut Vec<Action>) {
        let old: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.role != Role::Leaving)
            .map(|(&id, _)| id)
            .collect();
        out.push(Action::Log(format!(
            "rollout started: replacing {} workers one at a time",
            old.len()
        )));
        self.phase = Phase::RollingOut { pending: false };
        let (rollout, order) = Rollout::start(old, now);
        self.rollout = Some(rollout);
        self.carry_out(Some(order), now, out);
    }

    /// Carries out what the rollout asked for; when it finished or aborted, ends it
    /// (and starts the pass queued meanwhile, if there is one).
    fn carry_out(&mut self, order: Option<Order<WorkerId>>, now: Instant, out: &mut Vec<Action>) {
        let closing = match order {
            None => return,
            Some(Order::StartReplacement { old }) => {
                let new = self.spawn(None, out);
                out.push(Action::Log(format!(
                    "rollout: worker #{new} starting to replace worker #{old}"
                )));
                if let Some(rollout) = self.rollout.as_mut() {
                    rollout.replacement_started(new);
                }
                return;
            }
            Some(Order::Drain(old)) => {
                self.drain(old, out);
                return;
            }
            Some(Order::Finished(summary)) => summary.finished(),
            Some(Order::Aborted {
                replacement,
                summary,
            }) => summary.aborted(replacement),
        };
        out.push(Action::Log(closing));
        self.rollout = None;
        let pending = matches!(self.phase, Phase::RollingOut { pending: true });
        self.phase = Phase::Serving;
        if pending {
            out.push(Action::Log(
                "running the restart queued during the rollout".into(),
            ));
            self.start_rollout(now, out);
        }
    }
}

/// 100 ms, 200 ms, 400 ms ... up to 10 s, for the n-th quick failure in a row.
pub fn backoff(streak: u32) -> Duration {
    let factor = 1u32 << streak.saturating_sub(1).min(16);
    BACKOFF_FIRST.saturating_mul(factor).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests;
