//! The scenario file: what to start, how users arrive, the journey they walk, the
//! chaos seam and the thresholds. Owns the TOML schema (serde, unknown keys denied),
//! its defaults, and the error type that names the file, line and key (`locate` finds
//! them in the source). Semantic checks and compiling the parts are the plan
//! builder's (`plan::build`); nothing else reads this schema.

pub mod duration;
pub mod locate;
pub mod request;

pub use duration::{Dur, ThinkRange};
pub use request::RequestSettings;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    pub target: Target,
    pub load: Load,
    #[serde(default)]
    pub journey: Vec<Step>,
    /// Headers every request carries, and the per-user cookie jar.
    #[serde(default)]
    pub request: RequestSettings,
    /// CI-gate thresholds, as written.
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// What the harness does to the server mid-run.
    #[serde(default)]
    pub chaos: Vec<Chaos>,
    /// Where the shop's audit view and lookups are; absent: no invariant checks.
    pub invariants: Option<Invariants>,
    /// How thresholds relative to a baseline find it (`[baseline]`).
    #[serde(default)]
    pub baseline: BaselineKeys,
}

/// `[baseline]`: which earlier runs thresholds like `p99 < baseline * 1.25` compare
/// with. The command line's `--baseline-runs` and `--baseline-branch` win.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineKeys {
    /// The median of the last `runs` passing runs (default 1: the last one).
    pub runs: Option<u32>,
    /// Only runs made on this git branch.
    pub branch: Option<String>,
    /// A relative threshold with no baseline fails instead of reading "no baseline".
    #[serde(default)]
    pub required: bool,
}

/// One `[[chaos]]` rule: an action at fixed times, or at a random rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chaos {
    /// `deploy`, `kill` or `pause`.
    pub action: String,
    /// One time or a list of times after the mode's start.
    pub at: Option<OneOrMany>,
    /// Random times instead: this many a minute on average (Poisson, seeded).
    pub rate_per_min: Option<f64>,
    /// Or exactly this many times, at random (seeded) instants between `from` and
    /// `until`.
    pub count: Option<u32>,
    pub from: Option<Dur>,
    pub until: Option<Dur>,
    /// Deploy: default SIGTERM; kill: default SIGKILL.
    pub signal: Option<String>,
    /// Pause: how long the worker stays stopped.
    pub duration: Option<Dur>,
    /// The modes it applies to; default every mode.
    #[serde(default)]
    pub modes: Vec<String>,
    /// An action that cannot be applied (no victim, a stale pidfile) is logged and
    /// fails the run, unless the rule is optional.
    #[serde(default)]
    pub optional: bool,
    /// Deploy only: the version written to the mode's `{version_file}` before the
    /// signal.
    pub version: Option<String>,
    /// Deploy only: what the mode's `{start}` symlink points at from then on
    /// (`{bin_dir}` allowed), e.g. a new build or a broken one.
    pub start_link: Option<String>,
    /// Deploy only: run this command (argv, no shell) instead of sending a signal,
    /// e.g. `["pm2", "reload", "all"]`; its start and end are the deploy's window.
    pub command: Option<Vec<String>>,
    /// Deploy by command only: how long the command may run before it is killed
    /// (default 60s); overrunning fails the action.
    pub timeout: Option<Dur>,
}

/// `at = "20s"` or `at = ["10s", "30s"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(Dur),
    Many(Vec<Dur>),
}

impl OneOrMany {
    pub fn times(&self) -> Vec<std::time::Duration> {
        match self {
            OneOrMany::One(d) => vec![d.0],
            OneOrMany::Many(v) => v.iter().map(|d| d.0).collect(),
        }
    }
}

/// `[invariants]`: paths on the target, `{order_id}`, `{cart_id}` and `{after}` filled in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invariants {
    pub audit: String,
    pub order: String,
    pub cart: String,
    /// The order listing, with `{after}` (the cursor of the page to read).
    pub orders: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Path polled until it answers 2xx before load starts.
    #[serde(default = "default_ready_path")]
    pub ready_path: String,
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: Dur,
    /// Signal that stops a started server gracefully (SIGINT, SIGTERM, SIGQUIT).
    #[serde(default = "default_stop_signal")]
    pub stop_signal: String,
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: Dur,
    pub modes: Vec<Mode>,
}

/// One server mode: either a command loadgen starts, or an external URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mode {
    pub name: String,
    /// argv with `{port}`, `{db}`, `{bin_dir}` placeholders.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_host")]
    pub host: String,
    /// External target, e.g. "http://127.0.0.1:3000".
    pub url: Option<String>,
    pub pidfile: Option<String>,
    #[serde(default)]
    pub deploy_strategy: String,
    /// Which processes serve: `children` of the started process (a master), the
    /// process `itself` (single), or `{ children = true, cmdline = "app.js" }` (only
    /// the children whose command line contains it). Chaos kills and pauses these.
    #[serde(default)]
    pub workers: Workers,
    /// What the `{start}` placeholder (a symlink loadgen makes) points at when the
    /// mode starts; a deploy may point it elsewhere. `{bin_dir}` allowed.
    pub start_link: Option<String>,
    /// The first line of the `{version_file}` placeholder's file when the mode starts;
    /// a deploy may write another.
    pub version: Option<String>,
    /// Play the naive supervisor: when the process exits after a deploy or a kill,
    /// start it again (same port and database) after `restart_delay`.
    #[serde(default)]
    pub supervise: bool,
    #[serde(default)]
    pub restart_delay: Dur,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerSetName {
    #[default]
    Children,
    Itself,
}

