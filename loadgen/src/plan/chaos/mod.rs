//! Chaos as planned: `spec` turns a scenario's `[[chaos]]` entries into validated
//! [`ChaosRule`]s, `timetable` turns the rules into the actions of one mode at their
//! instants (deterministic for a seed). Carrying the timetable out against a server
//! is `observe::chaos`'s job.

mod spec;
mod timetable;

pub use spec::rule_from;
pub use timetable::{
    ActionKind, ChaosRule, DeployBy, DeployCommand, PlannedAction, Release, When, plan,
};
