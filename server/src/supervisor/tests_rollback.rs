//! Deploys with a settle time, last known good and rollbacks, without processes:
//! events in, actions out. Generation 1 is the binary `v1` the master started with;
//! each deploy opens the next (`v2`, ...), as `Run` in `tests.rs` answers for the
//! master.

use super::tests::{Run, drained, exited, logged, spawned};
use super::*;

const SETTLE: Duration = Duration::from_secs(3);

fn died(id: WorkerId) -> Event {
    Event::Exited {
        id,
        clean: false,
        sigkill: false,
    }
}

/// The generation of every worker the actions start.
fn spawned_generations(actions: &[Action]) -> Vec<Generation> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { generation, .. } => Some(*generation),
            _ => None,
        })
        .collect()
}

fn settle_timers(actions: &[Action]) -> Vec<(WorkerId, Duration)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SettleAfter(id, after) => Some((*id, *after)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_deploy_settles_each_new_worker_before_draining_and_then_becomes_last_known_good() {
    let mut run = Run::serving_with(2, SETTLE);
    let a = run.on(Event::Restart);
    assert_eq!(
        run.loaded,
        vec![2],
        "the start path is opened as generation 2"
    );
    assert!(logged(&a, "rollout started: generation 2 (v2)"), "{a:?}");
    assert_eq!(spawned_generations(&a), vec![2], "{a:?}");
    let a = run.on(Event::Ready(3));
    assert_eq!(settle_timers(&a), vec![(3, SETTLE)], "{a:?}");
    assert!(
        drained(&a).is_empty(),
        "#1 serves on while #3 settles: {a:?}"
    );
    run.later(SETTLE);
    let a = run.on(Event::Settled(3));
    assert_eq!(drained(&a), vec![1]);
    let a = run.on(exited(1));
    assert_eq!(spawned_generations(&a), vec![2]);
    run.on(Event::Ready(4));
    run.later(SETTLE);
    assert_eq!(drained(&run.on(Event::Settled(4))), vec![2]);
    assert_eq!(
        run.sup.last_known_good(),
        1,
        "not before the deploy is over"
    );
    let a = run.on(exited(2));
    assert!(
        logged(
            &a,
            "2 of 2 workers replaced; generation 2 (v2) is last known good"
        ),
        "{a:?}"
    );
    assert_eq!(run.sup.last_known_good(), 2);
    assert_eq!(
        run.unloaded,
        vec![1],
        "generation 1 is closed once replaced"
    );
    assert_eq!(run.sup.phase(), Phase::Serving);
    assert_eq!(run.min_ready_while_serving, 2, "ready workers fell below 2");
    // From now on a crash replacement runs generation 2.
    run.later(Duration::from_secs(5));
    let a = run.on(died(3));
    assert_eq!(spawned_generations(&a), vec![2], "{a:?}");
}

#[test]
fn after_a_broken_deploy_a_crashed_worker_is_replaced_from_the_old_generation() {
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart); // #3 of generation 2 replaces #1
    let a = run.on(died(3));
    assert!(
        logged(
            &a,
            "worker #3 of generation 2 (v2) exited before it was ready"
        ),
        "{a:?}"
    );
    assert!(logged(
        &a,
        "rolled back: no worker of generation 2 left, generation 1 (v1) keeps serving"
    ));
    assert_eq!(run.unloaded, vec![2], "the broken generation is closed");
    assert_eq!(
        (run.sup.phase(), run.sup.last_known_good()),
        (Phase::Serving, 1)
    );
    run.later(Duration::from_secs(5));
    let a = run.on(died(1));
    assert_eq!(
        spawned_generations(&a),
        vec![1],
        "the old code, not what the start path points at: {a:?}"
    );
    assert!(
        logged(&a, "replacing it now from generation 1 (v1)"),
        "{a:?}"
    );
}

