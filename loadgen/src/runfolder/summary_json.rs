//! `summary.json`: the whole run in one machine-readable file, for CI systems and for
//! the history. Its schema is committed (`loadgen/schema/summary.schema.json`, version
//! [`SCHEMA_VERSION`]) and documented in the README. The figures are not a second
//! copy of the engine's arithmetic: `modes` and `summary` are every column of
//! modes.csv and summary.csv as written (numbers as JSON numbers, empty cells as
//! null), `invariants` every row of invariants.csv, `thresholds` the verdicts with the
//! measured value and, for a rule relative to a baseline, the baseline and the limit.
//! The run adds who and where (run id, scenario hash, git commit and branch, machine)
//! and its verdict. Baselines read a run's figures back through [`RunSummary::figure`].

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::table;
use crate::plan::threshold::{Metric, Verdict};

/// The version of the file's layout; bumped when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;
/// The `schema` field's value.
pub const SCHEMA_NAME: &str = "stampede.summary";
pub const FILE: &str = "summary.json";

/// Columns of modes.csv and summary.csv that hold words, not figures.
const TEXT_COLUMNS: &[&str] = &["mode", "step", "started_at", "deploy_strategy"];
/// Columns of invariants.csv that hold words.
const INVARIANT_TEXT: &[&str] = &["mode", "check", "expected", "actual", "compared"];

/// The run's verdict as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunVerdict {
    /// Every threshold held (or read "no baseline") and the harness did its job.
    Pass,
    /// A threshold was breached, or one stopped the run early.
    Fail,
    /// The harness could not do what the scenario asked: its figures are not the
    /// server's alone.
    HarnessFailed,
    /// Ctrl-C: the figures are what was measured until then.
    Interrupted,
}

impl RunVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RunVerdict::Pass => "pass",
            RunVerdict::Fail => "fail",
            RunVerdict::HarnessFailed => "harness_failed",
            RunVerdict::Interrupted => "interrupted",
        }
    }
}

/// The scenario a run ran: its name and a hash of its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRef {
    pub name: String,
    /// FNV-1a 64 of the scenario file's bytes, 16 hex digits.
    pub hash: String,
}

/// The commit the run was made from, when loadgen ran inside a git repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitRef {
    pub commit: String,
    /// `None`: a detached HEAD.
    pub branch: Option<String>,
}

/// The machine that generated the load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: u32,
    /// `/proc/sys/kernel/osrelease`; `None` where it cannot be read.
    pub kernel: Option<String>,
}

/// One threshold's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub threshold: String,
    /// The measured value in `unit`; null when it was not measured.
    pub actual: Option<f64>,
    /// `ms`, `/s`, `%` or empty (a count).
    pub unit: String,
    /// `pass`, `fail` or `no_baseline`.
    pub verdict: String,
    /// The limit the value was judged against (null: relative to a missing baseline).
    pub limit: Option<f64>,
    /// The baseline's value, for a rule relative to one.
    pub baseline: Option<f64>,
    /// Why the value cannot pass (the mode was cut off), if so.
    pub incomplete: Option<String>,
    /// The value as the table prints it.
    pub text: String,
}

/// Who ran what, where: the facts of a run beyond its figures.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub scenario: ScenarioRef,
    pub started_at: String,
    pub git: Option<GitRef>,
    pub machine: Machine,
    pub verdict: RunVerdict,
    /// What the baseline of relative thresholds was, in words.
    pub baseline: Option<String>,
    pub harness_failures: Vec<String>,
}

/// The document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema: String,
    pub schema_version: u32,
    pub run_id: String,
    pub scenario: ScenarioRef,
    pub started_at: String,
    pub git: Option<GitRef>,
    pub machine: Machine,
    pub verdict: RunVerdict,
    pub baseline: Option<String>,
    /// Every column of modes.csv, one object per mode.
    pub modes: Vec<Map<String, Value>>,
    /// Every column of summary.csv, one object per mode and step (`all`: every step).
    pub summary: Vec<Map<String, Value>>,
    pub thresholds: Vec<ThresholdResult>,
    /// Every row of invariants.csv.
    pub invariants: Vec<Map<String, Value>>,
    pub harness_failures: Vec<String>,
}

/// Why summary.json could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    #[error("{}: {message}", file.display())]
    Format { file: PathBuf, message: String },
}

impl RunSummary {
    /// Builds the document from the run folder's CSV files, the verdicts and the facts.
    pub fn build(
        dir: &Path,
        facts: RunFacts,
        verdicts: &[Verdict],
    ) -> Result<RunSummary, SummaryError> {
        Ok(RunSummary {
            schema: SCHEMA_NAME.to_string(),
            schema_version: SCHEMA_VERSION,
            run_id: facts.run_id,
            scenario: facts.scenario,
            started_at: facts.started_at,
            git: facts.git,
            machine: facts.machine,
            verdict: facts.verdict,
            baseline: facts.baseline,
            modes: csv_objects(&dir.join(table::MODES), TEXT_COLUMNS, &[])?,
            summary: csv_objects(&dir.join(table::SUMMARY), TEXT_COLUMNS, &[])?,
            thresholds: verdicts.iter().map(threshold_result).collect(),
            invariants: csv_objects(&dir.join(table::INVARIANTS), INVARIANT_TEXT, &["holds"])?,
            harness_failures: facts.harness_failures,
        })
    }

    /// Writes `summary.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, SummaryError> {
        let file = dir.join(FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| SummaryError::Format {
            file: file.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&file, text + "\n").map_err(|source| SummaryError::Io {
            file: file.clone(),
            source,
        })?;
        Ok(file)
    }

