//! loadgen: replays a scenario against a server and measures what survives.

pub mod chaos;
pub mod events;
pub mod invariants;
pub mod procs;
pub mod threshold;
pub mod watcher;
