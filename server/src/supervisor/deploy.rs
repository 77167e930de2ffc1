//! Deploys and rollbacks, part of the [`Supervisor`]. A restart opens what the start
//! path points at as a new generation ([`Action::Load`]), then rolls it out with a
//! [`Rollout`] on probation: each new worker must stay ready for the settle time
//! before its old worker drains. When every old worker is replaced the new
//! generation becomes the last known good one. When a new worker dies first, the
//! deploy is aborted and rolled back: its workers are replaced, one at a time, by
//! workers of the last known good generation (old code started again), and a place
//! the failed worker held alone is filled at once. A restart asked for meanwhile
//! runs once afterwards.

use std::time::Instant;

use super::{Action, Generation, Phase, Release, Role, Supervisor, WorkerId};
use crate::rollout::{Failed, Order, Rollout, Summary};

impl Supervisor {
    pub(super) fn on_restart(&mut self, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Starting => {
                self.restart_after_start = true;
                out.push(Action::Log(
                    "restart requested while starting: it runs once every worker is ready".into(),
                ));
            }
            Phase::Serving => self.begin_deploy(out),
            Phase::RollingOut { pending } | Phase::RollingBack { pending } => {
                self.set_pending();
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

    fn set_pending(&mut self) {
        self.phase = match self.phase {
            Phase::RollingOut { .. } => Phase::RollingOut { pending: true },
            Phase::RollingBack { .. } => Phase::RollingBack { pending: true },
            other => other,
        };
    }

    fn pending(&self) -> bool {
        matches!(
            self.phase,
            Phase::RollingOut { pending: true } | Phase::RollingBack { pending: true }
        )
    }

    /// Asks for the next generation's executable; the deploy starts when it is open.
    pub(super) fn begin_deploy(&mut self, out: &mut Vec<Action>) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.loading = Some(generation);
        self.phase = Phase::RollingOut { pending: false };
        out.push(Action::Load(generation));
    }

    pub(super) fn on_loaded(
        &mut self,
        generation: Generation,
        binary: String,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.loading != Some(generation) || !matches!(self.phase, Phase::RollingOut { .. }) {
            out.push(Action::Unload(generation)); // nobody waits for it any more
            return;
        }
        self.loading = None;
        let release = Release { generation, binary };
        let old: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.role != Role::Leaving)
            .map(|(&id, _)| id)
            .collect();
        out.push(Action::Log(format!(
            "rollout started: {release} replaces {} workers one at a time, each new worker \
             settling {} ms before its old one drains; {} stays last known good until then",
            old.len(),
            self.config.settle.as_millis(),
            self.good
        )));
        self.candidate = Some(release);
        self.forgivable = self.config.target;
        let (rollout, order) = Rollout::deploy(old, self.config.settle, now);
        self.rollout = Some(rollout);
        self.carry_out(Some(order), now, out);
    }

    pub(super) fn on_load_failed(
        &mut self,
        generation: Generation,
        error: &str,
        out: &mut Vec<Action>,
    ) {
        if self.loading != Some(generation) {
            return;
        }
        self.loading = None;
        out.push(Action::Log(format!(
            "rollout aborted: cannot open generation {generation}: {error}; {} keeps serving",
            self.good
        )));
        self.end_rollout(out);
    }

    /// Carries out what the rollout asked for; when it finished or aborted, ends it
    /// (rolling back an aborted deploy, then starting the pass queued meanwhile).
    pub(super) fn carry_out(
        &mut self,
        order: Option<Order<WorkerId>>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let rolling_back = matches!(self.phase, Phase::RollingBack { .. });
        match order {
            None => {}
            Some(Order::StartReplacement { old }) => {
                let release = match (&self.candidate, rolling_back) {
                    (Some(candidate), false) => candidate.clone(),
                    _ => self.good.clone(),
                };
                let new = self.spawn(release.generation, None, out);
                let verb = if rolling_back { "rollback" } else { "rollout" };
                out.push(Action::Log(format!(
                    "{verb}: worker #{new} of {release} starting to replace worker #{old}"
                )));
                if let Some(rollout) = self.rollout.as_mut() {
                    rollout.replacement_started(new);
                }
            }
            Some(Order::Settle { new, after }) => {
                out.push(Action::Log(format!(
                    "rollout: worker #{new} ready; it must stay up {} ms before its old worker drains",
                    after.as_millis()
                )));
                out.push(Action::SettleAfter(new, after));
            }
            Some(Order::Drain(old)) => self.drain(old, out),
            Some(Order::Finished(summary)) if rolling_back => {
                out.push(Action::Log(format!(
                    "rollback finished in {} ms: {} of {} workers back on {}{}",
                    summary.took.as_millis(),
                    summary.replaced,
                    summary.total,
                    self.good,
                    summary.gone_note()
                )));
                self.end_rollout(out);
            }
            Some(Order::Finished(summary)) => self.promote(summary, out),
            Some(Order::Aborted {
                failed,
                when,
                lost_capacity,
                summary,
            }) => {
                self.rollout = None;
                out.push(Action::Log(self.abort_line(
                    failed,
                    when,
                    summary,
                    rolling_back,
                )));
                if lost_capacity {
                    let id = self.spawn_known_good(Some(now), out);
                    out.push(Action::Log(format!(
                        "worker #{failed} held a place alone: worker #{id} of {} replaces it",
                        self.good
                    )));
                }
                if rolling_back {
                    self.end_rollout(out); // the workers not rolled back yet keep serving
                } else {
                    self.roll_back(now, out);
                }
            }
        }
    }

