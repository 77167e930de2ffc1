//! Helpers that both Stampede binaries (`shop-server` and `loadgen`) need, kept in
//! one place so the two never drift apart: [`duration`] parses human durations
//! (`250ms`, `30s`, `1.5s`) with an error a user can act on, and [`time`] turns a
//! `SystemTime` into UTC calendar fields and the timestamps written in logs and
//! folder names. Nothing here does I/O or knows about HTTP, scenarios or workers.

pub mod duration;
pub mod time;
