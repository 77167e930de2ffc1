//! Reading runs back: the last runs of a scenario (for `loadgen history` and the
//! trend chart), the last passing ones (baselines), one by id.

use rusqlite::params;

use super::{History, HistoryError};
use crate::runfolder::summary_json::RunSummary;

/// One run as the history lists it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: String,
    pub scenario: String,
    pub started_at: String,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub verdict: String,
    pub summary: RunSummary,
}

/// Which runs to read.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub scenario: Option<&'a str>,
    /// Only runs made on this git branch.
    pub branch: Option<&'a str>,
    /// Only runs whose verdict was `pass`.
    pub passing: bool,
    pub limit: usize,
}

impl History {
    /// Runs matching `filter`, newest first.
    pub fn runs(&self, filter: &Filter<'_>) -> Result<Vec<RunRow>, HistoryError> {
        let sql = |e| self.sql(e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, scenario, started_at, git_commit, git_branch, verdict, summary_json
                 FROM runs
                 WHERE (?1 IS NULL OR scenario = ?1)
                   AND (?2 IS NULL OR git_branch = ?2)
                   AND (?3 = 0 OR verdict = 'pass')
                 ORDER BY seq DESC
                 LIMIT ?4",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(
                params![
                    filter.scenario,
                    filter.branch,
                    filter.passing,
                    filter.limit as i64
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                },
            )
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, scenario, started_at, git_commit, git_branch, verdict, json) =
                row.map_err(sql)?;
            let summary = RunSummary::parse(&json).map_err(|message| HistoryError::Run {
                path: self.path.clone(),
                id: id.clone(),
                message,
            })?;
            out.push(RunRow {
                id,
                scenario,
                started_at,
                git_commit,
                git_branch,
                verdict,
                summary,
            });
        }
        Ok(out)
    }

    /// The run with this id, if the history has it.
    pub fn run(&self, id: &str) -> Result<Option<RunSummary>, HistoryError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT summary_json FROM runs WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| self.sql(e))?;
        json.map(|j| {
            RunSummary::parse(&j).map_err(|message| HistoryError::Run {
                path: self.path.clone(),
                id: id.to_string(),
                message,
            })
        })
        .transpose()
    }

    /// The folder run `id` was written to, as recorded.
    pub fn folder_of(&self, id: &str) -> Result<Option<String>, HistoryError> {
        self.conn
            .query_row("SELECT folder FROM runs WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| self.sql(e))
    }
}
