//! Chaos: what the harness does to the server while the load runs. `spec` validates
//! the scenario's `[[chaos]]` entries; `plan` turns the rules into a timetable per mode
//! (deterministic for a seed); `run` carries it out against a [`ServerControl`]
//! (signals to the master or to a random worker, pauses, and the naive supervisor's
//! restarts in single mode) and logs every action. Watching which workers live is
//! `watcher`'s job, reading `/proc` is `procs`'.

mod plan;
mod run;
mod spec;

pub use plan::{ActionKind, ChaosRule, PlannedAction, When, plan};
pub use run::{ChaosRun, ServerControl};
pub use spec::{rule_from, rules_of};

/// Why chaos could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("waiting for the server process {pid} to exit failed: {reason}")]
    Wait { pid: i32, reason: String },
    #[error("restarting the server failed: {reason}")]
    Restart { reason: String },
}

#[cfg(test)]
mod tests;
