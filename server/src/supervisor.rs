//! The master's lifecycle as a plain state machine, with no processes, signals or
//! clocks of its own: it is fed [`Event`]s (a worker became ready or exited, a timer
//! fired, a generation's executable was opened, a restart or stop was asked for)
//! with the current time, and answers with [`Action`]s (open or close a generation,
//! spawn, drain, kill, schedule a timer, exit, log) that the thin process layer in
//! [`crate::master`] carries out. Phases: `Starting` (first workers booting),
//! `Serving`, `RollingOut { pending }` (a deploy), `RollingBack { pending }` (a
//! failed deploy undone), `Stopping`; `pending` coalesces restarts asked for
//! meanwhile into one more deploy afterwards.
//!
//! Workers belong to generations: the workers started from one executable. The
//! supervisor keeps the last known good generation (at first the one the master was
//! started with) and starts every crash replacement from it. This file holds the
//! types, start, stop and readiness; the deploy and its rollback are in
//! [`deploy`](self::deploy) (steps decided by [`crate::rollout`]), crash recovery with
//! exponential back-off in [`crash`](self::crash).

mod crash;
mod deploy;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rollout::Rollout;

/// The master's own numbering of workers (PIDs are the process layer's business).
pub type WorkerId = u64;

/// The master's numbering of generations: 1 is the executable it was started with,
/// each deploy opens the next.
pub type Generation = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Serving,
    RollingOut { pending: bool },
    RollingBack { pending: bool },
    Stopping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ready(WorkerId),
    /// The worker's process is gone (`clean` = exit status 0; `sigkill` = ended by
    /// SIGKILL, whoever sent it).
    Exited {
        id: WorkerId,
        clean: bool,
        sigkill: bool,
    },
    BootTimedOut(WorkerId),
    DrainTimedOut(WorkerId),
    /// The settle time asked for by [`Action::SettleAfter`] has passed.
    Settled(WorkerId),
    RespawnDue,
    Restart,
    Stop,
    /// [`Action::Load`] opened the generation's executable; `binary` names it.
    Loaded {
        generation: Generation,
        binary: String,
    },
    /// [`Action::Load`] could not open it.
    LoadFailed {
        generation: Generation,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open what the start path points at now as this generation's executable,
    /// and answer [`Event::Loaded`] or [`Event::LoadFailed`].
    Load(Generation),
    /// No worker will be started from this generation again: close its executable.
    Unload(Generation),
    /// Start a worker process from its generation's executable (and its boot timer).
    Spawn {
        id: WorkerId,
        generation: Generation,
    },
    /// Ask a worker to drain (SIGTERM) and start its drain timer.
    Drain(WorkerId),
    /// SIGKILL.
    Kill(WorkerId),
    /// Send [`Event::RespawnDue`] after this long.
    RespawnAfter(Duration),
    /// Send [`Event::Settled`] for this worker after this long.
    SettleAfter(WorkerId, Duration),
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

/// What the supervisor is configured with.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Workers to keep ready.
    pub target: usize,
    /// How long each new worker of a deploy must stay ready before its old one drains.
    pub settle: Duration,
}

#[derive(Debug, Clone)]
struct Worker {
    role: Role,
    generation: Generation,
    ready_at: Option<Instant>,
    /// When this worker replaces a crashed one: when the crash was seen.
    replaces_crash_at: Option<Instant>,
    /// The master SIGKILLed it (boot or drain timeout): that kill is its own fault.
    killed_by_master: bool,
}

/// A generation and the executable it runs, for log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Release {
    generation: Generation,
    binary: String,
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "generation {} ({})", self.generation, self.binary)
    }
}

pub struct Supervisor {
    config: Config,
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
    /// Last known good: every crash replacement and every rollback starts from it.
    good: Release,
    /// The generation a deploy is opening ([`Action::Load`]) or rolling out.
    loading: Option<Generation>,
    candidate: Option<Release>,
    next_generation: Generation,
    /// SIGKILLs from outside that the rollout in progress may still forgive its new
    /// workers (an OOM-killed build must not be retried for ever).
    forgivable: usize,
}

