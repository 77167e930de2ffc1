//! `loadgen compare A B`: two runs side by side. A and B are run folders (holding
//! summary.json) or run ids of the history. Every figure of both runs' summary.json
//! (each mode's modes.csv figures, each mode and step's summary.csv figures, the
//! thresholds' measured values) is listed with its change from A to B; both runs'
//! latency distributions are overlaid on one PNG; the same page is written as
//! `compare.md` and `compare.html` into the output folder (default
//! `reports/compare/<A>-vs-<B>/`). Which figure is better higher or lower is not
//! guessed: the change is shown, the gate judges.

mod page;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::history::{History, HistoryError};
use crate::plan::threshold::Metric;
use crate::report::ReportError;
use crate::report::chart::overlay;
use crate::runfolder::read_hgrm;
use crate::runfolder::summary_json::{RunSummary, SummaryError};

/// One side of a comparison.
pub struct Side {
    /// "A" or "B".
    pub label: &'static str,
    /// What the user named.
    pub name: String,
    pub summary: RunSummary,
    /// Its run folder, when it still exists (for the latency distributions).
    pub folder: Option<PathBuf>,
}

/// One figure of both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `modes`, a step of the summary (`all`...), or `thresholds`.
    pub group: String,
    pub mode: String,
    pub figure: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Row {
    /// B - A, and the relative change when A is not zero.
    pub fn change(&self) -> Option<(f64, Option<f64>)> {
        let (a, b) = (self.a?, self.b?);
        Some((b - a, (a != 0.0).then(|| (b - a) / a * 100.0)))
    }
}

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{name}: {source}")]
    Summary { name: String, source: SummaryError },
    #[error("{0}: neither a run folder with summary.json nor a run id of the history")]
    Unknown(String),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Chart(#[from] ReportError),
    #[error("cannot write {}: {source}", file.display())]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
}

impl CompareError {
    /// Bad input (exit 2) rather than a failure of loadgen (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CompareError::Unknown(_) | CompareError::Summary { .. }
        )
    }
}

/// The files a comparison wrote.
pub struct Compared {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub chart: Option<PathBuf>,
    /// The Markdown, also printed.
    pub text: String,
}

/// `loadgen compare A B`: finds both runs (folders, or ids of the history at
/// `history`) and writes the comparison into `out` (default
/// `reports/compare/<A>-vs-<B>/`).
pub fn command(
    a: &str,
    b: &str,
    out: Option<PathBuf>,
    history: &Path,
) -> Result<Compared, CompareError> {
    let opened = History::open_existing(history)?;
    let a = resolve("A", a, opened.as_ref())?;
    let b = resolve("B", b, opened.as_ref())?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from("reports")
            .join("compare")
            .join(format!("{}-vs-{}", a.summary.run_id, b.summary.run_id))
    });
    write(&a, &b, &out)
}

/// Finds run `name`: a folder with summary.json, else a run id of `history`.
pub fn resolve(
    label: &'static str,
    name: &str,
    history: Option<&History>,
) -> Result<Side, CompareError> {
    let dir = Path::new(name);
    if dir.is_dir() {
        let summary = RunSummary::read(dir).map_err(|source| CompareError::Summary {
            name: name.to_string(),
            source,
        })?;
        return Ok(Side {
            label,
            name: name.to_string(),
            summary,
            folder: Some(dir.to_path_buf()),
        });
    }
    let Some(h) = history else {
        return Err(CompareError::Unknown(name.to_string()));
    };
    let summary = h
        .run(name)?
        .ok_or_else(|| CompareError::Unknown(name.to_string()))?;
    let folder = h.folder_of(name)?.map(PathBuf::from).filter(|f| f.is_dir());
    Ok(Side {
        label,
        name: name.to_string(),
        summary,
        folder,
    })
}

