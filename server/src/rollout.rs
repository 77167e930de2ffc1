//! One rolling restart, as plain data: the old workers still to replace and the step
//! in progress (replacement booting, or old worker draining). Driven by the
//! [`Supervisor`], which owns the workers; it only decides what the next step is and
//! whether the rollout finished or aborted. One worker at a time, so ready capacity
//! never drops below the target: the old worker is drained only once its replacement
//! is ready, and the next replacement starts once the old one has exited.

use std::collections::VecDeque;
use std::time::Instant;

use crate::supervisor::{Action, Role, Supervisor, WorkerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Booting,
    DrainingOld,
}

#[derive(Debug, Clone, Copy)]
struct Step {
    new: WorkerId,
    /// `None` when the old worker died on its own while its replacement booted.
    old: Option<WorkerId>,
    stage: Stage,
}

#[derive(Debug)]
pub struct Rollout {
    old: VecDeque<WorkerId>,
    total: usize,
    step: Option<Step>,
    started: Instant,
    replaced: usize,
    aborted: Option<String>,
    finished: bool,
}

impl Rollout {
    pub fn new(old: Vec<WorkerId>, now: Instant) -> Rollout {
        Rollout {
            total: old.len(),
            old: old.into(),
            step: None,
            started: now,
            replaced: 0,
            aborted: None,
            finished: false,
        }
    }

    /// Starts the replacement of the next old worker still serving, or finishes.
    pub fn advance(&mut self, sup: &mut Supervisor, out: &mut Vec<Action>) {
        while let Some(old) = self.old.pop_front() {
            if matches!(sup.role(old), Some(Role::Booting | Role::Ready)) {
                let new = sup.spawn(None, out);
                out.push(Action::Log(format!(
                    "rollout: worker #{new} starting to replace worker #{old}"
                )));
                self.step = Some(Step {
                    new,
                    old: Some(old),
                    stage: Stage::Booting,
                });
                return;
            }
        }
        self.step = None;
        self.finished = true;
    }

    pub fn on_ready(&mut self, id: WorkerId, sup: &mut Supervisor, out: &mut Vec<Action>) {
        let Some(step) = self.step.as_mut() else {
            return;
        };
        if step.new != id || step.stage != Stage::Booting {
            return;
        }
        match step.old {
            Some(old) => {
                step.stage = Stage::DrainingOld;
                sup.drain(old, out);
            }
            None => {
                self.replaced += 1;
                self.advance(sup, out);
            }
        }
    }

    /// Whether the exit of `id` was the rollout's business (then the supervisor does
    /// not respawn it).
    pub fn on_exit(
        &mut self,
        id: WorkerId,
        role: Role,
        sup: &mut Supervisor,
        out: &mut Vec<Action>,
    ) -> bool {
        // An old worker that died before its turn is respawned (with the new code)
        // by crash recovery; nothing left to replace.
        self.old.retain(|&old| old != id);
        let Some(step) = self.step.as_mut() else {
            return false;
        };
        if step.new == id {
            if step.stage == Stage::Booting {
                self.aborted = Some(format!(
                    "replacement worker #{id} exited before it was ready"
                ));
                self.step = None;
                return true;
            }
            return false; // it was ready: an ordinary crash
        }
        if step.old == Some(id) {
            match step.stage {
                Stage::Booting => {
                    // Its replacement, already booting, takes its place.
                    step.old = None;
                }
                Stage::DrainingOld => {
                    debug_assert_eq!(role, Role::Leaving);
                    self.replaced += 1;
                    self.advance(sup, out);
                }
            }
            return true;
        }
        false
    }

    /// A log line when the rollout is over (finished or aborted), `None` while running.
    pub fn outcome(&self, now: Instant) -> Option<String> {
        let elapsed = now.saturating_duration_since(self.started).as_millis();
        if let Some(reason) = &self.aborted {
            return Some(format!(
                "rollout aborted after {elapsed} ms: {reason}; {} of {} workers replaced, the others keep serving",
                self.replaced, self.total
            ));
        }
        self.finished.then(|| {
            format!(
                "rollout finished in {elapsed} ms: {} of {} workers replaced",
                self.replaced, self.total
            )
        })
    }
}
