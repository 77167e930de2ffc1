//! loadgen: the Stampede load and chaos harness as a library; `main.rs` is a thin
//! CLI over it. The folders follow the stages of a run:
//! `plan` (scenario, arrivals, journey, chaos rules, thresholds) -> `engine` (users,
//! connections, recorders, snapshots merged into a timeline, shard processes) ->
//! `observe` (the server's processes watched, chaos carried out, events logged) ->
//! `verdict` (invariant checks, the CI gate) -> `runfolder` (the CSV files) ->
//! `report` (charts and pages from those files alone). `run` drives the modes of one
//! `loadgen run` against the server under test (`sut`); `outcome` names the result
//! classes every stage counts in; `limits` measures and raises process limits.

pub mod engine;
pub mod limits;
pub mod observe;
pub mod outcome;
pub mod plan;
pub mod report;
pub mod run;
pub mod runfolder;
pub mod sut;
pub mod verdict;
