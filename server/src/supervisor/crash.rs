//! Crash recovery, part of the [`Supervisor`]: what a worker's exit means. While
//! stopping it counts towards the end; a rollout takes the exits that are its
//! business (its replacement failed, the old worker it drained is gone); a worker
//! told to leave is never respawned; any other exit is a crash, and the crashed
//! worker is replaced from the last known good generation: at once, or with
//! exponential back-off while replacements keep dying quickly. A new worker of a
//! rollout killed by a SIGKILL the master did not send (an operator, the OOM killer,
//! chaos) is not held against its build, up to `target` times per rollout.

use std::time::{Duration, Instant};

use super::{Action, Phase, Role, Supervisor, Worker, WorkerId};
use crate::rollout::ExitTaken;

/// A worker that dies sooner than this after becoming ready (or before it) counts as
/// a quick failure: the next respawn is delayed.
pub const QUICK_EXIT: Duration = Duration::from_secs(1);
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// 100 ms, 200 ms, 400 ms ... up to 10 s, for the n-th quick failure in a row.
pub fn backoff(streak: u32) -> Duration {
    let factor = 1u32 << streak.saturating_sub(1).min(16);
    BACKOFF_FIRST.saturating_mul(factor).min(BACKOFF_MAX)
}

impl Supervisor {
    pub(super) fn on_exit(
        &mut self,
        id: WorkerId,
        clean: bool,
        sigkill: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
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
        let forgiven = sigkill && !worker.killed_by_master && self.forgive(id, &worker, out);
        let taken = match self.rollout.as_mut() {
            Some(rollout) => rollout.on_exit(id, !forgiven, now),
            None => ExitTaken::NotOurs,
        };
        match taken {
            ExitTaken::Ours(order) => return self.carry_out(order, now, out),
            // Its order first: a deploy that finishes makes its generation the one
            // crash recovery starts from.
            ExitTaken::Crashed(order) => self.carry_out(order, now, out),
            ExitTaken::NotOurs => {}
        }
        if worker.role == Role::Leaving {
            return; // told to go: never respawned
        }
        self.recover(id, &worker, clean, now, out);
    }

    /// Whether the SIGKILL that ended `id`, not sent by the master, is forgiven: it
    /// is one of the rollout's new workers and the rollout may forgive one more.
    fn forgive(&mut self, id: WorkerId, worker: &Worker, out: &mut Vec<Action>) -> bool {
        let new = self.rollout.as_ref().is_some_and(|r| r.is_new(id));
        if !new || self.forgivable == 0 {
            return false;
        }
        self.forgivable -= 1;
        out.push(Action::Log(format!(
            "worker #{id} of generation {} was killed by a SIGKILL the master did not send: \
             not held against its build ({} more such kills forgiven in this rollout)",
            worker.generation, self.forgivable
        )));
        true
    }

    /// Replaces a crashed worker from the last known good generation: at once, or
    /// after a back-off while replacements keep dying quickly.
    fn recover(
        &mut self,
        id: WorkerId,
        worker: &Worker,
        clean: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let quick = worker
            .ready_at
            .is_none_or(|ready| now.saturating_duration_since(ready) < QUICK_EXIT);
        self.crash_streak = if quick { self.crash_streak + 1 } else { 0 };
        let state = if clean { "exited 0" } else { "died" };
        self.owed.push(now);
        if !quick {
            out.push(Action::Log(format!(
                "worker #{id} (generation {}) {state} unexpectedly: replacing it now from {}",
                worker.generation, self.good
            )));
            self.pay_owed(out);
        } else if !self.respawn_scheduled {
            let delay = backoff(self.crash_streak);
            out.push(Action::Log(format!(
                "worker #{id} (generation {}) {state} unexpectedly ({} quick failures in a row): \
                 respawning in {} ms from {}",
                worker.generation,
                self.crash_streak,
                delay.as_millis(),
                self.good
            )));
            self.respawn_scheduled = true;
            out.push(Action::RespawnAfter(delay));
        }
    }

    pub(super) fn on_respawn_due(&mut self, out: &mut Vec<Action>) {
        self.respawn_scheduled = false;
        if self.phase != Phase::Stopping {
            self.pay_owed(out);
        }
    }

    /// Replaces every crashed worker not replaced yet.
    fn pay_owed(&mut self, out: &mut Vec<Action>) {
        for crashed_at in std::mem::take(&mut self.owed) {
            self.spawn_known_good(Some(crashed_at), out);
        }
    }

    /// Starts a worker of the last known good generation in place of one that is
    /// gone. During a deploy it joins the workers the deploy will replace.
    pub(super) fn spawn_known_good(
        &mut self,
        crashed_at: Option<Instant>,
        out: &mut Vec<Action>,
    ) -> WorkerId {
        let id = self.spawn(self.good.generation, crashed_at, out);
        if matches!(self.phase, Phase::RollingOut { .. }) {
            if let Some(rollout) = self.rollout.as_mut() {
                rollout.enqueue(id);
            }
        }
        id
    }
}
