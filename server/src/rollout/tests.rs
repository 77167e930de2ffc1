//! One rollout without processes or a supervisor: what happened in, orders out. The
//! test plays the supervisor, numbering replacements from 10 up.

use super::*;

/// A rollout, a clock moved by hand, and the next replacement's id.
struct Run {
    rollout: Rollout<u64>,
    now: Instant,
    next: u64,
}

impl Run {
    fn start(old: &[u64]) -> (Run, Order<u64>) {
        let now = Instant::now();
        let (rollout, order) = Rollout::start(old.to_vec(), now);
        let run = Run {
            rollout,
            now,
            next: 10,
        };
        (run, order)
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

    fn exit(&mut self, id: u64) -> ExitTaken<u64> {
        self.rollout.on_exit(id, self.now)
    }

    fn later(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    fn summary(&self, replaced: usize, total: usize, took_ms: u64) -> Summary {
        Summary {
            replaced,
            total,
            took: Duration::from_millis(took_ms),
        }
    }
}

#[test]
fn replaces_one_worker_at_a_time_in_order() {
    let (mut run, first) = Run::start(&[1, 2]);
    let a = run.replace(Some(first), 1);
    assert_eq!(
        run.ready(a),
        Some(Order::Drain(1)),
        "drain #1 once #{a} is ready"
    );
    let next = match run.exit(1) {
        ExitTaken::Ours(order) => order,
        other => panic!("the drained worker's exit is the rollout's: {other:?}"),
    };
    let b = run.replace(next, 2);
    assert_eq!(run.ready(b), Some(Order::Drain(2)));
    run.later(250);
    let summary = run.summary(2, 2, 250);
    assert_eq!(run.exit(2), ExitTaken::Ours(Some(Order::Finished(summary))));
    assert_eq!(
        summary.finished(),
        "rollout finished in 250 ms: 2 of 2 workers replaced"
    );
}

#[test]
fn nothing_to_replace_finishes_at_once() {
    let (run, first) = Run::start(&[]);
    assert_eq!(first, Order::Finished(run.summary(0, 0, 0)));
}

#[test]
fn a_replacement_that_exits_before_ready_aborts() {
    let (mut run, first) = Run::start(&[1, 2]);
    let a = run.replace(Some(first), 1);
    run.later(40);
    let summary = run.summary(0, 2, 40);
    assert_eq!(
        run.exit(a),
        ExitTaken::Ours(Some(Order::Aborted {
            replacement: a,
            summary
        }))
    );
    assert!(
        summary
            .aborted(a)
            .contains("replacement worker #10 exited before it was ready; 0 of 2"),
        "{}",
        summary.aborted(a)
    );
    // Once aborted, later events are none of its business.
    assert_eq!(run.ready(a), None);
    assert_eq!(run.exit(1), ExitTaken::NotOurs);
}

#[test]
fn a_replacement_that_crashes_once_ready_is_an_ordinary_crash() {
    let (mut run, first) = Run::start(&[1, 2]);
    let a = run.replace(Some(first), 1);
    assert_eq!(run.ready(a), Some(Order::Drain(1)));
    assert_eq!(
        run.exit(a),
        ExitTaken::NotOurs,
        "crash recovery replaces it"
    );
    // The old worker's drain still moves the rollout on.
    let next = match run.exit(1) {
        ExitTaken::Ours(order) => order,
        other => panic!("{other:?}"),
    };
    run.replace(next, 2);
}

#[test]
fn an_old_worker_dying_while_its_replacement_boots_is_replaced_by_it() {
    let (mut run, first) = Run::start(&[1, 2]);
    let a = run.replace(Some(first), 1);
    assert_eq!(
        run.exit(1),
        ExitTaken::Ours(None),
        "never respawned: #{a} boots"
    );
    let next = run.ready(a);
    let b = run.replace(next, 2);
    assert_eq!(run.ready(b), Some(Order::Drain(2)));
    assert_eq!(
        run.exit(2),
        ExitTaken::Ours(Some(Order::Finished(run.summary(2, 2, 0))))
    );
}

#[test]
fn an_old_worker_dying_before_its_turn_is_skipped() {
    let (mut run, first) = Run::start(&[1, 2, 3]);
    let a = run.replace(Some(first), 1);
    assert_eq!(
        run.exit(2),
        ExitTaken::NotOurs,
        "crash recovery respawns #2"
    );
    assert_eq!(run.ready(a), Some(Order::Drain(1)));
    let next = match run.exit(1) {
        ExitTaken::Ours(order) => order,
        other => panic!("{other:?}"),
    };
    let b = run.replace(next, 3);
    run.ready(b);
    assert_eq!(
        run.exit(3),
        ExitTaken::Ours(Some(Order::Finished(run.summary(2, 3, 0))))
    );
}

#[test]
fn other_workers_events_are_ignored() {
    let (mut run, first) = Run::start(&[1]);
    let a = run.replace(Some(first), 1);
    assert_eq!(run.ready(99), None, "not the replacement");
    assert_eq!(run.exit(99), ExitTaken::NotOurs);
    assert_eq!(run.ready(a), Some(Order::Drain(1)));
    assert_eq!(run.ready(a), None, "a second ready asks for nothing more");
}
