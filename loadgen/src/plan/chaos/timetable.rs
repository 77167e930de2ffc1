//! Turns a scenario's chaos rules into a concrete timetable for one mode: every action
//! with the instant it fires, ordered. Rules with a rate (kills per minute) draw their
//! times from a Poisson process seeded by the scenario's seed, so the same seed always
//! yields the same timetable; which worker a kill hits is drawn at execution time from a
//! second seeded stream (see `run`).

use std::time::Duration;

use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// Signal the master (or the single process), or run a command: a deploy, of a
    /// new release when the rule names one.
    Deploy { by: DeployBy, release: Release },
    /// Signal a random worker (or the single process): a crash.
    Kill { signal: Signal },
    /// SIGSTOP a random worker, SIGCONT it after `duration`: a stalled process.
    Pause { duration: Duration },
}

impl ActionKind {
    /// What `loadgen validate` shows of the action: its name, and for a deploy by
    /// command the command and its time limit.
    pub fn label(&self) -> String {
        match self {
            ActionKind::Deploy {
                by: DeployBy::Command(c),
                ..
            } => format!(
                "deploy by `{}` (at most {}s)",
                c.argv.join(" "),
                c.timeout.as_secs_f64()
            ),
            other => other.name().to_string(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Deploy { .. } => "deploy",
            ActionKind::Kill { .. } => "kill",
            ActionKind::Pause { .. } => "pause",
        }
    }
}

/// How a deploy reaches the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployBy {
    /// A signal to the master (or the single process).
    Signal(Signal),
    /// A command the harness runs (`pm2 reload all`, `kubectl rollout restart ...`).
    Command(DeployCommand),
}

/// A deploy command: argv (no shell) and how long it may run before it is killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployCommand {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// What a deploy changes before it signals a server loadgen started: the version file
/// the server reads at start (`{version_file}`), and what the start path (`{start}`, a
/// symlink) points at. Both empty: a restart of the same code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub version: Option<String>,
    /// The new target of the start symlink, `{bin_dir}` filled in at run time.
    pub start_link: Option<String>,
}

impl Release {
    pub fn is_empty(&self) -> bool {
        self.version.is_none() && self.start_link.is_none()
    }
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// At these times after the mode's start.
    At(Vec<Duration>),
    /// Randomly, `per_minute` times a minute on average, between `from` and `until`
    /// (the end of the load when `until` is `None`).
    Rate {
        per_minute: f64,
        from: Duration,
        until: Option<Duration>,
    },
    /// Exactly `count` times, at uniformly random instants between `from` and `until`.
    Count {
        count: u32,
        from: Duration,
        until: Duration,
    },
}

/// One `[[chaos]]` entry of a scenario, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosRule {
    pub kind: ActionKind,
    pub when: When,
    /// The modes the rule applies to; empty means every mode.
    pub modes: Vec<String>,
    /// When it cannot be applied, log it and go on instead of failing the run.
    pub optional: bool,
}

/// One action of the timetable.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAction {
    pub at: Duration,
    pub kind: ActionKind,
    pub optional: bool,
}

/// Builds the timetable of `mode` for a load that lasts `length`. A random time drawn
/// after the load ends is not an action (the harness would not be there to measure
/// it); a fixed time after it is refused when the plan is built.
pub fn plan(rules: &[ChaosRule], seed: u64, mode: &str, length: Duration) -> Vec<PlannedAction> {
    let mut actions = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        if !rule.modes.is_empty() && !rule.modes.iter().any(|m| m == mode) {
            continue;
        }
        let times = match &rule.when {
            When::At(times) => times.clone(),
            When::Rate {
                per_minute,
                from,
                until,
            } => {
                let end = until.unwrap_or(length).min(length);
                poisson_times(stream_seed(seed, index), *per_minute, *from, end)
            }
            When::Count { count, from, until } => {
                let mut rng = StdRng::seed_from_u64(stream_seed(seed, index));
                let span = until.saturating_sub(*from).as_secs_f64();
                let mut times: Vec<Duration> = (0..*count)
                    .map(|_| *from + Duration::from_secs_f64(span * rng.random::<f64>()))
                    .collect();
                times.sort();
                times
            }
        };
        actions.extend(
            times
                .into_iter()
                .filter(|at| *at <= length)
                .map(|at| PlannedAction {
                    at,
                    kind: rule.kind.clone(),
                    optional: rule.optional,
                }),
        );
    }
    actions.sort_by_key(|a| a.at);
    actions
}

