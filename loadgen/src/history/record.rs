//! Appending one run: its row, every figure of its modes and summary rows, its
//! thresholds and invariants, in one `BEGIN IMMEDIATE` transaction, so a concurrent
//! run waits for it (busy timeout) and a reader never sees half a run.

use std::path::Path;

use rusqlite::{TransactionBehavior, params};
use serde_json::{Map, Value};

use super::{History, HistoryError};
use crate::runfolder::summary_json::RunSummary;

impl History {
    /// Appends `run`, whose folder is `folder`.
    pub fn append(&mut self, run: &RunSummary, folder: &Path) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_string(run).map_err(|e| HistoryError::Run {
            path: path.clone(),
            id: run.run_id.clone(),
            message: e.to_string(),
        })?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        tx.execute(
            "INSERT INTO runs (id, scenario, scenario_hash, started_at, git_commit, git_branch,
                               cores, kernel, verdict, folder, summary_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                run.run_id,
                run.scenario.name,
                run.scenario.hash,
                run.started_at,
                run.git.as_ref().map(|g| g.commit.clone()),
                run.git.as_ref().and_then(|g| g.branch.clone()),
                run.machine.cores,
                run.machine.kernel,
                run.verdict.as_str(),
                folder.display().to_string(),
                json,
            ],
        )
        .map_err(sql)?;
        {
            let mut figure = tx
                .prepare(
                    "INSERT INTO figures (run_id, mode, step, name, value)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            let rows = run
                .modes
                .iter()
                .map(|r| (r, ""))
                .chain(run.summary.iter().map(|r| (r, step_of(r))));
            for (row, step) in rows {
                let mode = row.get("mode").and_then(Value::as_str).unwrap_or("");
                for (name, value) in numbers(row) {
                    figure
                        .execute(params![run.run_id, mode, step, name, value])
                        .map_err(sql)?;
                }
            }
            let mut threshold = tx
                .prepare(
                    "INSERT INTO thresholds (run_id, position, threshold, actual, unit, verdict,
                                             limit_value, baseline)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sql)?;
            for (i, t) in run.thresholds.iter().enumerate() {
                threshold
                    .execute(params![
                        run.run_id,
                        i as i64,
                        t.threshold,
                        t.actual,
                        t.unit,
                        t.verdict,
                        t.limit,
                        t.baseline
                    ])
                    .map_err(sql)?;
            }
            let mut invariant = tx
                .prepare(
                    "INSERT INTO invariants (run_id, mode, check_name, expected, actual, holds)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for row in &run.invariants {
                let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let holds = row.get("holds").and_then(Value::as_bool).unwrap_or(false);
                invariant
                    .execute(params![
                        run.run_id,
                        text("mode"),
                        text("check"),
                        text("expected"),
                        text("actual"),
                        holds
                    ])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }
}

fn step_of(row: &Map<String, Value>) -> &str {
    row.get("step").and_then(Value::as_str).unwrap_or("all")
}

/// The numeric cells of a row (null cells are kept as NULL).
fn numbers(row: &Map<String, Value>) -> impl Iterator<Item = (&str, Option<f64>)> {
    row.iter().filter_map(|(k, v)| match v {
        Value::Number(n) => Some((k.as_str(), n.as_f64())),
        Value::Null => Some((k.as_str(), None)),
        _ => None,
    })
}
