//! The report renderer: turns a run directory's CSV and `.hgrm` files (the file
//! contract of `reports/README.md`) into four PNG charts, `report.md` and a
//! self-contained `index.html`, all written into the same directory.
//!
//! It owns loading those files into one [`RunData`] ([`data`], through the row types
//! of [`crate::runfolder`], which also writes them), the comparison-table numbers
//! ([`compare`]), the charts ([`chart`]) and the pages ([`page`]). It never runs load
//! and never writes the CSV files. Everything it needs is on disk, so a run directory
//! copied to another machine renders the same.

mod attribution;
pub(crate) mod chart;
pub(crate) mod compare;
pub(crate) mod data;
pub(crate) mod fmt;
mod page;
mod recovery;

use std::path::{Path, PathBuf};

pub use data::RunData;

use crate::runfolder::ReadError;

/// What went wrong while rendering; every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run folder could not be read (a file missing, a bad row): its own words.
    #[error(transparent)]
    Folder(#[from] ReadError),
    #[error("{}: no mode rows, nothing to report", file.display())]
    NoModes { file: PathBuf },
    #[error("cannot register the embedded font: {0}")]
    Font(String),
    #[error("cannot draw {}: {message}", file.display())]
    Chart { file: PathBuf, message: String },
    #[error("cannot write {}: {source}", file.display())]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// A chart written by [`render`], with its pixel size.
#[derive(Debug, Clone)]
pub struct ChartFile {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// The chart's title, also its alt text on the pages.
    pub title: String,
    /// What to read in the chart, shown under it on the pages.
    pub caption: String,
}

/// The files [`render`] wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub charts: Vec<ChartFile>,
    pub markdown: PathBuf,
    pub html: PathBuf,
}

/// Render the report of the run in `run_dir`: read its CSV and `.hgrm` files, write
/// `latency.png`, `throughput.png`, `percentiles.png`, `workers.png`, `report.md` and
/// `index.html` beside them. Re-rendering overwrites those files and nothing else.
pub fn render(run_dir: &Path) -> Result<Rendered, ReportError> {
    let run = data::load(run_dir)?;
    let facts = compare::compute(&run);
    let charts = chart::draw_all(&run)?;
    let (markdown, html) = page::write(&run, &facts, &charts)?;
    Ok(Rendered {
        charts,
        markdown,
        html,
    })
}