/// `workers = "children"`, `"itself"`, or a filter on the master's children.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Workers {
    Named(WorkerSetName),
    Filter(WorkerFilter),
}

impl Default for Workers {
    fn default() -> Self {
        Workers::Named(WorkerSetName::Children)
    }
}

/// `workers = { children = true, cmdline = "app.js" }`: the children of the master
/// whose command line (`/proc/PID/cmdline`, arguments joined by spaces) contains
/// `cmdline`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerFilter {
    pub children: bool,
    pub cmdline: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub users: u64,
    pub arrival: Arrival,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Hard cap on one mode's load; users still walking then are stopped.
    #[serde(default = "default_max_duration")]
    pub max_duration: Dur,
    #[serde(default)]
    pub retry: Retry,
    /// Users one loadgen process holds at most (one connection each).
    #[serde(default = "default_users_per_process")]
    pub users_per_process: u64,
    /// 127.0.0.x source addresses to spread loopback connections over.
    #[serde(default = "default_source_addresses")]
    pub source_addresses: u8,
    /// A request loadgen writes later than this after it was due is late: the
    /// generator, not the server, set its pace.
    #[serde(default = "default_late_after")]
    pub late_after: Dur,
    /// The share of requests (0..1) that may be late before the run fails as
    /// generator-bound.
    #[serde(default = "default_late_budget")]
    pub late_budget: f64,
}

/// The arrival profile: either the spike shorthand or explicit stages.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// Users per second during the quiet baseline before the spike.
    pub baseline_rate: Option<f64>,
    pub baseline: Option<Dur>,
    /// Ramp from the baseline rate to the peak.
    pub ramp: Option<Dur>,
    pub peak_rate: Option<f64>,
    #[serde(default)]
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration: Dur,
    /// Users per second at the start of the stage.
    pub rate: f64,
    /// Users per second at the end (linear ramp); defaults to `rate`.
    pub to: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default)]
    pub count: u32,
    #[serde(default = "default_backoff")]
    pub backoff: Dur,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            count: 0,
            backoff: default_backoff(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    /// The body's `Content-Type` (default `application/json`).
    pub content_type: Option<String>,
    /// A form body instead: field -> value template, sent URL-encoded as
    /// `application/x-www-form-urlencoded`.
    pub form: Option<toml::Table>,
    /// Header name -> value template for this step (over `[request].headers`).
    #[serde(default)]
    pub headers: toml::Table,
    /// Statuses that count as `ok` beyond 2xx (e.g. 409 out of stock); when given,
    /// a user continues only on one of these.
    #[serde(default)]
    pub expect: Vec<u16>,
    /// Variable name -> top-level (or dotted) field of the JSON response.
    #[serde(default)]
    pub capture: toml::Table,
    #[serde(default)]
    pub think: ThinkRange,
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Send a per-user, per-step unique `Idempotency-Key` (makes a POST retryable).
    #[serde(default)]
    pub idempotency_key: bool,
    /// `order` or `cart`: remember this step's first captured value (and, for an
    /// order, its idempotency key) for the invariant checks after the run.
    pub records: Option<String>,
}

/// A threshold as written: `"cluster.dropped == 0"` or
/// `{ check = "...", abort_on_fail = true }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Threshold {
    Plain(String),
    Full {
        check: String,
        /// Stop the run as soon as the threshold is breached.
        #[serde(default)]
        abort_on_fail: bool,
    },
}

fn default_ready_path() -> String {
    "/healthz".into()
}
fn default_ready_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(30))
}
fn default_stop_signal() -> String {
    "SIGINT".into()
}
fn default_stop_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(30))
}
fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(10))
}
fn default_max_duration() -> Dur {
    Dur(std::time::Duration::from_secs(600))
}
fn default_users_per_process() -> u64 {
    15_000
}
fn default_source_addresses() -> u8 {
    16
}
fn default_late_after() -> Dur {
    Dur(std::time::Duration::from_millis(50))
}
fn default_late_budget() -> f64 {
    0.01
}
fn default_backoff() -> Dur {
    Dur(std::time::Duration::from_millis(100))
}
fn default_method() -> String {
    "GET".into()
}
fn default_repeat() -> u32 {
    1
}

/// A scenario error that names the file, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: key `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("--mode {name}: the scenario has modes {known:?}")]
    UnknownMode { name: String, known: Vec<String> },
}

impl Scenario {
    /// Parses scenario text against the schema; `file` is only used in errors.
    pub fn parse(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(source).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, key) = locate::key_at(source, offset);
            ScenarioError::Invalid {
                file: file.to_string(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })
    }
}

impl Threshold {
    pub fn check(&self) -> &str {
        match self {
            Threshold::Plain(s) => s,
            Threshold::Full { check, .. } => check,
        }
    }

    pub fn abort(&self) -> bool {
        matches!(
            self,
            Threshold::Full {
                abort_on_fail: true,
                ..
            }
        )
    }
}
