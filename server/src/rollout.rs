//! One rolling replacement of workers as a plain state machine: the workers still to
//! replace and the step in progress (replacement booting, settling, or old worker
//! draining). It owns no workers and calls nothing: it is told what happened (a
//! replacement started, a worker became ready, settled or exited) and answers with
//! the [`Order`] it wants carried out (start a replacement, wait for the settle time,
//! drain an old worker, finished, aborted), which the [`crate::supervisor`] executes.
//!
//! One worker at a time, so ready capacity never drops below the target: a
//! replacement must become ready and then stay ready for the settle time while its
//! old worker keeps serving; only then is the old worker drained, and the next
//! replacement starts once it has exited. The same machine runs a deploy (a new
//! generation on probation: any of its workers that dies before the deploy is over
//! aborts it) and a rollback (the last known good generation again, no settle time,
//! no probation: a worker that crashes once ready is crash recovery's business).
//! A new worker's death that is not held against its build (a SIGKILL from
//! outside, see [`Rollout::on_exit`]) does not abort: its step starts again, or
//! crash recovery fills its place. Worker ids are the supervisor's; the rollout
//! only tells them apart, hence `W`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the rollout wants done next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order<W> {
    /// Start a new worker to replace `old`, then report its id with
    /// [`Rollout::replacement_started`].
    StartReplacement { old: W },
    /// `new` is ready: call [`Rollout::on_settled`] once `after` has passed.
    Settle { new: W, after: Duration },
    /// The replacement has settled: drain this old worker (its exit is then expected).
    Drain(W),
    /// Every old worker was replaced (or had gone on its own).
    Finished(Summary),
    /// A new worker failed: it exited before it was ready (it crashed, or the
    /// supervisor killed it at the boot timeout), or, on probation, at any time
    /// before the end. The rollout stops. `lost_capacity`: the failed worker held a
    /// place no other worker holds (its old worker is gone, and no replacement in
    /// progress, one worker beyond the target, takes its place), so it must be
    /// replaced.
    Aborted {
        failed: W,
        when: Failed,
        lost_capacity: bool,
        summary: Summary,
    },
}

/// When a new worker failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    BeforeReady,
    /// Ready this long before it died, within the settle time.
    WhileSettling {
        ready_for: Duration,
    },
    /// After its step was done, while the rest of the deploy went on.
    AfterSettling,
}

/// How far a rollout got, for its closing log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub replaced: usize,
    pub total: usize,
    /// Old workers that died before their turn (crash recovery replaced them).
    pub gone: usize,
    pub took: Duration,
}

impl Summary {
    /// `", 1 gone before its turn"`, or nothing.
    pub fn gone_note(&self) -> String {
        match self.gone {
            0 => String::new(),
            n => format!(", {n} gone before its turn"),
        }
    }
}

/// What a worker's exit meant to the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitTaken<W> {
    /// Not the rollout's business: crash recovery decides what to do.
    NotOurs,
    /// The rollout's business (never respawn the worker), and what to do next.
    Ours(Option<Order<W>>),
    /// A new worker whose death is not held against its build (see
    /// [`Rollout::on_exit`]) left a place empty: crash recovery fills it, after
    /// this order is carried out.
    Crashed(Option<Order<W>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Booting,
    Settling { ready_at: Instant },
    DrainingOld,
}

#[derive(Debug, Clone, Copy)]
struct Step<W> {
    /// `None` until the supervisor reports the replacement it started.
    new: Option<W>,
    /// `None` when the old worker died on its own before it was drained.
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
    settle: Duration,
    /// A deploy: every replacement is watched until the end ([`Failed::AfterSettling`]).
    probation: bool,
    /// Replacements whose step is done (watched while on probation).
    done: Vec<W>,
    gone: usize,
}

impl<W: Copy + Eq> Rollout<W> {
    /// A deploy replacing the `old` workers in order, each replacement settling for
    /// `settle`, every one on probation until the end; and its first order.
    pub fn deploy(old: Vec<W>, settle: Duration, now: Instant) -> (Rollout<W>, Order<W>) {
        Rollout::start(old, settle, true, now)
    }

    /// A rollback: the `old` workers replaced in order by known good ones, no settle
    /// time, no probation; and its first order.
    pub fn rollback(old: Vec<W>, now: Instant) -> (Rollout<W>, Order<W>) {
        Rollout::start(old, Duration::ZERO, false, now)
    }

