//! Stage one of a run: the scenario file and everything compiled from it before any
//! load is sent. `scenario` owns the TOML schema and its `file:line: key` errors,
//! `arrivals` the arrival schedule, `journey` the request templates, `chaos` the
//! chaos rules and timetables, `threshold` the CI gate's rules.

pub mod arrivals;
pub mod chaos;
pub mod journey;
pub mod scenario;
pub mod threshold;
