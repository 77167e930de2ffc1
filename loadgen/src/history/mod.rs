//! The run history: every `loadgen run` appends its summary to a SQLite database
//! (default `reports/history.sqlite`), so a later run can be judged against an
//! earlier one (baselines), and trends across commits can be drawn. This module owns
//! opening the database (WAL, a busy timeout, so concurrent runs wait rather than
//! fail or lose rows), its versioned schema ([`migrate`]), appending a run
//! ([`record`]), reading runs back ([`query`]), the facts a run is recorded with
//! ([`facts`]: git commit and branch, machine, scenario hash, run id) and baselines
//! ([`baseline`]). What a run's figures are is summary.json's business.

pub mod baseline;
pub mod facts;
mod migrate;
pub mod query;
mod record;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use baseline::Baseline;
pub use query::RunRow;

/// The history file when `--history` is not given.
pub const DEFAULT_PATH: &str = "reports/history.sqlite";
/// How long a writer waits for another run's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("history {}: cannot create its folder: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "history {}: schema version {found} is newer than this loadgen's ({known}); use a newer loadgen",
        path.display()
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("history {}: run {id}: {message}", path.display())]
    Run {
        path: PathBuf,
        id: String,
        message: String,
    },
}

/// An open history database.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

impl History {
    /// Opens (creating it and its folder if needed) and migrates the history at `path`.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| HistoryError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut history = History {
            conn: Connection::open(path).map_err(|source| HistoryError::Sql {
                path: path.to_path_buf(),
                source,
            })?,
            path: path.to_path_buf(),
        };
        history.configure()?;
        migrate::migrate(&mut history)?;
        Ok(history)
    }

    /// Opens an existing history for reading; `None` when the file does not exist.
    pub fn open_existing(path: &Path) -> Result<Option<History>, HistoryError> {
        if !path.exists() {
            return Ok(None);
        }
        Self::open(path).map(Some)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<(), HistoryError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.sql(e))?;
        // WAL: readers never block the writer; one writer at a time, the others wait
        // for the busy timeout. NORMAL is durable across a crash of loadgen.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| self.sql(e))?;
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.sql(e))?;
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| self.sql(e))
    }

    fn sql(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sql {
            path: self.path.clone(),
            source,
        }
    }
}
