//! Stage three: what happens to the server while the load runs. `procs` reads
//! `/proc`, `watcher` samples which workers live and what they cost, `chaos` carries
//! out a mode's chaos timetable (signals, pauses, the naive supervisor's restarts),
//! and `events` is the time-stamped log both write to.

pub mod chaos;
pub mod events;
pub mod procs;
pub mod watcher;
