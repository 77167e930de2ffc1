//! One rollout without processes or a supervisor: what happened in, orders out. The
//! test plays the supervisor, numbering replacements from 10 up.

use super::*;

const SETTLE: Duration = Duration::from_secs(3);

/// A rollout, a clock moved by hand, and the next replacement's id.
struct Run {
    rollout: Rollout<u64>,
    now: Instant,
    started: Instant,
    next: u64,
}

impl Run {
    fn deploy(old: &[u64]) -> (Run, Order<u64>) {
        let now = Instant::now();
        let (rollout, order) = Rollout::deploy(old.to_vec(), SETTLE, now);
        (Run::with(rollout, now), order)
    }

    fn rollback(old: &[u64]) -> (Run, Order<u64>) {
        let now = Instant::now();
        let (rollout, order) = Rollout::rollback(old.to_vec(), now);
        (Run::with(rollout, now), order)
    }

    fn with(rollout: Rollout<u64>, now: Instant) -> Run {
        Run {
            rollout,
            now,
            started: now,
            next: 10,
        }
    }

    /// Carries out a `StartReplacement` like the supervisor would; returns the id.
    fn replace(&mut self, order: Option<Order<u64>>, old: u64) -> u64 {
        assert_eq!(order, Some(Order::StartReplacement { old }));
        let new = self.next;
        self.next += 1;
        self.rollout.replacement_started(new);
        new
    }

    fn ready(&mut self, id: u64) -> Option<Order<u64>> {
        self.rollout.on_ready(id, self.now)
    }

    fn settled(&mut self, id: u64) -> Option<Order<u64>> {
        self.rollout.on_settled(id, self.now)
    }

    /// Ready, then settled after the settle time: the order that follows.
    fn ready_and_settled(&mut self, id: u64) -> Option<Order<u64>> {
        assert_eq!(
            self.ready(id),
            Some(Order::Settle {
                new: id,
                after: SETTLE
            }),
            "#{id} ready: it settles before anything else happens"
        );
        self.later(SETTLE.as_millis() as u64);
        self.settled(id)
    }

    fn exit(&mut self, id: u64) -> ExitTaken<u64> {
        self.rollout.on_exit(id, true, self.now)
    }

    /// The exit of `id` not held against its build (a SIGKILL from outside).
    fn killed(&mut self, id: u64) -> ExitTaken<u64> {
        self.rollout.on_exit(id, false, self.now)
    }

    /// The exit of `id`, which must be the rollout's business: the order it gives.
    fn ours(&mut self, id: u64) -> Option<Order<u64>> {
        match self.exit(id) {
            ExitTaken::Ours(order) => order,
            other => panic!("the exit of #{id} must be the rollout's business, got {other:?}"),
        }
    }

    fn later(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    fn summary(&self, replaced: usize, total: usize) -> Summary {
        self.summary_gone(replaced, total, 0)
    }

    fn summary_gone(&self, replaced: usize, total: usize, gone: usize) -> Summary {
        Summary {
            replaced,
            total,
            gone,
            took: self.now - self.started,
        }
    }
}

#[test]
fn a_deploy_replaces_one_worker_at_a_time_each_settling_before_its_old_one_drains() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    assert_eq!(run.settled(a), None, "not ready yet: nothing settles");
    assert_eq!(run.ready_and_settled(a), Some(Order::Drain(1)));
    let next = run.ours(1);
    let b = run.replace(next, 2);
    assert_eq!(run.ready_and_settled(b), Some(Order::Drain(2)));
    run.later(40);
    let summary = run.summary(2, 2);
    assert_eq!(run.ours(2), Some(Order::Finished(summary)));
    assert_eq!(summary.took, SETTLE * 2 + Duration::from_millis(40));
}

#[test]
fn nothing_to_replace_finishes_at_once() {
    let (run, first) = Run::deploy(&[]);
    assert_eq!(first, Order::Finished(run.summary(0, 0)));
}

#[test]
fn a_replacement_that_exits_before_ready_aborts_and_its_old_worker_stays() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    run.later(40);
    let summary = run.summary(0, 2);
    assert_eq!(
        run.ours(a),
        Some(Order::Aborted {
            failed: a,
            when: Failed::BeforeReady,
            lost_capacity: false,
            summary
        })
    );
    // Once aborted, later events are none of its business.
    assert_eq!(run.ready(a), None);
    assert_eq!(run.exit(1), ExitTaken::NotOurs);
    assert_eq!(run.exit(2), ExitTaken::NotOurs);
}

#[test]
fn a_replacement_that_dies_while_settling_aborts_while_its_old_worker_still_serves() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    run.ready(a);
    run.later(1000);
    let aborted = run.ours(a);
    assert_eq!(
        aborted,
        Some(Order::Aborted {
            failed: a,
            when: Failed::WhileSettling {
                ready_for: Duration::from_secs(1)
            },
            lost_capacity: false,
            summary: run.summary(0, 2),
        }),
        "#1 was never drained: nothing to make up for"
    );
    assert_eq!(run.settled(a), None, "a late settle timer asks for nothing");
}

#[test]
fn a_settled_worker_of_a_deploy_that_dies_later_in_it_aborts_and_the_step_in_progress_covers_it() {
    let (mut run, first) = Run::deploy(&[1, 2, 3]);
    let a = run.replace(Some(first), 1);
    run.ready_and_settled(a);
    let next = run.ours(1);
    let b = run.replace(next, 2);
    run.ready(b);
    run.later(500);
    assert_eq!(
        run.ours(a),
        Some(Order::Aborted {
            failed: a,
            when: Failed::AfterSettling,
            lost_capacity: false,
            summary: run.summary(1, 3),
        }),
        "#{a} replaced #1, which is gone, but #{b} is one beyond the target while #2 serves"
    );
}