#[test]
fn a_new_worker_dying_within_the_settle_time_aborts_with_capacity_kept() {
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart); // #3 replaces #1
    run.on(Event::Ready(3));
    run.later(Duration::from_secs(1));
    let a = run.on(died(3));
    assert!(
        logged(
            &a,
            "died 1000 ms after it was ready, within the settle time"
        ),
        "{a:?}"
    );
    assert!(
        spawned(&a).is_empty() && drained(&a).is_empty(),
        "#1 and #2 never stopped serving: {a:?}"
    );
    assert_eq!(run.sup.ready_count(), 2);
    assert_eq!(run.min_ready_while_serving, 2);
    assert!(
        run.on(Event::Settled(3)).is_empty(),
        "a settle timer of a dead worker does nothing"
    );
}

#[test]
fn a_new_worker_dying_after_its_step_is_covered_by_the_step_in_progress_then_rolled_back() {
    let mut run = Run::serving_with(3, SETTLE);
    run.on(Event::Restart); // #4 replaces #1
    run.on(Event::Ready(4));
    run.later(SETTLE);
    run.on(Event::Settled(4)); // drains #1
    run.on(exited(1)); // #5 replaces #2
    run.on(Event::Ready(5));
    run.later(Duration::from_millis(500));
    let a = run.on(died(4));
    assert!(
        logged(&a, "worker #4 of generation 2 (v2) died after settling"),
        "{a:?}"
    );
    assert!(
        drained(&a).is_empty(),
        "#5 serves in #4's place until its own replacement is ready: {a:?}"
    );
    assert_eq!(
        spawned_generations(&a),
        vec![1],
        "one generation 1 worker, to replace #5: {a:?}"
    );
    assert!(
        logged(
            &a,
            "rolling back: 1 workers of generation 2 replaced by generation 1 (v1)"
        ),
        "{a:?}"
    );
    assert_eq!(run.sup.ready_count(), 3, "#2, #3 and #5 serve");
    let a = run.on(Event::Ready(6));
    assert_eq!(drained(&a), vec![5]);
    let a = run.on(exited(5));
    assert!(logged(&a, "rollback finished"), "{a:?}");
    assert_eq!((run.sup.ready_count(), run.sup.worker_count()), (3, 3));
    assert_eq!(run.sup.last_known_good(), 1);
    assert_eq!(run.min_ready_while_serving, 3, "never below 3 ready");
}

#[test]
fn a_failed_deploy_rolls_its_settled_workers_back_to_the_old_code() {
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart); // #3 replaces #1
    run.on(Event::Ready(3));
    run.later(SETTLE);
    run.on(Event::Settled(3));
    run.on(exited(1)); // #4 replaces #2
    run.on(Event::Ready(4));
    run.later(SETTLE);
    run.on(Event::Settled(4)); // drains #2: #3 and #4 of generation 2 serve
    let a = run.on(died(4)); // ... and #4 dies while #2 drains
    assert_eq!(
        spawned_generations(&a),
        vec![1, 1],
        "one for #4's place, one to replace #3: {a:?}"
    );
    assert!(
        logged(
            &a,
            "rolling back: 1 workers of generation 2 replaced by generation 1 (v1)"
        ),
        "{a:?}"
    );
    assert_eq!(run.sup.phase(), Phase::RollingBack { pending: false });
    let ids = spawned(&a);
    let (filler, replacement) = (ids[0], ids[1]);
    run.on(Event::Ready(filler));
    let a = run.on(Event::Ready(replacement));
    assert_eq!(drained(&a), vec![3], "no settle time in a rollback: {a:?}");
    run.on(exited(2));
    let a = run.on(exited(3));
    assert!(
        logged(
            &a,
            "rollback finished in 0 ms: 1 of 1 workers back on generation 1 (v1)"
        ),
        "{a:?}"
    );
    assert_eq!(run.sup.phase(), Phase::Serving);
    assert_eq!(run.sup.generation(filler), Some(1));
    assert_eq!(run.sup.generation(replacement), Some(1));
    assert_eq!((run.sup.ready_count(), run.sup.worker_count()), (2, 2));
}

