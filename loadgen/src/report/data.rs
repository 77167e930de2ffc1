//! Loading a run directory: the CSV files and `.hgrm` histograms of the file contract
//! (`reports/README.md`) into typed rows. This module owns parsing and the errors
//! that name the file and line of bad input; it computes nothing. Optional files
//! (`invariants.csv`, `thresholds.csv`, `events.csv`) load as empty when absent.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::observe::events::Kind;
use serde::de::DeserializeOwned;

use super::ReportError;

/// `modes.csv`: facts about one mode's run as a whole.
#[derive(Debug, Clone, Deserialize)]
pub struct ModeRow {
    pub mode: String,
    pub started_at: String,
    pub duration_s: f64,
    pub users_planned: u64,
    pub users_started: u64,
    pub users_completed: u64,
    pub users_aborted: u64,
    pub loadgen_processes: u32,
    pub loadgen_cpu_s: f64,
    pub loadgen_peak_rss_kb: Option<u64>,
    pub start_lateness_p50_ms: Option<f64>,
    pub start_lateness_p99_ms: Option<f64>,
    pub start_lateness_max_ms: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_peak_rss_kb: Option<u64>,
    pub deploy_strategy: String,
}

/// `summary.csv`: one mode and journey step (or `all`).
#[derive(Debug, Clone, Deserialize)]
pub struct SummaryRow {
    pub mode: String,
    pub step: String,
    pub requests: u64,
    pub ok: u64,
    pub status_4xx: u64,
    pub status_503: u64,
    pub status_5xx: u64,
    pub refused: u64,
    pub closed: u64,
    pub timeout: u64,
    pub dropped: u64,
    pub failed: u64,
    pub attempts: u64,
    pub attempt_failures: u64,
    pub retried: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub throughput_rps: f64,
}

/// `timeseries.csv`: one mode and second.
#[derive(Debug, Clone, Deserialize)]
pub struct SecondRow {
    pub mode: String,
    pub second: u32,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub status_4xx: u64,
    pub status_503: u64,
    pub status_5xx: u64,
    pub refused: u64,
    pub closed: u64,
    pub timeout: u64,
    pub dropped: u64,
    pub attempt_failures: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub active_users: u64,
    pub open_connections: u64,
    pub live_workers: Option<u32>,
}

/// `workers.csv`: responses from one server process in one second.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkerRow {
    pub mode: String,
    pub second: u32,
    pub worker_pid: u32,
    pub version: String,
    pub responses: u64,
}

/// What an `events.csv` row records: a kind the engine writes, or one this renderer
/// does not know (kept and listed, never charted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Known(Kind),
    Other(String),
}

impl EventKind {
    fn parse(s: &str) -> Self {
        Kind::parse(s).map_or_else(|| Self::Other(s.to_string()), Self::Known)
    }

    /// The name used in `events.csv`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Known(kind) => kind.name(),
            Self::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct RawEvent {
    t_s: f64,
    mode: String,
    kind: String,
    pid: Option<u32>,
    #[serde(default)]
    detail: String,
}

/// `events.csv`: one chaos action or observed process change.
#[derive(Debug, Clone)]
pub struct Event {
    pub t_s: f64,
    pub mode: String,
    pub kind: EventKind,
    pub pid: Option<u32>,
    pub detail: String,
}

/// `invariants.csv`: one check of what the shop still holds.
#[derive(Debug, Clone, Deserialize)]
pub struct InvariantRow {
    pub mode: String,
    pub check: String,
    pub expected: String,
    pub actual: String,
    pub holds: String,
}

impl InvariantRow {
    /// `holds` is written as a boolean; accept the usual spellings of "yes".
    pub fn holds(&self) -> bool {
        matches!(
            self.holds.to_ascii_lowercase().as_str(),
            "true" | "yes" | "1" | "pass" | "ok"
        )
    }
}

/// `thresholds.csv`: one CI-gate threshold and its verdict.
#[derive(Debug, Clone, Deserialize)]
pub struct ThresholdRow {
    pub threshold: String,
    pub actual: String,
    pub verdict: String,
}

impl ThresholdRow {
    pub fn passed(&self) -> bool {
        self.verdict.eq_ignore_ascii_case("pass")
    }
}

/// One line of an HdrHistogram percentile distribution.
#[derive(Debug, Clone, Copy)]
pub struct HgrmPoint {
    pub value_ms: f64,
    pub percentile: f64,
    pub total_count: u64,
}

/// `latency-<mode>.hgrm`: the percentile distribution of one mode.
#[derive(Debug, Clone)]
pub struct Hgrm {
    pub mode: String,
    pub points: Vec<HgrmPoint>,
}

/// Everything a run directory holds, as rows in file order.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    /// The scenario's `name`, or the directory's name when it has none.
    pub scenario: String,
    pub modes: Vec<ModeRow>,
    pub summary: Vec<SummaryRow>,
    pub seconds: Vec<SecondRow>,
    pub workers: Vec<WorkerRow>,
    pub events: Vec<Event>,
    /// `None`: the file is absent or has no rows (not checked).
    pub invariants: Option<Vec<InvariantRow>>,
    /// `None`: the file is absent or has no rows (no thresholds given).
    pub thresholds: Option<Vec<ThresholdRow>>,
    /// Keyed by mode; a mode without its `.hgrm` file is simply absent.
    pub histograms: BTreeMap<String, Hgrm>,
}

