//! The master's lifecycle without processes: events in, actions out. These tests
//! run without a settle time (a deploy's new worker drains its old one as soon as it
//! is ready); settle times and rollbacks are in `tests_rollback.rs`. The `Run` helper
//! plays the process layer: it answers every [`Action::Load`] with
//! [`Event::Loaded`] at once, as the master does.

use super::crash::backoff;
use super::*;

/// A supervisor plus a clock the test moves by hand.
pub(super) struct Run {
    pub sup: Supervisor,
    pub now: Instant,
    pub min_ready_while_serving: usize,
    /// Generations opened so far, in order (`Action::Load`).
    pub loaded: Vec<Generation>,
    /// Generations closed so far, in order (`Action::Unload`).
    pub unloaded: Vec<Generation>,
}

impl Run {
    pub fn start(n: usize) -> (Run, Vec<Action>) {
        Run::start_with(n, Duration::ZERO)
    }

    pub fn start_with(n: usize, settle: Duration) -> (Run, Vec<Action>) {
        let config = Config { target: n, settle };
        let (sup, actions) = Supervisor::new(config, "v1".into());
        let run = Run {
            sup,
            now: Instant::now(),
            min_ready_while_serving: usize::MAX,
            loaded: Vec::new(),
            unloaded: Vec::new(),
        };
        (run, actions)
    }

    /// Starts `n` workers and makes them all ready.
    pub fn serving(n: usize) -> Run {
        Run::serving_with(n, Duration::ZERO)
    }

    pub fn serving_with(n: usize, settle: Duration) -> Run {
        let (mut run, actions) = Run::start_with(n, settle);
        for id in spawned(&actions) {
            run.on(Event::Ready(id));
        }
        assert_eq!(run.sup.phase(), Phase::Serving);
        run
    }

    /// Feeds `event`; answers the `Load` actions it gives like the master (the
    /// generation's binary is named `v<generation>`); returns every action.
    pub fn on(&mut self, event: Event) -> Vec<Action> {
        let mut actions = self.sup.handle(event, self.now);
        let mut i = 0;
        while i < actions.len() {
            match actions[i] {
                Action::Load(generation) => {
                    self.loaded.push(generation);
                    let binary = format!("v{generation}");
                    let more = self
                        .sup
                        .handle(Event::Loaded { generation, binary }, self.now);
                    actions.extend(more);
                }
                Action::Unload(generation) => self.unloaded.push(generation),
                _ => {}
            }
            i += 1;
        }
        if self.sup.phase() != Phase::Starting && self.sup.phase() != Phase::Stopping {
            self.min_ready_while_serving = self.min_ready_while_serving.min(self.sup.ready_count());
        }
        actions
    }

    pub fn later(&mut self, by: Duration) {
        self.now += by;
    }
}

pub(super) fn spawned(actions: &[Action]) -> Vec<WorkerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

pub(super) fn drained(actions: &[Action]) -> Vec<WorkerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Drain(id) => Some(*id),
            _ => None,
        })
        .collect()
}

pub(super) fn logged(actions: &[Action], needle: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Log(text) if text.contains(needle)))
}

pub(super) fn exited(id: WorkerId) -> Event {
    Event::Exited {
        id,
        clean: true,
        sigkill: false,
    }
}

#[test]
fn starts_n_workers_and_serves_once_all_are_ready() {
    let (mut run, actions) = Run::start(3);
    assert_eq!(spawned(&actions), vec![1, 2, 3]);
    run.on(Event::Ready(1));
    run.on(Event::Ready(2));
    assert_eq!(run.sup.phase(), Phase::Starting);
    let actions = run.on(Event::Ready(3));
    assert_eq!(run.sup.phase(), Phase::Serving);
    assert!(logged(&actions, "all 3 workers ready"), "{actions:?}");
}

