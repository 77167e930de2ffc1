//! A full disk. SQLite reports it as `SQLITE_FULL` ([`StoreError::DiskFull`]): the
//! transaction is rolled back and nothing was written, so the API answers 503 with
//! `Retry-After` and the client's retry (same idempotency key) succeeds once there
//! is room. Reads need no space and keep working. Two things keep the WAL from
//! making it worse, since on a small volume the WAL alone can fill it (single mode's
//! automatic checkpoint waits for 1,000 pages, 4 MB; past a failed commit it never
//! runs, and writes failed forever): while the volume has less than [`LOW_SPACE`]
//! free, the writer (single process or worker) checkpoints the WAL and truncates
//! its file once it passes [`LOW_SPACE_WAL`] (or a quarter of the free space, if
//! less), and the cluster master truncates it at each of its checkpoints; and after
//! a write fails for lack of space, the WAL is truncated (the one thing SQLite can
//! give back) at most every [`RELIEF_EVERY`]. What this cannot undo: a WAL that
//! already holds the volume's last bytes can only be checkpointed into a database
//! file that grows, so writes then wait for space to be freed (reads still work).

use std::time::{Duration, Instant};

use rusqlite::ErrorCode;

use super::{Store, StoreError};

/// Below this much free space on the database's volume, the WAL file is kept short.
pub const LOW_SPACE: u64 = 64 * 1024 * 1024;
/// The WAL's size limit while space is low.
pub const LOW_SPACE_WAL: u64 = 256 * 1024;
/// At most one relief checkpoint (after a failed write) per this long.
pub const RELIEF_EVERY: Duration = Duration::from_millis(500);
/// A truncation that could not finish (readers in the way) is retried after this.
const TRUNCATE_RETRY: Duration = Duration::from_millis(50);
/// How often a writer looks at the free space.
const SPACE_CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long a relief checkpoint waits for readers before giving up (it runs on the
/// database thread: requests wait behind it).
const RELIEF_WAIT: Duration = Duration::from_millis(200);

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        if error.sqlite_error_code() == Some(ErrorCode::DiskFull) {
            StoreError::DiskFull(error)
        } else {
            StoreError::Sqlite(error)
        }
    }
}

/// What the writer knows of the volume: when it last looked and how much was free,
/// its last failed truncation, its last relief.
#[derive(Debug, Default)]
pub struct Pressure {
    checked: Option<Instant>,
    free: Option<u64>,
    failed: Option<Instant>,
    relieved: Option<Instant>,
}

fn since(at: Option<Instant>, now: Instant) -> Duration {
    at.map_or(Duration::MAX, |at| now - at)
}

impl Store {
    /// Every write method's result passes here: a disk-full failure triggers a
    /// relief checkpoint; a success while space is low keeps the WAL short.
    pub(super) fn after_write<T>(
        &mut self,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = Instant::now();
        match &result {
            Err(StoreError::DiskFull(_)) if since(self.space.relieved, now) >= RELIEF_EVERY => {
                self.space.relieved = Some(now);
                self.truncate_wal();
            }
            Ok(_) => self.keep_wal_short(now),
            _ => {}
        }
        result
    }

    /// Whether the database's volume has less than [`LOW_SPACE`] free.
    pub(super) fn short_of_space(&self) -> bool {
        free_space(&self.path).is_some_and(|free| free < LOW_SPACE)
    }

    fn keep_wal_short(&mut self, now: Instant) {
        if since(self.space.checked, now) >= SPACE_CHECK_EVERY {
            self.space.checked = Some(now);
            self.space.free = free_space(&self.path);
        }
        let Some(free) = self.space.free.filter(|&free| free < LOW_SPACE) else {
            return;
        };
        if since(self.space.failed, now) < TRUNCATE_RETRY {
            return;
        }
        let cap = LOW_SPACE_WAL.min(free / 4);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        if wal_len() > cap {
            self.truncate_wal();
            if wal_len() > cap {
                self.space.failed = Some(now);
            }
        }
    }

    /// Checkpoints the WAL into the database and truncates its file, waiting at
    /// most [`RELIEF_WAIT`] for readers. Failure is expected when the database file
    /// itself cannot grow: then only freed space helps, and the next relief retries.
    fn truncate_wal(&mut self) {
        if self.conn.busy_timeout(RELIEF_WAIT).is_err() {
            return;
        }
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.busy_handler(Some(super::wait_for_lock));
    }
}

/// Free bytes for unprivileged users on the volume holding `path` (its directory,
/// when the file does not exist yet).
fn free_space(path: &std::path::Path) -> Option<u64> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    // Both are 64-bit here but 32-bit on some targets.
    #[allow(clippy::useless_conversion)]
    Some(u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_full_is_disk_full_and_other_errors_are_not() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(matches!(StoreError::from(full), StoreError::DiskFull(_)));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(StoreError::from(busy), StoreError::Sqlite(_)));
    }

    #[test]
    fn free_space_is_read_from_the_database_volume() {
        let dir = tempfile::tempdir().expect("temp dir");
        let free = free_space(&dir.path().join("shop.db"));
        assert!(free.is_some_and(|f| f > 0), "free space: {free:?}");
    }
}