    fn start(
        old: Vec<W>,
        settle: Duration,
        probation: bool,
        now: Instant,
    ) -> (Rollout<W>, Order<W>) {
        let mut rollout = Rollout {
            total: old.len(),
            old: old.into(),
            step: None,
            started: now,
            replaced: 0,
            settle,
            probation,
            done: Vec::new(),
            gone: 0,
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

    /// Another worker to replace, queued last (a crash replacement started from the
    /// generation this rollout replaces).
    pub fn enqueue(&mut self, old: W) {
        self.old.push_back(old);
        self.total += 1;
    }

    /// Whether `id` is one of the workers this rollout started (alive).
    pub fn is_new(&self, id: W) -> bool {
        self.done.contains(&id) || self.step.is_some_and(|s| s.new == Some(id))
    }

    /// Worker `id` reports ready.
    pub fn on_ready(&mut self, id: W, now: Instant) -> Option<Order<W>> {
        let step = self.step.as_mut()?;
        if step.new != Some(id) || step.stage != Stage::Booting {
            return None;
        }
        if self.settle.is_zero() {
            return Some(self.settled(now));
        }
        step.stage = Stage::Settling { ready_at: now };
        Some(Order::Settle {
            new: id,
            after: self.settle,
        })
    }

    /// The settle time of worker `id` has passed.
    pub fn on_settled(&mut self, id: W, now: Instant) -> Option<Order<W>> {
        let step = self.step.as_ref()?;
        if step.new != Some(id) || !matches!(step.stage, Stage::Settling { .. }) {
            return None;
        }
        Some(self.settled(now))
    }

    /// The step's replacement is ready and settled: drain its old worker, or, when
    /// that one is gone already, go on.
    fn settled(&mut self, now: Instant) -> Order<W> {
        let Some(step) = self.step.as_mut() else {
            return self.advance(now);
        };
        match step.old {
            Some(old) => {
                step.stage = Stage::DrainingOld;
                Order::Drain(old)
            }
            None => self.step_done(now),
        }
    }

    fn step_done(&mut self, now: Instant) -> Order<W> {
        if let Some(new) = self.step.and_then(|s| s.new) {
            self.done.push(new);
        }
        self.replaced += 1;
        self.advance(now)
    }

    /// Worker `id` is gone (whatever the supervisor thought of it). `blamed`: when
    /// it is one of the new workers, whether its death counts against its build.
    /// The supervisor clears it for a SIGKILL it did not send (an operator, the OOM
    /// killer, chaos), a limited number of times: such a worker is replaced like any
    /// crashed one, or, when its old worker still serves, its step starts again.
    pub fn on_exit(&mut self, id: W, blamed: bool, now: Instant) -> ExitTaken<W> {
        // An old worker that died before its turn: crash recovery replaces it.
        let queued = self.old.len();
        self.old.retain(|&old| old != id);
        self.gone += queued - self.old.len();
        if self.done.contains(&id) {
            self.done.retain(|&done| done != id);
            if !self.probation || !blamed {
                return ExitTaken::NotOurs;
            }
            return ExitTaken::Ours(Some(self.abort(id, Failed::AfterSettling, true, now)));
        }
        let Some(step) = self.step.as_mut() else {
            return ExitTaken::NotOurs;
        };
        if step.new == Some(id) {
            let when = match step.stage {
                Stage::Booting => Failed::BeforeReady,
                Stage::Settling { ready_at } => Failed::WhileSettling {
                    ready_for: now.saturating_duration_since(ready_at),
                },
                // Ready and settled, its old worker draining.
                Stage::DrainingOld if self.probation && blamed => Failed::AfterSettling,
                Stage::DrainingOld => return ExitTaken::NotOurs,
            };
            if !blamed {
                return match step.old {
                    // Its old worker still serves: the step starts again.
                    Some(old) => {
                        *step = Step {
                            new: None,
                            old: Some(old),
                            stage: Stage::Booting,
                        };
                        ExitTaken::Ours(Some(Order::StartReplacement { old }))
                    }
                    None => ExitTaken::Crashed(Some(self.advance(now))),
                };
            }
            let lost_capacity = step.old.is_none() || step.stage == Stage::DrainingOld;
            return ExitTaken::Ours(Some(self.abort(id, when, lost_capacity, now)));
        }
        if step.old == Some(id) {
            return match step.stage {
                Stage::Booting | Stage::Settling { .. } => {
                    // Its replacement, already started, takes its place.
                    step.old = None;
                    ExitTaken::Ours(None)
                }
                Stage::DrainingOld => ExitTaken::Ours(Some(self.step_done(now))),
            };
        }
        ExitTaken::NotOurs
    }

    fn abort(&mut self, failed: W, when: Failed, held_a_place: bool, now: Instant) -> Order<W> {
        // A replacement whose old worker still serves is one beyond the target: it
        // takes the failed worker's place.
        let covered = self
            .step
            .take()
            .filter(|s| s.old.is_some() && s.stage != Stage::DrainingOld)
            .and_then(|s| s.new)
            .is_some_and(|new| new != failed);
        self.old.clear();
        self.done.clear();
        Order::Aborted {
            failed,
            when,
            lost_capacity: held_a_place && !covered,
            summary: self.summary(now),
        }
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
            gone: self.gone,
            took: now.saturating_duration_since(self.started),
        }
    }
}

#[cfg(test)]
mod tests;
