//! Loading a run directory: every CSV file and `.hgrm` histogram of the file contract
//! (`reports/README.md`) through the run folder's own row types, into one [`RunData`].
//! Owns which files are required and which may be absent (`invariants.csv`,
//! `stock.csv`, `thresholds.csv`, `events.csv`), the row order the report relies on, and the
//! scenario's name; it computes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::ReportError;
use crate::runfolder::table::{self, read_rows, read_rows_if_present};
use crate::runfolder::{
    EventRow, HgrmPoint, InvariantRow, ModeRow, SecondRow, StockRow, SummaryRow, ThresholdRow,
    WorkerRow, read_hgrm,
};

/// `latency-<mode>.hgrm`: the percentile distribution of one mode.
#[derive(Debug, Clone)]
pub struct Hgrm {
    pub mode: String,
    pub points: Vec<HgrmPoint>,
}

/// Everything a run directory holds, as rows in file order (seconds sorted by mode and
/// second, events by time).
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    /// The scenario's `name`, or the directory's name when it has none.
    pub scenario: String,
    pub modes: Vec<ModeRow>,
    pub summary: Vec<SummaryRow>,
    pub seconds: Vec<SecondRow>,
    pub workers: Vec<WorkerRow>,
    pub events: Vec<EventRow>,
    /// `None`: the file is absent or has no rows (not checked).
    pub invariants: Option<Vec<InvariantRow>>,
    /// Each product's stock after each mode; empty when the file is absent.
    pub stock: Vec<StockRow>,
    /// `None`: the file is absent or has no rows (no thresholds given).
    pub thresholds: Option<Vec<ThresholdRow>>,
    /// Keyed by mode; a mode without its `.hgrm` file is simply absent.
    pub histograms: BTreeMap<String, Hgrm>,
    /// The share of late requests the scenario allowed (`load.late_budget`).
    pub late_budget: f64,
    /// The retry policy every mode ran with (`load.retry`): (retries, first back-off).
    pub retry: Option<(u32, String)>,
}

impl RunData {
    /// The mode names in `modes.csv` order.
    pub fn mode_names(&self) -> Vec<&str> {
        self.modes.iter().map(|m| m.mode.as_str()).collect()
    }

    pub fn seconds_of<'a>(&'a self, mode: &'a str) -> impl Iterator<Item = &'a SecondRow> + 'a {
        self.seconds.iter().filter(move |r| r.mode == mode)
    }

    pub fn events_of<'a>(&'a self, mode: &'a str) -> impl Iterator<Item = &'a EventRow> + 'a {
        self.events.iter().filter(move |e| e.mode == mode)
    }
}

/// Read a run directory. `modes.csv`, `summary.csv`, `timeseries.csv` and
/// `workers.csv` are required; the rest may be absent.
pub fn load(dir: &Path) -> Result<RunData, ReportError> {
    let modes: Vec<ModeRow> = read_rows(dir)?;
    if modes.is_empty() {
        return Err(ReportError::NoModes {
            file: dir.join(table::MODES),
        });
    }
    let summary = read_rows(dir)?;
    let mut seconds: Vec<SecondRow> = read_rows(dir)?;
    seconds.sort_by(|a, b| a.mode.cmp(&b.mode).then(a.second.cmp(&b.second)));
    let workers = read_rows(dir)?;
    let mut events: Vec<EventRow> = read_rows_if_present(dir)?.unwrap_or_default();
    events.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let invariants = read_rows_if_present(dir)?.filter(|v| !v.is_empty());
    let stock = read_rows_if_present(dir)?.unwrap_or_default();
    let thresholds = read_rows_if_present(dir)?.filter(|v| !v.is_empty());

    let mut histograms = BTreeMap::new();
    for m in &modes {
        if let Some(points) = read_hgrm(dir, &m.mode)? {
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
        stock,
        thresholds,
        histograms,
        late_budget: scenario_late_budget(dir),
        retry: scenario_retry(dir),
    })
}

/// `count` and `backoff` of the scenario's `[load.retry]` table, read line by line.
fn scenario_retry(dir: &Path) -> Option<(u32, String)> {
    let text = fs::read_to_string(dir.join(table::SCENARIO)).ok()?;
    let mut table = "";
    let (mut count, mut backoff) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            table = line;
            continue;
        }
        if table != "[load.retry]" {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .split('#')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        match key.trim() {
            "count" => count = value.parse::<u32>().ok(),
            "backoff" => backoff = Some(value.to_string()),
            _ => {}
        }
    }
    count.map(|c| (c, backoff.unwrap_or_else(|| "100ms".into())))
}

/// `late_budget` of the scenario's `[load]` table (1% when absent), read line by line
/// for the same reason as the name.
fn scenario_late_budget(dir: &Path) -> f64 {
    let text = fs::read_to_string(dir.join(table::SCENARIO)).unwrap_or_default();
    let mut table = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            table = line;
        } else if table == "[load]" {
            let value = line
                .strip_prefix("late_budget")
                .and_then(|r| r.trim_start().strip_prefix('='))
                .and_then(|v| v.split('#').next())
                .and_then(|v| v.trim().parse::<f64>().ok());
            if let Some(v) = value.filter(|v| (0.0..=1.0).contains(v)) {
                return v;
            }
        }
    }
    super::compare::LATE_SHARE_LIMIT
}

/// The scenario's top-level `name = "..."`, read without a full TOML parse so that a
/// scenario format change can never stop a report from rendering.
fn scenario_name(dir: &Path) -> String {
    let from_toml = fs::read_to_string(dir.join(table::SCENARIO))
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
