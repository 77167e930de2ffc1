//! loadgen: the Stampede load and chaos harness as a library; `main.rs` is a thin
//! CLI over it. Module map: `scenario` (TOML schema, validation) -> `arrivals`
//! (schedule) and `journey` (request templates) -> `engine` spawns `user` loops
//! that talk through `conn` and record `outcome`s into a `recorder`; once a second
//! the engine emits `snapshot`s that `timeline` merges (also from `shard` worker
//! processes); `runner` drives modes and `target` servers; `output` writes the run
//! folder; `progress` draws the live line; `events` is the seam for chaos; `limits`
//! measures and raises process limits.

pub mod arrivals;
pub mod conn;
pub mod engine;
pub mod events;
pub mod journey;
pub mod limits;
pub mod outcome;
pub mod output;
pub mod progress;
pub mod recorder;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod snapshot;
pub mod target;
pub mod timeline;
pub mod user;