    /// Every old worker was replaced and every new one settled: the candidate is the
    /// last known good generation now.
    fn promote(&mut self, summary: Summary, out: &mut Vec<Action>) {
        let previous = match self.candidate.take() {
            Some(candidate) => Some(std::mem::replace(&mut self.good, candidate)),
            None => None,
        };
        out.push(Action::Log(format!(
            "rollout finished in {} ms: {} of {} workers replaced{}; {} is last known good",
            summary.took.as_millis(),
            summary.replaced,
            summary.total,
            summary.gone_note(),
            self.good
        )));
        if let Some(previous) = previous.filter(|p| p.generation != self.good.generation) {
            out.push(Action::Unload(previous.generation));
        }
        self.end_rollout(out);
    }

    /// The log line of an aborted deploy, or of a rollback that could not go on (a
    /// known good replacement failed: crash replacements still start known good).
    fn abort_line(&self, failed: WorkerId, when: Failed, s: Summary, rolling_back: bool) -> String {
        if rolling_back {
            let left = self
                .workers
                .values()
                .filter(|w| w.generation != self.good.generation && w.role != Role::Leaving)
                .count();
            return format!(
                "rollback stopped after {} ms: worker #{failed} of {} {}; {} of {} workers \
                 rolled back{}, {left} of another generation still serving",
                s.took.as_millis(),
                self.good,
                describe(when),
                s.replaced,
                s.total,
                s.gone_note()
            );
        }
        let candidate = match &self.candidate {
            Some(candidate) => candidate.to_string(),
            None => "the new generation".to_owned(),
        };
        format!(
            "rollout aborted after {} ms: worker #{failed} of {candidate} {}; {} of {} workers \
             had been replaced{}",
            s.took.as_millis(),
            describe(when),
            s.replaced,
            s.total,
            s.gone_note()
        )
    }

    /// After an aborted deploy: replace the workers of the new generation with known
    /// good ones, one at a time.
    fn roll_back(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(candidate) = self.candidate.take() else {
            return self.end_rollout(out);
        };
        out.push(Action::Unload(candidate.generation));
        let victims: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation == candidate.generation && w.role != Role::Leaving)
            .map(|(&id, _)| id)
            .collect();
        if victims.is_empty() {
            out.push(Action::Log(format!(
                "rolled back: no worker of generation {} left, {} keeps serving",
                candidate.generation, self.good
            )));
            return self.end_rollout(out);
        }
        out.push(Action::Log(format!(
            "rolling back: {} workers of generation {} replaced by {}, one at a time",
            victims.len(),
            candidate.generation,
            self.good
        )));
        self.phase = Phase::RollingBack {
            pending: self.pending(),
        };
        self.forgivable = self.config.target;
        let (rollout, order) = Rollout::rollback(victims, now);
        self.rollout = Some(rollout);
        self.carry_out(Some(order), now, out);
    }

    /// Back to serving; runs the restart queued meanwhile, if there is one.
    fn end_rollout(&mut self, out: &mut Vec<Action>) {
        let pending = self.pending();
        self.rollout = None;
        self.candidate = None;
        self.phase = Phase::Serving;
        if pending {
            out.push(Action::Log(
                "running the restart queued during the rollout".into(),
            ));
            self.begin_deploy(out);
        }
    }
}

fn describe(when: Failed) -> String {
    match when {
        Failed::BeforeReady => "exited before it was ready".to_owned(),
        Failed::WhileSettling { ready_for } => format!(
            "died {} ms after it was ready, within the settle time",
            ready_for.as_millis()
        ),
        Failed::AfterSettling => "died after settling, before the rollout was over".to_owned(),
    }
}
