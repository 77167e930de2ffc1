//! One rolling restart as a plain state machine: the old workers still to replace and
//! the step in progress (replacement booting, or old worker draining). It owns no
//! workers and calls nothing: it is told what happened (a replacement started, a
//! worker became ready or exited) and answers with the [`Order`] it wants carried
//! out (start a replacement, drain an old worker, finished, aborted), which the
//! [`crate::supervisor`] executes. One worker at a time, so ready capacity never
//! drops below the target: the old worker is drained only once its replacement is
//! ready, and the next replacement starts once the old one has exited. Worker ids
//! are the supervisor's; the rollout only tells them apart, hence the `W` parameter.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// What the rollout wants done next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order<W> {
    /// Start a new worker to replace `old`, then report its id with
    /// [`Rollout::replacement_started`].
    StartReplacement { old: W },
    /// The replacement is ready: drain this old worker (its exit is then expected).
    Drain(W),
    /// Every old worker was replaced (or had gone on its own).
    Finished(Summary),
    /// The replacement exited before it was ready (it crashed, or the supervisor
    /// killed it at the boot timeout): the rollout stops, the old workers left keep
    /// serving.
    Aborted { replacement: W, summary: Summary },
}

/// How far a rollout got, for its closing log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub replaced: usize,
    pub total: usize,
    pub took: Duration,
}

/// What a worker's exit meant to the rollout.
impl Summary {
    /// The log line of a rollout that finished.
    pub fn finished(&self) -> String {
        format!(
            "rollout finished in {} ms: {} of {} workers replaced",
            self.took.as_millis(),
            self.replaced,
            self.total
        )
    }

    /// The log line of a rollout aborted because `replacement` exited before it was
    /// ready.
    pub fn aborted(&self, replacement: impl fmt::Display) -> String {
        format!(
            "rollout aborted after {} ms: replacement worker #{replacement} exited before it \
             was ready; {} of {} workers replaced, the others keep serving",
            self.took.as_millis(),
            self.replaced,
            self.total
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitTaken<W> {
    /// Not the rollout's business: crash recovery decides what to do.
    NotOurs,
    /// The rollout's business (never respawn the worker), and what to do next.
    Ours(Option<Order<W>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Booting,
    DrainingOld,
}

#[derive(Debug, Clone, Copy)]
struct Step<W> {
    /// `None` until the supervisor reports the replacement it started.
    new: Option<W>,
    /// `None` when the old worker died on its own while its replacement booted.
    old: Option<W>,
    stage: Stage,
}

#[derive(Debug)]
pub struct Rollout<W> {
    old: VecDeque<W>,
    total: usize,
    step: Option<Step<W>>,
    started: Instant,
    replaced: usize,
}

impl<W: Copy + Eq> Rollout<W> {
    /// A rollout replacing the `old` workers in order (every one that is not already
    /// leaving), and its first order.
    pub fn start(old: Vec<W>, now: Instant) -> (Rollout<W>, Order<W>) {
        let mut rollout = Rollout {
            total: old.len(),
            old: old.into(),
            step: None,
            started: now,
            replaced: 0,
        };
        let order = rollout.advance(now);
        (rollout, order)
    }

    /// The replacement asked for by [`Order::StartReplacement`] is `new`.
    pub fn replacement_started(&mut self, new: W) {
        if let Some(step) = self.step.as_mut() {
            step.new = Some(new);
        }
    }

    /// Worker `id` reports ready.
    pub fn on_ready(&mut self, id: W, now: Instant) -> Option<Order<W>> {
        let step = self.step.as_mut()?;
        if step.new != Some(id) || step.stage != Stage::Booting {
            return None;
        }
        match step.old {
            Some(old) => {
                step.stage = Stage::DrainingOld;
                Some(Order::Drain(old))
            }
            None => {
                self.replaced += 1;
                Some(self.advance(now))
            }
        }
    }

    /// Worker `id` is gone (whatever the supervisor thought of it).
    pub fn on_exit(&mut self, id: W, now: Instant) -> ExitTaken<W> {
        // An old worker that died before its turn is respawned (with the new code)
        // by crash recovery; nothing left to replace.
        self.old.retain(|&old| old != id);
        let Some(step) = self.step.as_mut() else {
            return ExitTaken::NotOurs;
        };
        if step.new == Some(id) {
            if step.stage == Stage::Booting {
                self.step = None;
                return ExitTaken::Ours(Some(Order::Aborted {
                    replacement: id,
                    summary: self.summary(now),
                }));
            }
            return ExitTaken::NotOurs; // it was ready: an ordinary crash
        }
        if step.old == Some(id) {
            return match step.stage {
                Stage::Booting => {
                    // Its replacement, already booting, takes its place.
                    step.old = None;
                    ExitTaken::Ours(None)
                }
                Stage::DrainingOld => {
                    self.replaced += 1;
                    ExitTaken::Ours(Some(self.advance(now)))
                }
            };
        }
        ExitTaken::NotOurs
    }

    /// Asks for the replacement of the next old worker, or finishes. Every exit is
    /// reported to [`Rollout::on_exit`], so the old workers still listed are alive.
    fn advance(&mut self, now: Instant) -> Order<W> {
        match self.old.pop_front() {
            Some(old) => {
                self.step = Some(Step {
                    new: None,
                    old: Some(old),
                    stage: Stage::Booting,
                });
                Order::StartReplacement { old }
            }
            None => {
                self.step = None;
                Order::Finished(self.summary(now))
            }
        }
    }

    fn summary(&self, now: Instant) -> Summary {
        Summary {
            replaced: self.replaced,
            total: self.total,
            took: now.saturating_duration_since(self.started),
        }
    }
}

#[cfg(test)]
mod tests;