/// Each rule draws from its own stream, so adding a rule leaves the others' times.
fn stream_seed(seed: u64, rule: usize) -> u64 {
    seed ^ (rule as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Event times of a Poisson process of `per_minute` events a minute in `[from, until)`.
fn poisson_times(seed: u64, per_minute: f64, from: Duration, until: Duration) -> Vec<Duration> {
    let mut times = Vec::new();
    if per_minute <= 0.0 || !per_minute.is_finite() || from >= until {
        return times;
    }
    let per_second = per_minute / 60.0;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = from.as_secs_f64();
    loop {
        // Inverse transform of the exponential distribution; 1 - u is in (0, 1].
        let u: f64 = rng.random();
        t += -(1.0 - u).ln() / per_second;
        if t >= until.as_secs_f64() {
            return times;
        }
        times.push(Duration::from_secs_f64(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate_rule(per_minute: f64) -> ChaosRule {
        ChaosRule {
            kind: ActionKind::Kill {
                signal: Signal::SIGKILL,
            },
            when: When::Rate {
                per_minute,
                from: Duration::from_secs(5),
                until: None,
            },
            modes: Vec::new(),
            optional: false,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_timetable_and_another_seed_another() {
        let rules = [rate_rule(30.0)];
        let length = Duration::from_secs(120);
        let first = plan(&rules, 42, "cluster", length);
        let again = plan(&rules, 42, "cluster", length);
        let other = plan(&rules, 43, "cluster", length);
        assert_eq!(first, again);
        assert_ne!(first, other);
        // 30 a minute over 115 s: about 57; a Poisson count is rarely off by half.
        assert!((28..=90).contains(&first.len()), "{} kills", first.len());
        assert!(
            first
                .iter()
                .all(|a| a.at >= Duration::from_secs(5) && a.at < length)
        );
    }

    #[test]
    fn fixed_times_are_sorted_filtered_by_mode_and_cut_at_the_end() {
        let deploy = ChaosRule {
            kind: ActionKind::Deploy {
                by: DeployBy::Signal(Signal::SIGTERM),
                release: Release::default(),
            },
            when: When::At(vec![Duration::from_secs(20), Duration::from_secs(99)]),
            modes: vec!["cluster".into()],
            optional: false,
        };
        let pause = ChaosRule {
            kind: ActionKind::Pause {
                duration: Duration::from_secs(2),
            },
            when: When::At(vec![Duration::from_secs(10)]),
            modes: Vec::new(),
            optional: false,
        };
        let rules = [deploy, pause];
        let cluster = plan(&rules, 1, "cluster", Duration::from_secs(60));
        let at: Vec<u64> = cluster.iter().map(|a| a.at.as_secs()).collect();
        assert_eq!(at, vec![10, 20]);
        let single = plan(&rules, 1, "single", Duration::from_secs(60));
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].kind.name(), "pause");
    }

    #[test]
    fn a_count_gives_exactly_that_many_seeded_times_in_the_window() {
        let rule = ChaosRule {
            kind: ActionKind::Kill {
                signal: Signal::SIGKILL,
            },
            when: When::Count {
                count: 2,
                from: Duration::from_secs(8),
                until: Duration::from_secs(20),
            },
            modes: Vec::new(),
            optional: false,
        };
        let rules = [rule];
        let first = plan(&rules, 3, "cluster", Duration::from_secs(60));
        assert_eq!(first, plan(&rules, 3, "cluster", Duration::from_secs(60)));
        assert_eq!(first.len(), 2);
        let window = Duration::from_secs(8)..Duration::from_secs(20);
        assert!(first.iter().all(|a| window.contains(&a.at)), "{first:?}");
    }

    #[test]
    fn a_zero_rate_plans_nothing() {
        assert!(plan(&[rate_rule(0.0)], 7, "cluster", Duration::from_secs(60)).is_empty());
    }
}
