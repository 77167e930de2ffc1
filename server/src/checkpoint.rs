//! The cluster master's WAL checkpointer: one thread, every [`CHECKPOINT_EVERY`], a
//! PASSIVE checkpoint through the master's [`Store`] (copies what it can, waits for
//! nobody), then, once the WAL is past [`WAL_RESTART_FRAMES`], a RESTART so the next
//! writer starts the WAL from its beginning (under constant load readers always hold
//! the WAL, so it never restarts by itself). A RESTART holds the write lock while it
//! waits for the readers still using the WAL, up to the busy timeout. How it waits is
//! the `--wal-checkpoint` mode (hidden, for measurement): `waiting` with the store's
//! 30 s busy handler, `bounded` on a connection of its own whose busy handler gives
//! up after [`RESTART_WAIT`] (a RESTART that gave up is tried again later, backing
//! off: [`RestartPolicy`]), or `passive` (never RESTART). SQL for the shop lives in
//! `store`; only these two pragmas live here.

use std::path::Path;
use std::time::{Duration, Instant};

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
/// After a RESTART gave up: the first and the longest pause before the next try.
pub const RETRY_FIRST: Duration = Duration::from_millis(500);
pub const RETRY_MAX: Duration = Duration::from_secs(8);

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

/// When the next RESTART may run: at once while they succeed; after one gave up,
/// [`RETRY_FIRST`], doubling up to [`RETRY_MAX`] while they keep giving up.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestartPolicy {
    gave_up: u32,
    not_before: Option<Instant>,
}

impl RestartPolicy {
    pub fn due(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// A RESTART gave up; returns the pause before the next try.
    pub fn gave_up(&mut self, now: Instant) -> Duration {
        self.gave_up = self.gave_up.saturating_add(1);
        let factor = 1u32 << (self.gave_up - 1).min(8);
        let pause = RETRY_FIRST.saturating_mul(factor).min(RETRY_MAX);
        self.not_before = Some(now + pause);
        pause
    }

    pub fn succeeded(&mut self) {
        *self = RestartPolicy::default();
    }

    /// RESTARTs that gave up in a row.
    pub fn streak(&self) -> u32 {
        self.gave_up
    }
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
    let mut policy = RestartPolicy::default();
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let passed = match mode {
            WalCheckpoint::Waiting => store.checkpoint(WAL_RESTART_FRAMES).map(|_| ()),
            WalCheckpoint::Passive => store.checkpoint(i64::MAX).map(|_| ()),
            WalCheckpoint::Bounded => store.checkpoint(i64::MAX).map(|frames| {
                if frames > WAL_RESTART_FRAMES && policy.due(Instant::now()) {
                    bounded_restart(restart, frames, &mut policy);
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

/// One RESTART that waits at most [`RESTART_WAIT`] for readers.
fn bounded_restart(conn: &Connection, frames: i64, policy: &mut RestartPolicy) {
    // Columns: busy (1 = could not finish), WAL frames, frames checkpointed.
    let busy = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    match busy {
        Ok(0) => {
            if policy.streak() > 0 {
                log_event!(
                    ROLE,
                    "WAL restarted after {} deferrals (it had {frames} frames)",
                    policy.streak()
                );
            }
            policy.succeeded();
        }
        Ok(_) => {
            let pause = policy.gave_up(Instant::now());
            let streak = policy.streak();
            if streak.is_power_of_two() {
                log_event!(
                    ROLE,
                    "WAL restart deferred {streak} times in a row: a reader held the WAL for more \
                     than {} ms ({frames} frames); next try in {} ms, writers keep going",
                    RESTART_WAIT.as_millis(),
                    pause.as_millis()
                );
            }
        }
        Err(error) => {
            policy.gave_up(Instant::now());
            log_event!(ROLE, "WAL restart failed: {error}");
        }
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

    #[test]
    fn a_restart_that_gave_up_is_retried_later_and_later() {
        let mut policy = RestartPolicy::default();
        let t0 = Instant::now();
        assert!(policy.due(t0), "due at once at first");
        let pauses: Vec<u128> = (0..6).map(|_| policy.gave_up(t0).as_millis()).collect();
        assert_eq!(pauses, vec![500, 1000, 2000, 4000, 8000, 8000]);
        assert!(!policy.due(t0 + Duration::from_millis(7999)));
        assert!(policy.due(t0 + Duration::from_secs(8)));
        policy.succeeded();
        assert!(policy.due(t0), "a success clears the back-off");
        assert_eq!(policy.gave_up(t0), RETRY_FIRST);
    }

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