/// Every figure of both runs, A's order first, then what only B has.
pub fn rows(a: &RunSummary, b: &RunSummary) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    let mut push = |group: &str, mode: &str, figure: &str, value: Option<f64>, is_a: bool| match out
        .iter_mut()
        .find(|r| r.group == group && r.mode == mode && r.figure == figure)
    {
        Some(r) if is_a => r.a = value,
        Some(r) => r.b = value,
        None => out.push(Row {
            group: group.to_string(),
            mode: mode.to_string(),
            figure: figure.to_string(),
            a: value.filter(|_| is_a),
            b: value.filter(|_| !is_a),
        }),
    };
    for (run, is_a) in [(a, true), (b, false)] {
        for m in &run.modes {
            for (k, v) in numbers(m) {
                push("modes", text(m, "mode"), k, v, is_a);
            }
        }
        for s in &run.summary {
            for (k, v) in numbers(s) {
                push(text(s, "step"), text(s, "mode"), k, v, is_a);
            }
        }
        for t in &run.thresholds {
            push("thresholds", "", &t.threshold, t.actual, is_a);
        }
    }
    out
}

fn text<'a>(row: &'a Map<String, Value>, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

fn numbers(row: &Map<String, Value>) -> impl Iterator<Item = (&str, Option<f64>)> {
    row.iter().filter_map(|(k, v)| match v {
        Value::Number(n) => Some((k.as_str(), n.as_f64())),
        Value::Null => Some((k.as_str(), None)),
        _ => None,
    })
}

/// Writes the comparison of `a` and `b` into `out`.
pub fn write(a: &Side, b: &Side, out: &Path) -> Result<Compared, CompareError> {
    std::fs::create_dir_all(out).map_err(|source| CompareError::Write {
        file: out.to_path_buf(),
        source,
    })?;
    let rows = rows(&a.summary, &b.summary);
    let chart = draw_chart(a, b, out)?;
    let text = page::markdown(a, b, &rows, chart.is_some());
    let html = page::html(a, b, &rows, chart.is_some());
    let write = |name: &str, body: &str| {
        let file = out.join(name);
        std::fs::write(&file, body)
            .map(|()| file.clone())
            .map_err(|source| CompareError::Write { file, source })
    };
    Ok(Compared {
        markdown: write("compare.md", &text)?,
        html: write("compare.html", &html)?,
        chart,
        text,
    })
}

/// The overlaid distributions, when both folders still have their .hgrm files.
fn draw_chart(a: &Side, b: &Side, out: &Path) -> Result<Option<PathBuf>, CompareError> {
    let mut modes: Vec<String> = Vec::new();
    for side in [a, b] {
        for m in &side.summary.modes {
            let name = text(m, "mode").to_string();
            if !modes.contains(&name) {
                modes.push(name);
            }
        }
    }
    let mut loaded = Vec::new();
    for side in [a, b] {
        let Some(folder) = &side.folder else { continue };
        for (i, mode) in modes.iter().enumerate() {
            if let Ok(Some(points)) = read_hgrm(folder, mode) {
                let p99 = side.summary.figure(mode, None, Metric::P99);
                loaded.push((side.label, mode.as_str(), i, points, p99));
            }
        }
    }
    if loaded.is_empty() {
        return Ok(None);
    }
    let curves: Vec<overlay::Curve> = loaded
        .iter()
        .map(|(run, mode, i, points, p99)| overlay::Curve {
            run,
            mode,
            mode_index: *i,
            points,
            p99_ms: *p99,
        })
        .collect();
    let path = out.join(overlay::FILE);
    let subtitle = format!(
        "A: {} (run {}), B: {} (run {}); pale thin lines are A, bold lines B, one colour per mode",
        a.name, a.summary.run_id, b.name, b.summary.run_id
    );
    overlay::draw(&path, &subtitle, &curves)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_is_b_minus_a_and_relative_only_from_a_non_zero_a() {
        let row = |a, b| Row {
            group: "all".into(),
            mode: "m".into(),
            figure: "p99_ms".into(),
            a,
            b,
        };
        assert_eq!(
            row(Some(10.0), Some(15.0)).change(),
            Some((5.0, Some(50.0)))
        );
        assert_eq!(row(Some(0.0), Some(3.0)).change(), Some((3.0, None)));
        assert_eq!(row(None, Some(3.0)).change(), None);
    }
}