impl RunData {
    /// The mode names in `modes.csv` order.
    pub fn mode_names(&self) -> Vec<&str> {
        self.modes.iter().map(|m| m.mode.as_str()).collect()
    }

    pub fn seconds_of<'a>(&'a self, mode: &'a str) -> impl Iterator<Item = &'a SecondRow> + 'a {
        self.seconds.iter().filter(move |r| r.mode == mode)
    }

    pub fn events_of<'a>(&'a self, mode: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.mode == mode)
    }
}

/// Read a run directory. `modes.csv`, `summary.csv`, `timeseries.csv` and
/// `workers.csv` are required; the rest may be absent.
pub fn load(dir: &Path) -> Result<RunData, ReportError> {
    let modes: Vec<ModeRow> = read_csv(&dir.join("modes.csv"))?;
    if modes.is_empty() {
        return Err(ReportError::NoModes {
            file: dir.join("modes.csv"),
        });
    }
    let summary = read_csv(&dir.join("summary.csv"))?;
    let mut seconds: Vec<SecondRow> = read_csv(&dir.join("timeseries.csv"))?;
    seconds.sort_by(|a, b| a.mode.cmp(&b.mode).then(a.second.cmp(&b.second)));
    let workers = read_csv(&dir.join("workers.csv"))?;
    let mut events: Vec<Event> = read_optional_csv::<RawEvent>(&dir.join("events.csv"))?
        .unwrap_or_default()
        .into_iter()
        .map(|r| Event {
            t_s: r.t_s,
            mode: r.mode,
            kind: EventKind::parse(&r.kind),
            pid: r.pid,
            detail: r.detail,
        })
        .collect();
    events.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let invariants = read_optional_csv(&dir.join("invariants.csv"))?.filter(|v| !v.is_empty());
    let thresholds = read_optional_csv(&dir.join("thresholds.csv"))?.filter(|v| !v.is_empty());

    let mut histograms = BTreeMap::new();
    for m in &modes {
        let path = dir.join(format!("latency-{}.hgrm", m.mode));
        if path.exists() {
            let points = super::hgrm::parse(&path, &read_text(&path)?)?;
            histograms.insert(
                m.mode.clone(),
                Hgrm {
                    mode: m.mode.clone(),
                    points,
                },
            );
        }
    }

    Ok(RunData {
        dir: dir.to_path_buf(),
        scenario: scenario_name(dir),
        modes,
        summary,
        seconds,
        workers,
        events,
        invariants,
        thresholds,
        histograms,
    })
}

/// The scenario's top-level `name = "..."`, read without a full TOML parse so that a
/// scenario format change can never stop a report from rendering.
fn scenario_name(dir: &Path) -> String {
    let from_toml = fs::read_to_string(dir.join("scenario.toml"))
        .ok()
        .and_then(|text| {
            text.lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with('['))
                .find_map(|l| {
                    let rest = l.strip_prefix("name")?.trim_start().strip_prefix('=')?;
                    Some(rest.trim().trim_matches('"').to_string())
                })
        })
        .filter(|n| !n.is_empty());
    from_toml.unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".to_string())
    })
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    fs::read_to_string(path).map_err(|source| ReportError::Read {
        file: path.to_path_buf(),
        source,
    })
}

fn read_optional_csv<T: DeserializeOwned>(path: &Path) -> Result<Option<Vec<T>>, ReportError> {
    if path.exists() {
        read_csv(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Deserialize every record of a CSV file with a header row. Columns are matched by
/// name, so extra columns a newer engine adds are ignored; a missing or malformed
/// value is an error naming the file, line and column.
fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReportError> {
    let text = read_text(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, &e, None))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.deserialize() {
        rows.push(record.map_err(|e| csv_error(path, &e, Some(&headers)))?);
    }
    Ok(rows)
}

fn csv_error(path: &Path, err: &csv::Error, headers: Option<&csv::StringRecord>) -> ReportError {
    let line = err.position().map(|p| p.line()).unwrap_or(1);
    let message = match err.kind() {
        csv::ErrorKind::Deserialize { err: de, .. } => {
            let column = de
                .field()
                .and_then(|i| headers.and_then(|h| h.get(i as usize)))
                .map(|name| format!("column `{name}`: "))
                .unwrap_or_default();
            format!("{column}{}", de.kind())
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        _ => err.to_string(),
    };
    ReportError::Csv {
        file: path.to_path_buf(),
        line,
        message,
    }
}