#[test]
fn rollout_replaces_one_worker_at_a_time_keeping_capacity() {
    let mut run = Run::serving(2);
    let a = run.on(Event::Restart);
    assert_eq!(run.sup.phase(), Phase::RollingOut { pending: false });
    assert_eq!(spawned(&a), vec![3], "replacement of #1 first: {a:?}");
    assert!(
        drained(&a).is_empty(),
        "no drain before the replacement is ready"
    );
    let a = run.on(Event::Ready(3));
    assert_eq!(drained(&a), vec![1]);
    assert!(
        spawned(&a).is_empty(),
        "next replacement waits for #1 to exit"
    );
    let a = run.on(exited(1));
    assert_eq!(spawned(&a), vec![4], "{a:?}");
    let a = run.on(Event::Ready(4));
    assert_eq!(drained(&a), vec![2]);
    run.later(Duration::from_millis(250));
    let a = run.on(exited(2));
    assert!(logged(&a, "rollout finished in 250 ms: 2 of 2"), "{a:?}");
    assert!(
        spawned(&a).is_empty(),
        "drained workers are never respawned: {a:?}"
    );
    assert_eq!(run.sup.phase(), Phase::Serving);
    assert_eq!((run.sup.ready_count(), run.sup.worker_count()), (2, 2));
    assert_eq!(run.min_ready_while_serving, 2, "ready workers fell below 2");
}

#[test]
fn restarts_during_a_rollout_coalesce_into_one_more_pass() {
    let mut run = Run::serving(1);
    run.on(Event::Restart); // spawns #2
    run.on(Event::Restart);
    run.on(Event::Restart);
    assert_eq!(run.sup.phase(), Phase::RollingOut { pending: true });
    run.on(Event::Ready(2));
    let a = run.on(exited(1));
    assert!(logged(&a, "rollout finished"), "{a:?}");
    assert!(logged(&a, "queued"), "{a:?}");
    assert_eq!(spawned(&a), vec![3], "exactly one more pass: {a:?}");
    assert_eq!(run.sup.phase(), Phase::RollingOut { pending: false });
    run.on(Event::Ready(3));
    let a = run.on(exited(2));
    assert!(logged(&a, "rollout finished"));
    assert_eq!(run.sup.phase(), Phase::Serving, "no third pass");
}

#[test]
fn a_replacement_that_dies_before_ready_aborts_the_rollout() {
    let mut run = Run::serving(2);
    run.on(Event::Restart); // #3 replaces #1
    let a = run.on(Event::Exited {
        id: 3,
        clean: false,
        sigkill: false,
    });
    assert!(logged(&a, "rollout aborted"), "{a:?}");
    assert!(spawned(&a).is_empty() && drained(&a).is_empty(), "{a:?}");
    assert_eq!(run.sup.phase(), Phase::Serving);
    assert_eq!(run.sup.ready_count(), 2, "old workers keep serving");
}

#[test]
fn a_replacement_not_ready_in_time_is_killed_and_aborts() {
    let mut run = Run::serving(2);
    run.on(Event::Restart); // #3
    let a = run.on(Event::BootTimedOut(3));
    assert!(a.contains(&Action::Kill(3)), "{a:?}");
    let a = run.on(Event::Exited {
        id: 3,
        clean: false,
        sigkill: false,
    });
    assert!(logged(&a, "rollout aborted"), "{a:?}");
    assert!(spawned(&a).is_empty());
    // A late boot timer for a worker that did become ready does nothing.
    run.on(Event::Restart); // #4
    run.on(Event::Ready(4));
    assert!(run.on(Event::BootTimedOut(4)).is_empty());
}

#[test]
fn a_worker_stuck_draining_is_killed_at_the_drain_timeout() {
    let mut run = Run::serving(1);
    run.on(Event::Restart); // #2
    run.on(Event::Ready(2)); // drains #1
    let a = run.on(Event::DrainTimedOut(1));
    assert!(a.contains(&Action::Kill(1)), "{a:?}");
    let a = run.on(Event::Exited {
        id: 1,
        clean: false,
        sigkill: false,
    });
    assert!(logged(&a, "rollout finished"), "{a:?}");
    assert!(
        spawned(&a).is_empty(),
        "a killed drained worker is not respawned"
    );
    assert!(
        run.on(Event::DrainTimedOut(2)).is_empty(),
        "#2 is not draining"
    );
}

