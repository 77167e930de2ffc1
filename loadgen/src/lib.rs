//! loadgen: the Stampede load and chaos harness. `cli` is the command line (the
//! binary only calls it); the folders follow the stages of a run:
//! `plan` (scenario, arrivals, journey, chaos rules, thresholds) -> `engine` (users,
//! connections, recorders, snapshots merged into a timeline, shard processes) ->
//! `observe` (the server's processes watched, chaos carried out, events logged) ->
//! `verdict` (invariant checks, the CI gate) -> `runfolder` (the CSV files) ->
//! `report` (charts and pages from those files alone). `run` drives the modes of one
//! `loadgen run` against the server under test (`sut`); `outcome` names the result
//! classes every stage counts in; `limits` measures and raises process limits.
//! The regression gate's memory: `history` (SQLite runs, baselines), `publish`
//! (summary.json, JUnit, GitHub step summary after a run), `compare` (two runs side by
//! side), `live` (OpenMetrics while a run goes).

//! Only what is used from outside is public: the command line, the plan (tests build
//! it), the run folder's row types (the synthetic report example writes them) and the
//! report renderer, with the outcome classes and counters those rows carry.

pub mod cli;
pub(crate) mod compare;
pub(crate) mod engine;
pub(crate) mod history;
pub(crate) mod limits;
pub(crate) mod live;
pub mod merge;
pub(crate) mod observe;
pub mod outcome;
pub mod plan;
pub(crate) mod publish;
pub mod report;
pub(crate) mod run;
pub mod runfolder;
pub mod segment;
pub(crate) mod sut;
pub(crate) mod verdict;
