//! loadgen: the Stampede load and chaos harness as a library; `main.rs` is a thin
//! CLI over it. Module map: `scenario` (TOML schema, validation) -> `arrivals`
//! (schedule) and `journey` (request templates) -> `engine` spawns `user` loops
//! that talk through `conn` and record `outcome`s into a `recorder`; once a second
//! the engine emits `snapshot`s that `timeline` merges (also from `shard` worker
//! processes); `runner` drives modes and `target` servers; `output` writes the run
//! folder; `progress` draws the live line; `limits` measures and raises process
//! limits. Around the load: `chaos` acts on the server and `watcher` (over `procs`)
//! observes it, both logging to `events`; `invariants` checks the shop after a mode
//! and `threshold` judges the run for the CI gate. `report` renders a run folder
//! into charts and pages from its CSV files alone.

pub mod arrivals;
pub mod chaos;
pub mod conn;
pub mod engine;
pub mod events;
pub mod gate;
pub mod invariants;
pub mod journey;
pub mod limits;
pub mod outcome;
pub mod output;
pub mod procs;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod snapshot;
pub mod target;
pub mod threshold;
pub mod timeline;
pub mod user;
pub mod watcher;
