//! Stage one of a run: the scenario file compiled, once, into a typed [`RunPlan`]
//! before any load is sent. `scenario` owns the TOML schema and locating keys for
//! `file:line: key` errors; `build` is the checker that turns a parsed scenario into
//! the plan's parts; `arrivals` owns the arrival schedule, `journey` the request
//! templates, `chaos` the chaos rules and timetables, `threshold` the CI gate's rules.
//! Everything after this stage (runner, engine, chaos, gate, shard processes) reads
//! the plan and never the scenario: nothing is parsed twice, and nothing that fails to
//! parse is dropped on the way.

mod build;
mod describe;
mod target;

pub(crate) mod arrivals;
pub(crate) mod chaos;
pub(crate) mod journey;
pub(crate) mod request_parts;
pub(crate) mod scenario;
pub(crate) mod threshold;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::observe::watcher::WorkerSet;
use crate::verdict::invariants::AuditPaths;
use chaos::{ChaosRule, PlannedAction};
use journey::Journey;
use scenario::{Scenario, ScenarioError};
use threshold::Threshold;

/// A semantic problem found while building the plan: (key path, message).
pub type Problem = (String, String);

/// What the command line adds to the scenario.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Runtime threads that run users in every loadgen process (`--threads`);
    /// `None`: one per CPU.
    pub threads: Option<usize>,
    /// Only these modes, in this order (`--mode`); empty: every mode of the scenario.
    pub modes: Vec<String>,
    /// Only this execution segment's users (`loadgen run --shard I/N`); `None`: all.
    pub segment: Option<crate::segment::Segment>,
}

/// One `loadgen run`, compiled from the scenario file and the command line.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub name: String,
    /// The scenario file, as given.
    pub path: PathBuf,
    /// Its text, copied into the run folder.
    pub source: String,
    pub seed: u64,
    pub target: TargetPlan,
    /// The modes to run, in order.
    pub modes: Vec<ModePlan>,
    pub load: LoadPlan,
    pub journey: Journey,
    pub chaos: Vec<ChaosRule>,
    /// Every threshold of the file, in its order.
    pub thresholds: Vec<Threshold>,
    /// Where the shop's audit view is; `None`: no invariant checks.
    pub invariants: Option<AuditPaths>,
    /// How relative thresholds find their baseline (`[baseline]`).
    pub baseline: BaselinePlan,
}

/// `[baseline]` checked: the median of the last `runs` passing runs, on `branch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselinePlan {
    pub runs: usize,
    pub branch: Option<String>,
    pub required: bool,
}

impl RunPlan {
    /// Whether any threshold is relative to a baseline.
    pub fn has_relative_thresholds(&self) -> bool {
        self.thresholds.iter().any(|t| t.baseline.is_some())
    }
}

/// How every mode's server is probed and stopped.
#[derive(Debug, Clone)]
pub struct TargetPlan {
    pub ready_path: String,
    pub ready_timeout: Duration,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
}

/// One server mode.
#[derive(Debug, Clone)]
pub struct ModePlan {
    pub name: String,
    pub launch: Launch,
    pub deploy_strategy: String,
    /// Which processes chaos kills and pauses.
    pub workers: WorkerSet,
    /// Play the naive supervisor (only for a server loadgen starts).
    pub supervise: bool,
    pub restart_delay: Duration,
    /// The release the mode starts with (its `{start}` link and `{version_file}`).
    pub release: chaos::Release,
}

/// Where a mode's server comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// A command loadgen starts: argv with `{port}`, `{db}`, `{bin_dir}` placeholders,
    /// served on `host` (an IP address).
    Command { argv: Vec<String>, host: String },
    /// A server someone else started, with the file that holds its master's PID.
    External {
        url: String,
        pidfile: Option<PathBuf>,
    },
}

/// How users arrive and behave.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub users: u64,
    /// Start offset of every user from the mode's start, in user order (computed once;
    /// a shard process computes the same one and takes its users from it).
    pub schedule: Vec<Duration>,
    pub timeout: Duration,
    pub max_duration: Duration,
    pub retry_count: u32,
    pub retry_backoff: Duration,
    pub users_per_process: u64,
    pub source_addresses: u8,
    /// Runtime threads that run users in each loadgen process.
    pub threads: usize,
    /// A request written later than this after it was due is the generator's lateness.
    pub late_after: Duration,
    /// The share of requests that may be late before the run fails as generator-bound.
    pub late_budget: f64,
    /// The execution segment whose users this plan runs (`users` counts them only).
    pub segment: crate::segment::Segment,
}

impl LoadPlan {
    /// When the last user is due to arrive.
    pub fn last_arrival(&self) -> Duration {
        self.schedule.last().copied().unwrap_or_default()
    }

    /// Loadgen processes the users are split over (one connection per user).
    pub fn processes(&self) -> u32 {
        self.users.div_ceil(self.users_per_process) as u32
    }
}

impl RunPlan {
    /// Reads the scenario at `path` and compiles the plan. Errors name the file, the
    /// line and the key.
    pub fn load(path: &Path, opts: &PlanOptions) -> Result<RunPlan, ScenarioError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        let mut plan = Self::from_source(&file, &source, opts)?;
        plan.path = path.to_path_buf();
        Ok(plan)
    }

    /// Compiles scenario text; `file` names it in errors.
    pub fn from_source(
        file: &str,
        source: &str,
        opts: &PlanOptions,
    ) -> Result<RunPlan, ScenarioError> {
        let scenario = Scenario::parse(file, source)?;
        let located = |(key, message): Problem| ScenarioError::Invalid {
            file: file.to_string(),
            line: scenario::locate::line_of_key(source, &key),
            key,
            message,
        };
        let mut plan = build::build(scenario, source, opts.threads).map_err(located)?;
        plan.path = PathBuf::from(file);
        if let Some(segment) = opts.segment {
            plan.load.users = segment.users_of(plan.load.users);
            plan.load.segment = segment;
        }
        if let Some(ca) = plan.journey.ca_file.take() {
            let ca = build::resolve_file(file, "request.ca_file", &ca).map_err(located)?;
            crate::engine::tls::read_ca_file(&ca)
                .map_err(|m| located(("request.ca_file".into(), m)))?;
            plan.journey.ca_file = Some(ca);
        }
        if !opts.modes.is_empty() {
            let mut chosen = Vec::with_capacity(opts.modes.len());
            for name in &opts.modes {
                let mode = plan.modes.iter().find(|m| &m.name == name).ok_or_else(|| {
                    ScenarioError::UnknownMode {
                        name: name.clone(),
                        known: plan.modes.iter().map(|m| m.name.clone()).collect(),
                    }
                })?;
                chosen.push(mode.clone());
            }
            plan.modes = chosen;
        }
        Ok(plan)
    }

    /// The chaos timetable of `mode`: the same for every run of this plan, since
    /// random times come from its seed.
    pub fn timetable(&self, mode: &str) -> Vec<PlannedAction> {
        chaos::plan(&self.chaos, self.seed, mode, self.load_length())
    }

    /// How long the load is expected to last (see `build::load_length`).
    pub fn load_length(&self) -> Duration {
        build::load_length(&self.load, &self.journey)
    }
}