    /// Reads `summary.json` from a run folder.
    pub fn read(dir: &Path) -> Result<RunSummary, SummaryError> {
        let file = dir.join(FILE);
        let text = std::fs::read_to_string(&file).map_err(|source| SummaryError::Io {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|message| SummaryError::Format { file, message })
    }

    /// Parses a document of this schema version.
    pub fn parse(text: &str) -> Result<RunSummary, String> {
        let doc: RunSummary = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if doc.schema != SCHEMA_NAME || doc.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schema {} version {}; this loadgen reads {SCHEMA_NAME} version {SCHEMA_VERSION}",
                doc.schema, doc.schema_version
            ));
        }
        Ok(doc)
    }

    /// The summary row of `mode` and `step` (`None`: the `all` row).
    pub fn row(&self, mode: &str, step: Option<&str>) -> Option<&Map<String, Value>> {
        let step = step.unwrap_or("all");
        self.summary.iter().find(|r| {
            r.get("mode").and_then(Value::as_str) == Some(mode)
                && r.get("step").and_then(Value::as_str) == Some(step)
        })
    }

    /// A threshold metric as this run measured it, read from its summary row: the
    /// same figures the gate judged (`status_5xx` counts 503s too, as the gate does).
    /// `None` for what the summary does not hold (invariants, downtime).
    pub fn figure(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64> {
        let row = self.row(mode, step)?;
        let col = |name: &str| row.get(name).and_then(Value::as_f64);
        match metric {
            Metric::Status5xx => Some(col("status_5xx")? + col("status_503")?),
            _ => col(column_of(metric)?),
        }
    }
}

/// The summary.csv column holding a metric, if one does.
pub fn column_of(metric: Metric) -> Option<&'static str> {
    Some(match metric {
        Metric::Requests => "requests",
        Metric::Dropped => "dropped",
        Metric::Failed => "failed",
        Metric::Status5xx => "status_5xx",
        Metric::Status503 => "status_503",
        Metric::AttemptFailures => "attempt_failures",
        Metric::Retried => "retried",
        Metric::P50 => "p50_ms",
        Metric::P90 => "p90_ms",
        Metric::P99 => "p99_ms",
        Metric::P999 => "p999_ms",
        Metric::Max => "max_ms",
        Metric::Throughput => "throughput_rps",
        _ => return None,
    })
}

fn threshold_result(v: &Verdict) -> ThresholdResult {
    let verdict = match (v.pass, v.no_baseline) {
        (true, true) => "no_baseline",
        (true, false) => "pass",
        (false, _) => "fail",
    };
    ThresholdResult {
        threshold: v.threshold.clone(),
        actual: v.actual.filter(|a| a.is_finite()),
        unit: v.unit.to_string(),
        verdict: verdict.to_string(),
        limit: v.limit,
        baseline: v.baseline.map(|b| b.value),
        incomplete: v.incomplete.clone(),
        text: v.actual_text(),
    }
}

/// Every row of a CSV file as an object: words stay strings, `bools` become booleans,
/// every other cell a number (null when empty). A missing file reads as no rows.
fn csv_objects(
    file: &Path,
    text: &[&str],
    bools: &[&str],
) -> Result<Vec<Map<String, Value>>, SummaryError> {
    if !file.exists() {
        return Ok(Vec::new());
    }
    let format = |message: String| SummaryError::Format {
        file: file.to_path_buf(),
        message,
    };
    let mut reader = csv::Reader::from_path(file).map_err(|e| format(e.to_string()))?;
    let headers = reader.headers().map_err(|e| format(e.to_string()))?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format(e.to_string()))?;
        let mut row = Map::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            let value = if text.contains(&name) {
                Value::String(cell.to_string())
            } else if bools.contains(&name) {
                Value::Bool(cell.eq_ignore_ascii_case("true"))
            } else {
                number(cell)
                    .ok_or_else(|| format(format!("column {name}: `{cell}` is not a number")))?
            };
            row.insert(name.to_string(), value);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A cell as a JSON number: integers stay integers; empty is null.
fn number(cell: &str) -> Option<Value> {
    if cell.is_empty() {
        return Some(Value::Null);
    }
    if let Ok(n) = cell.parse::<u64>() {
        return Some(Value::from(n));
    }
    if let Ok(n) = cell.parse::<i64>() {
        return Some(Value::from(n));
    }
    let f: f64 = cell.parse().ok()?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runfolder::rows::{InvariantRow, ModeRow, SummaryRow};
    use crate::runfolder::table::{Table, header_line};

    /// The committed schema names every column of the CSV files it mirrors, no more:
    /// a column added to a row type without the schema fails here.
    #[test]
    fn the_schema_lists_exactly_the_csv_columns() {
        let schema: Value =
            serde_json::from_str(include_str!("../../schema/summary.schema.json")).expect("json");
        let props = |field: &str| -> Vec<String> {
            let mut keys: Vec<String> = schema["properties"][field]["items"]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("schema has no {field} item properties"))
                .keys()
                .cloned()
                .collect();
            keys.sort();
            keys
        };
        fn columns<R: Table>() -> Vec<String> {
            let mut c: Vec<String> = header_line::<R>().split(',').map(str::to_string).collect();
            c.sort();
            c
        }
        assert_eq!(props("summary"), columns::<SummaryRow>());
        assert_eq!(props("modes"), columns::<ModeRow>());
        assert_eq!(props("invariants"), columns::<InvariantRow>());
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            SCHEMA_VERSION
        );
    }

    #[test]
    fn cells_become_numbers_null_or_words() {
        assert_eq!(number(""), Some(Value::Null));
        assert_eq!(number("12"), Some(Value::from(12u64)));
        assert_eq!(number("1.500"), Some(Value::from(1.5)));
        assert_eq!(number("fast"), None);
    }
}
