//! The cluster master's WAL checkpointer: one thread, every [`CHECKPOINT_EVERY`], a
//! PASSIVE checkpoint through the master's [`Store`] (copies what it can, waits for
//! nobody), then, once the WAL is past [`WAL_RESTART_FRAMES`], a RESTART so the next
//! writer starts the WAL from its beginning (under constant load readers always hold
//! the WAL, so it never restarts by itself: PASSIVE alone let it grow to 1-2 GB in a
//! minute of writes). A RESTART holds the write lock while it waits for the readers
//! still using the WAL. With the store's 30 s busy handler, a worker SIGSTOPped inside
//! a read stalled every worker's writes for as long as it was stopped (measured by
//! `scripts/bench-rollout`: 20 of 20 two-second pauses; README, "The checkpoint
//! question"). So the RESTART runs on a connection of its own whose busy handler
//! gives up after [`RESTART_WAIT`]; one that gave up is tried again at the next tick,
//! and the WAL restarts at the first tick after the reader has moved on. The former
//! behaviour and PASSIVE-only stay selectable with the hidden `--wal-checkpoint`, to
//! measure against. SQL for the shop lives in `store`; only these two pragmas live
//! here.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::cli::WalCheckpoint;
use crate::log_event;
use crate::store::Store;

const ROLE: &str = "master";

/// How often the master checkpoints the workers' WAL.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL size (4 KiB pages) past which the checkpoint also restarts the WAL.
pub const WAL_RESTART_FRAMES: i64 = 4096;
/// How long a RESTART may wait (holding the write lock) for readers to leave the WAL.
/// A reader's statement takes well under a millisecond here; one that takes longer
/// is stuck (a stopped process), and writers must not wait for it.
pub const RESTART_WAIT: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("opening the checkpoint connection to {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("starting the checkpoint thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Starts the checkpoint thread; it lives as long as the master. A checkpoint does
/// I/O and fsyncs: never on the event loop.
pub fn spawn(store: Store, db: &Path, mode: WalCheckpoint) -> Result<(), CheckpointError> {
    let mut restart = Connection::open(db).map_err(|source| CheckpointError::Open {
        path: db.display().to_string(),
        source,
    })?;
    restart
        .busy_handler(Some(give_up_soon))
        .map_err(|source| CheckpointError::Open {
            path: db.display().to_string(),
            source,
        })?;
    std::thread::Builder::new()
        .name("checkpoint".to_owned())
        .spawn(move || run(&store, &restart, mode))?;
    Ok(())
}

fn run(store: &Store, restart: &Connection, mode: WalCheckpoint) {
    let mut failures = 0u64;
    let mut deferred = 0u64;
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let passed = match mode {
            WalCheckpoint::Waiting => store.checkpoint(WAL_RESTART_FRAMES).map(|_| ()),
            WalCheckpoint::Passive => store.checkpoint(i64::MAX).map(|_| ()),
            WalCheckpoint::Bounded => store.checkpoint(i64::MAX).map(|frames| {
                if frames > WAL_RESTART_FRAMES {
                    bounded_restart(restart, frames, &mut deferred);
                }
            }),
        };
        if let Err(error) = passed {
            failures += 1;
            // A busy database is normal; say so now and then, not 4 times a second.
            if failures.is_power_of_two() {
                log_event!(ROLE, "WAL checkpoint failed ({failures} so far): {error}");
            }
        }
    }
}

/// One RESTART that waits at most [`RESTART_WAIT`] for readers. While a reader is
/// stuck, each tick costs writers at most that; the WAL grows meanwhile and restarts
/// at the first tick after the reader has moved on. `deferred` counts the RESTARTs
/// that gave up in a row.
fn bounded_restart(conn: &Connection, frames: i64, deferred: &mut u64) {
    // Columns: busy (1 = could not finish), WAL frames, frames checkpointed.
    match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => {
            if *deferred > 0 {
                log_event!(
                    ROLE,
                    "WAL restarted after {deferred} deferrals ({frames} frames before)"
                );
            }
            *deferred = 0;
        }
        Ok(_) => {
            *deferred += 1;
            if deferred.is_power_of_two() {
                log_event!(
                    ROLE,
                    "WAL restart deferred {deferred} times in a row: a reader held the WAL for \
                     more than {} ms ({frames} frames); writers keep going",
                    RESTART_WAIT.as_millis()
                );
            }
        }
        Err(error) => log_event!(ROLE, "WAL restart failed: {error}"),
    }
}

/// Busy handler of the RESTART connection: polls every 100 us and gives up once
/// [`RESTART_WAIT`] has passed, so a stuck reader costs writers at most that.
fn give_up_soon(count: i32) -> bool {
    const POLL: Duration = Duration::from_micros(100);
    let waited = POLL.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX));
    if waited >= RESTART_WAIT {
        return false;
    }
    std::thread::sleep(POLL);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_busy_handler_gives_up_after_the_restart_wait() {
        let started = Instant::now();
        let mut calls = 0;
        while give_up_soon(calls) {
            calls += 1;
            assert!(calls < 10_000, "never gives up");
        }
        let expected = i32::try_from(RESTART_WAIT.as_micros() / 100).unwrap_or(i32::MAX);
        assert_eq!(calls, expected, "calls before giving up");
        assert!(
            started.elapsed() >= RESTART_WAIT,
            "gave up after {:?}",
            started.elapsed()
        );
    }
}
