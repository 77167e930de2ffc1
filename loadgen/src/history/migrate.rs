//! The history's schema, versioned with `PRAGMA user_version`: migration N takes the
//! database from version N to N+1, and each runs in one `BEGIN IMMEDIATE`
//! transaction that re-reads the version first, so two runs opening a new history at
//! once migrate it exactly once. A database newer than this loadgen is refused, not
//! written.

use rusqlite::TransactionBehavior;

use super::{History, HistoryError};

/// Every migration, in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their figures per mode and step, thresholds and invariants.
    r#"
    CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        scenario TEXT NOT NULL,
        scenario_hash TEXT NOT NULL,
        started_at TEXT NOT NULL,
        git_commit TEXT,
        git_branch TEXT,
        cores INTEGER NOT NULL,
        kernel TEXT,
        verdict TEXT NOT NULL,
        folder TEXT NOT NULL,
        summary_json TEXT NOT NULL
    );
    CREATE INDEX runs_by_scenario ON runs (scenario, verdict, seq);
    -- One figure of modes.csv (step '') or summary.csv (step = the row's step).
    CREATE TABLE figures (
        run_id TEXT NOT NULL REFERENCES runs (id),
        mode TEXT NOT NULL,
        step TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, mode, step, name)
    );
    CREATE TABLE thresholds (
        run_id TEXT NOT NULL REFERENCES runs (id),
        position INTEGER NOT NULL,
        threshold TEXT NOT NULL,
        actual REAL,
        unit TEXT NOT NULL,
        verdict TEXT NOT NULL,
        limit_value REAL,
        baseline REAL,
        PRIMARY KEY (run_id, position)
    );
    CREATE TABLE invariants (
        run_id TEXT NOT NULL REFERENCES runs (id),
        mode TEXT NOT NULL,
        check_name TEXT NOT NULL,
        expected TEXT NOT NULL,
        actual TEXT NOT NULL,
        holds INTEGER NOT NULL
    );
    "#,
];

/// The schema version this loadgen writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`].
pub(super) fn migrate(h: &mut History) -> Result<(), HistoryError> {
    loop {
        let path = h.path.clone();
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let tx = h
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version > VERSION {
            return Err(HistoryError::Newer {
                path,
                found: version,
                known: VERSION,
            });
        }
        let Some(step) = MIGRATIONS.get(version as usize) else {
            return Ok(());
        };
        tx.execute_batch(step).map_err(sql)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_history_gets_every_migration_once_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("h.sqlite");
        drop(History::open(&path).expect("create"));
        let h = History::open(&path).expect("reopen");
        let v: i64 = h
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, VERSION);
        h.conn
            .pragma_update(None, "user_version", VERSION + 1)
            .expect("bump");
        drop(h);
        match History::open(&path) {
            Err(HistoryError::Newer { found, .. }) => assert_eq!(found, VERSION + 1),
            Err(e) => panic!("expected a newer-schema error, got {e}"),
            Ok(_) => panic!("a newer schema was opened"),
        }
    }
}
