//! SIGKILLs during a rollout without processes: one the master did not send (an
//! operator, the OOM killer, chaos) is not held against the new build, a limited
//! number of times per rollout; one the master sent (boot timeout) is.

use super::tests::{Run, exited, logged};
use super::*;

const SETTLE: Duration = Duration::from_secs(3);

fn spawned_generations(actions: &[Action]) -> Vec<Generation> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { generation, .. } => Some(*generation),
            _ => None,
        })
        .collect()
}

fn sigkilled(id: WorkerId) -> Event {
    Event::Exited {
        id,
        clean: false,
        sigkill: true,
    }
}

#[test]
fn a_new_worker_sigkilled_from_outside_is_not_held_against_its_build() {
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart); // #3 replaces #1
    run.on(Event::Ready(3));
    let a = run.on(sigkilled(3));
    assert!(
        logged(
            &a,
            "killed by a SIGKILL the master did not send: not held against its build"
        ),
        "{a:?}"
    );
    assert_eq!(
        spawned_generations(&a),
        vec![2],
        "the step starts again: {a:?}"
    );
    assert!(!logged(&a, "rollout aborted"), "{a:?}");
    run.on(Event::Ready(4));
    run.later(SETTLE);
    run.on(Event::Settled(4));
    run.on(exited(1));
    run.on(Event::Ready(5));
    run.later(SETTLE);
    run.on(Event::Settled(5));
    let a = run.on(exited(2));
    assert!(logged(&a, "generation 2 (v2) is last known good"), "{a:?}");
}

#[test]
fn a_sigkill_the_master_sent_or_one_too_many_counts_against_the_build() {
    let mut run = Run::serving_with(2, SETTLE);
    run.on(Event::Restart); // #3 replaces #1
    run.on(Event::BootTimedOut(3));
    let a = run.on(sigkilled(3));
    assert!(
        logged(&a, "rollout aborted") && logged(&a, "exited before it was ready"),
        "the master's own SIGKILL at the boot timeout: {a:?}"
    );

    // One worker: one SIGKILL from outside is forgiven in a rollout, not two.
    let mut run = Run::serving_with(1, SETTLE);
    run.on(Event::Restart); // #2 replaces #1
    run.on(Event::Ready(2));
    let a = run.on(sigkilled(2));
    assert!(
        logged(&a, "(0 more such kills forgiven in this rollout)"),
        "{a:?}"
    );
    run.on(Event::Ready(3));
    let a = run.on(sigkilled(3));
    assert!(
        logged(&a, "rollout aborted") && logged(&a, "within the settle time"),
        "{a:?}"
    );
    assert_eq!(run.sup.last_known_good(), 1);
}