impl Supervisor {
    /// A supervisor whose workers run `binary` (generation 1, known good: the master
    /// itself was started from it), and the actions that start them.
    pub fn new(config: Config, binary: String) -> (Supervisor, Vec<Action>) {
        let mut sup = Supervisor {
            config,
            phase: Phase::Starting,
            workers: BTreeMap::new(),
            next_id: 1,
            rollout: None,
            restart_after_start: false,
            crash_streak: 0,
            owed: Vec::new(),
            respawn_scheduled: false,
            good: Release {
                generation: 1,
                binary,
            },
            loading: None,
            candidate: None,
            next_generation: 2,
            forgivable: 0,
        };
        let mut out = Vec::new();
        for _ in 0..config.target {
            sup.spawn(1, None, &mut out);
        }
        (sup, out)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn role(&self, id: WorkerId) -> Option<Role> {
        self.workers.get(&id).map(|w| w.role)
    }

    #[cfg(test)]
    pub fn generation(&self, id: WorkerId) -> Option<Generation> {
        self.workers.get(&id).map(|w| w.generation)
    }

    /// The generation crash replacements start from.
    #[cfg(test)]
    pub fn last_known_good(&self) -> Generation {
        self.good.generation
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
            Event::Exited { id, clean, sigkill } => {
                self.on_exit(id, clean, sigkill, now, &mut out);
            }
            Event::BootTimedOut(id) => self.on_boot_timeout(id, &mut out),
            Event::DrainTimedOut(id) => {
                if self.role(id) == Some(Role::Leaving) {
                    out.push(Action::Log(format!(
                        "worker #{id} still running at the drain timeout: killing it"
                    )));
                    self.kill(id, &mut out);
                }
            }
            Event::Settled(id) => {
                let order = self.rollout.as_mut().and_then(|r| r.on_settled(id, now));
                self.carry_out(order, now, &mut out);
            }
            Event::RespawnDue => self.on_respawn_due(&mut out),
            Event::Restart => self.on_restart(&mut out),
            Event::Stop => self.on_stop(&mut out),
            Event::Loaded { generation, binary } => {
                self.on_loaded(generation, binary, now, &mut out);
            }
            Event::LoadFailed { generation, error } => {
                self.on_load_failed(generation, &error, &mut out);
            }
        }
        out
    }

    fn spawn(
        &mut self,
        generation: Generation,
        replaces_crash_at: Option<Instant>,
        out: &mut Vec<Action>,
    ) -> WorkerId {
        let id = self.next_id;
        self.next_id += 1;
        self.workers.insert(
            id,
            Worker {
                role: Role::Booting,
                generation,
                ready_at: None,
                replaces_crash_at,
                killed_by_master: false,
            },
        );
        out.push(Action::Spawn { id, generation });
        id
    }

    /// SIGKILLs a worker, remembering that the kill was ours.
    fn kill(&mut self, id: WorkerId, out: &mut Vec<Action>) {
        if let Some(worker) = self.workers.get_mut(&id) {
            worker.killed_by_master = true;
            out.push(Action::Kill(id));
        }
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
                if self.ready_count() >= self.config.target {
                    self.phase = Phase::Serving;
                    out.push(Action::Log(format!(
                        "all {} workers ready ({})",
                        self.config.target, self.good
                    )));
                    if std::mem::take(&mut self.restart_after_start) {
                        self.begin_deploy(out);
                    }
                }
            }
            Phase::RollingOut { .. } | Phase::RollingBack { .. } => {
                let order = self.rollout.as_mut().and_then(|r| r.on_ready(id, now));
                self.carry_out(order, now, out);
            }
            Phase::Stopping => self.drain(id, out),
            Phase::Serving => {}
        }
    }

    fn on_boot_timeout(&mut self, id: WorkerId, out: &mut Vec<Action>) {
        if self.role(id) != Some(Role::Booting) {
            return;
        }
        out.push(Action::Log(format!(
            "worker #{id} not ready within the boot timeout: killing it"
        )));
        self.kill(id, out);
        // Its exit then aborts the rollout it belonged to, or counts as a failure.
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
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_kills;
#[cfg(test)]
mod tests_rollback;