#[test]
fn a_crash_during_a_deploy_restarts_old_code_which_the_deploy_then_replaces() {
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart); // #3 replaces #1
    run.later(Duration::from_secs(5));
    let a = run.on(died(2));
    assert_eq!(spawned_generations(&a), vec![1], "known good code: {a:?}");
    run.on(Event::Ready(4));
    run.on(Event::Ready(3));
    run.later(SETTLE);
    run.on(Event::Settled(3));
    let a = run.on(exited(1));
    assert_eq!(
        spawned_generations(&a),
        vec![2],
        "#4 is replaced too: {a:?}"
    );
    run.on(Event::Ready(5));
    run.later(SETTLE);
    assert_eq!(drained(&run.on(Event::Settled(5))), vec![4]);
    let a = run.on(exited(4));
    assert!(
        logged(
            &a,
            "2 of 3 workers replaced, 1 gone before its turn; generation 2 (v2) is last known good"
        ),
        "{a:?}"
    );
    assert_eq!(run.sup.generation(3), Some(2));
    assert_eq!(run.sup.generation(5), Some(2));
    assert_eq!(run.sup.worker_count(), 2);
}

#[test]
fn a_restart_asked_for_during_a_rollback_runs_once_after_it() {
    let mut run = Run::serving_with(1, SETTLE);
    run.on(Event::Restart); // #2 of generation 2 replaces #1
    run.on(Event::Ready(2));
    run.later(SETTLE);
    run.on(Event::Settled(2)); // drains #1
    let a = run.on(died(2)); // #3 (v1) fills #2's place; nothing left to roll back
    assert_eq!(spawned_generations(&a), vec![1]);
    assert_eq!(run.sup.phase(), Phase::Serving);

    // Again, now with a worker to roll back and restarts asked for meanwhile.
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart);
    run.on(Event::Ready(3));
    run.later(SETTLE);
    run.on(Event::Settled(3));
    run.on(exited(1)); // #4 replaces #2
    run.on(Event::Ready(4));
    run.later(SETTLE);
    run.on(Event::Settled(4));
    run.on(died(4)); // rollback of #3, #5 fills #4's place
    run.on(Event::Restart);
    run.on(Event::Restart);
    assert_eq!(run.sup.phase(), Phase::RollingBack { pending: true });
    run.on(Event::Ready(5));
    run.on(Event::Ready(6)); // drains #3
    run.on(exited(2));
    let a = run.on(exited(3));
    assert!(logged(&a, "rollback finished"), "{a:?}");
    assert!(
        logged(&a, "running the restart queued during the rollout"),
        "{a:?}"
    );
    assert_eq!(run.loaded, vec![2, 3], "one more deploy, not two");
    assert_eq!(spawned_generations(&a), vec![3], "{a:?}");
    assert_eq!(run.sup.phase(), Phase::RollingOut { pending: false });
}

#[test]
fn a_start_path_that_cannot_be_opened_aborts_before_any_worker_starts() {
    let mut run = Run::serving_with(2, SETTLE);
    let a = run.sup.handle(Event::Restart, run.now);
    assert_eq!(a, vec![Action::Load(2)]);
    let a = run.sup.handle(
        Event::LoadFailed {
            generation: 2,
            error: "cannot open ./current: No such file".into(),
        },
        run.now,
    );
    assert!(
        logged(
            &a,
            "rollout aborted: cannot open generation 2: cannot open ./current"
        ),
        "{a:?}"
    );
    assert!(spawned(&a).is_empty(), "{a:?}");
    assert_eq!(run.sup.phase(), Phase::Serving);
    // The next restart tries the next generation number.
    assert_eq!(
        run.sup.handle(Event::Restart, run.now),
        vec![Action::Load(3)]
    );
}

#[test]
fn a_known_good_replacement_failing_stops_the_rollback() {
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart);
    run.on(Event::Ready(3));
    run.later(SETTLE);
    run.on(Event::Settled(3));
    run.on(exited(1)); // #4 replaces #2
    run.on(Event::Ready(4));
    run.later(SETTLE);
    run.on(Event::Settled(4));
    let a = run.on(died(4)); // #5 fills #4's place, #6 replaces #3
    let ids = spawned(&a);
    let a = run.on(died(ids[1]));
    assert!(
        logged(
            &a,
            "rollback stopped after 0 ms: worker #6 of generation 1 (v1) exited before"
        ),
        "{a:?}"
    );
    assert!(logged(&a, "1 of another generation still serving"), "{a:?}");
    assert_eq!(run.sup.phase(), Phase::Serving);
}