#[test]
fn a_crashed_worker_is_replaced_at_once() {
    let mut run = Run::serving(2);
    run.later(Duration::from_secs(5));
    let a = run.on(Event::Exited {
        id: 1,
        clean: false,
        sigkill: false,
    });
    assert_eq!(spawned(&a), vec![3], "{a:?}");
    run.later(Duration::from_millis(40));
    let a = run.on(Event::Ready(3));
    assert!(logged(&a, "ready 40 ms after the crash"), "{a:?}");
}

#[test]
fn a_crash_loop_backs_off_exponentially() {
    let mut run = Run::serving(1);
    run.later(Duration::from_secs(5));
    let a = run.on(Event::Exited {
        id: 1,
        clean: false,
        sigkill: false,
    });
    let mut id = spawned(&a)[0];
    let mut delays = Vec::new();
    for _ in 0..10 {
        // Dies 10 ms after start, before it is ready.
        run.later(Duration::from_millis(10));
        let a = run.on(Event::Exited {
            id,
            clean: false,
            sigkill: false,
        });
        assert!(
            spawned(&a).is_empty(),
            "no immediate respawn in a crash loop: {a:?}"
        );
        let delay = a
            .iter()
            .find_map(|x| match x {
                Action::RespawnAfter(d) => Some(*d),
                _ => None,
            })
            .expect("a scheduled respawn");
        delays.push(delay.as_millis());
        run.later(delay);
        let a = run.on(Event::RespawnDue);
        id = spawned(&a)[0];
    }
    assert_eq!(
        delays,
        vec![100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]
    );
    // A worker that then stays up resets the streak.
    run.on(Event::Ready(id));
    run.later(Duration::from_secs(2));
    let a = run.on(Event::Exited {
        id,
        clean: false,
        sigkill: false,
    });
    assert_eq!(spawned(&a).len(), 1, "{a:?}");
}

#[test]
fn an_old_worker_dying_while_its_replacement_boots_is_not_doubled() {
    let mut run = Run::serving(2);
    run.on(Event::Restart); // #3 replaces #1
    run.later(Duration::from_secs(5));
    let a = run.on(Event::Exited {
        id: 1,
        clean: false,
        sigkill: false,
    });
    assert!(
        spawned(&a).is_empty(),
        "its replacement is already booting: {a:?}"
    );
    let a = run.on(Event::Ready(3));
    assert_eq!(spawned(&a), vec![4], "next step: replace #2: {a:?}");
    run.on(Event::Ready(4));
    let a = run.on(exited(2));
    assert!(logged(&a, "rollout finished"), "{a:?}");
    assert_eq!(run.sup.worker_count(), 2);
}

#[test]
fn stop_drains_everyone_then_exits_0() {
    let mut run = Run::serving(2);
    run.on(Event::Restart); // #3 booting
    let a = run.on(Event::Stop);
    let mut d = drained(&a);
    d.sort_unstable();
    assert_eq!(d, vec![1, 2, 3]);
    assert_eq!(run.sup.phase(), Phase::Stopping);
    assert!(
        run.on(Event::Restart).is_empty(),
        "no restart while stopping"
    );
    run.on(exited(1));
    let a = run.on(Event::Exited {
        id: 3,
        clean: false,
        sigkill: false,
    });
    assert!(spawned(&a).is_empty(), "nothing respawned while stopping");
    let a = run.on(exited(2));
    assert!(a.contains(&Action::Exit(0)), "{a:?}");
}

#[test]
fn backoff_doubles_from_100ms_to_10s() {
    assert_eq!(backoff(1), Duration::from_millis(100));
    assert_eq!(backoff(2), Duration::from_millis(200));
    assert_eq!(backoff(8), Duration::from_secs(10));
    assert_eq!(backoff(60), Duration::from_secs(10));
}