#[test]
fn a_replacement_dying_while_its_old_worker_drains_was_holding_its_place() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    assert_eq!(run.ready_and_settled(a), Some(Order::Drain(1)));
    match run.ours(a) {
        Some(Order::Aborted {
            when: Failed::AfterSettling,
            lost_capacity: true,
            ..
        }) => {}
        other => panic!("expected an abort that makes up for #{a}, got {other:?}"),
    }
}

#[test]
fn a_rollback_does_not_settle_and_leaves_crashes_of_ready_workers_to_crash_recovery() {
    let (mut run, first) = Run::rollback(&[1, 2]);
    let a = run.replace(Some(first), 1);
    assert_eq!(run.ready(a), Some(Order::Drain(1)), "no settle time");
    assert_eq!(
        run.exit(a),
        ExitTaken::NotOurs,
        "a crash, not a failed step"
    );
    let next = run.ours(1);
    let b = run.replace(next, 2);
    assert_eq!(run.ready(b), Some(Order::Drain(2)));
    let next = run.ours(2);
    assert_eq!(next, Some(Order::Finished(run.summary(2, 2))));
    assert_eq!(run.exit(b), ExitTaken::NotOurs);
}

#[test]
fn an_old_worker_dying_while_its_replacement_boots_or_settles_is_replaced_by_it() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    assert_eq!(run.ours(1), None, "never respawned: #{a} boots");
    run.ready(a);
    run.later(SETTLE.as_millis() as u64);
    let next = run.settled(a);
    let b = run.replace(next, 2);
    run.ready(b);
    assert_eq!(run.ours(2), None, "never respawned: #{b} settles");
    run.later(SETTLE.as_millis() as u64);
    assert_eq!(
        run.settled(b),
        Some(Order::Finished(run.summary(2, 2))),
        "nothing left to drain"
    );
}

#[test]
fn a_replacement_failing_after_its_old_worker_died_lost_capacity() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    run.ours(1);
    match run.ours(a) {
        Some(Order::Aborted {
            failed,
            when: Failed::BeforeReady,
            lost_capacity: true,
            ..
        }) if failed == a => {}
        other => panic!("expected an abort that makes up for #1, got {other:?}"),
    }
}

#[test]
fn an_old_worker_dying_before_its_turn_is_skipped_and_its_crash_replacement_queued() {
    let (mut run, first) = Run::deploy(&[1, 2, 3]);
    let a = run.replace(Some(first), 1);
    assert_eq!(
        run.exit(2),
        ExitTaken::NotOurs,
        "crash recovery replaces #2"
    );
    run.rollout.enqueue(4); // ... with the old code: the deploy must replace it too
    run.ready_and_settled(a);
    let next = run.ours(1);
    let b = run.replace(next, 3);
    run.ready_and_settled(b);
    let next = run.ours(3);
    let c = run.replace(next, 4);
    run.ready_and_settled(c);
    let summary = run.summary_gone(3, 4, 1);
    assert_eq!(run.ours(4), Some(Order::Finished(summary)));
    assert_eq!(summary.gone_note(), ", 1 gone before its turn");
}

#[test]
fn other_workers_events_are_ignored() {
    let (mut run, first) = Run::deploy(&[1]);
    let a = run.replace(Some(first), 1);
    assert_eq!(run.ready(99), None, "not the replacement");
    assert_eq!(run.settled(99), None);
    assert_eq!(run.exit(99), ExitTaken::NotOurs);
    assert!(run.ready(a).is_some());
    assert_eq!(run.ready(a), None, "a second ready asks for nothing more");
    run.later(SETTLE.as_millis() as u64);
    assert_eq!(run.settled(a), Some(Order::Drain(1)));
    assert_eq!(
        run.settled(a),
        None,
        "a second settle asks for nothing more"
    );
}

#[test]
fn a_new_worker_killed_from_outside_while_settling_starts_its_step_again() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    run.ready(a);
    match run.killed(a) {
        ExitTaken::Ours(order) => {
            let b = run.replace(order, 1);
            assert_eq!(run.ready_and_settled(b), Some(Order::Drain(1)));
        }
        other => panic!("expected the step to start again, got {other:?}"),
    }
    assert_eq!(
        run.settled(a),
        None,
        "the killed worker's timer asks for nothing"
    );
}

#[test]
fn a_settled_new_worker_killed_from_outside_is_left_to_crash_recovery() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    run.ready_and_settled(a);
    let next = run.ours(1);
    let b = run.replace(next, 2);
    assert_eq!(run.killed(a), ExitTaken::NotOurs, "not an abort: a crash");
    run.rollout.enqueue(20); // crash recovery's replacement, old code: replaced too
    run.ready_and_settled(b);
    let next = run.ours(2);
    let c = run.replace(next, 20);
    run.ready_and_settled(c);
    assert_eq!(run.ours(20), Some(Order::Finished(run.summary(3, 3))));
}

#[test]
fn a_new_worker_killed_from_outside_after_its_old_worker_died_moves_on() {
    let (mut run, first) = Run::deploy(&[1, 2]);
    let a = run.replace(Some(first), 1);
    run.ours(1); // #1 dies: #a holds its place
    match run.killed(a) {
        ExitTaken::Crashed(next) => {
            run.replace(next, 2);
        }
        other => panic!("expected crash recovery and the next step, got {other:?}"),
    }
}
