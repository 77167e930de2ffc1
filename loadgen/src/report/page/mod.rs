//! The two pages, `report.md` and `index.html`. [`content`] decides what the report
//! says, as a small document model ([`Block`]); [`markdown`] and [`html`] only render
//! that model, so both pages always say the same thing.

mod comparison;
mod content;
mod html;
mod markdown;
mod stock;

use std::fs;
use std::path::{Path, PathBuf};

use super::compare::ModeFacts;
use super::{ChartFile, ReportError, RunData};

/// How a cell or phrase should read: good news, bad news, neutral, or a total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Bad,
    Muted,
    /// A total row's label: bold, neither good nor bad.
    Strong,
}

/// A run of text inside a paragraph or cell.
#[derive(Debug, Clone)]
pub enum Span {
    Text(String),
    Strong(String),
    Code(String),
    Toned(Tone, String),
}

/// Plain text.
pub fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

/// Text in which `backticked` words are code, as in the definitions of
/// [`crate::report::compare::DEFINITIONS`].
pub fn rich(text: &str) -> Vec<Span> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| {
            if i % 2 == 1 {
                Span::Code(part.to_string())
            } else {
                Span::Text(part.to_string())
            }
        })
        .collect()
}

/// One table cell.
#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
    /// Numbers are right-aligned.
    pub numeric: bool,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: Tone::Plain,
            numeric: false,
        }
    }
    pub fn num(text: impl Into<String>) -> Self {
        Self {
            numeric: true,
            ..Self::text(text)
        }
    }
    pub fn tone(mut self, tone: Tone) -> Self {
        self.tone = tone;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    pub head: Vec<Cell>,
    pub rows: Vec<Vec<Cell>>,
}

/// The document model both pages render.
#[derive(Debug, Clone)]
pub enum Block {
    Heading(u8, String),
    Para(Vec<Span>),
    Table(Table),
    /// Term and its definition.
    Definitions(Vec<(String, Vec<Span>)>),
    Bullets(Vec<Vec<Span>>),
    Figure {
        /// File name, relative to the page.
        src: String,
        alt: String,
        caption: String,
        width: u32,
        height: u32,
    },
}

/// Write `report.md` and `index.html` into the run directory.
pub fn write(
    run: &RunData,
    facts: &[ModeFacts],
    charts: &[ChartFile],
) -> Result<(PathBuf, PathBuf), ReportError> {
    let title = format!("Stampede report: {}", run.scenario);
    let blocks = content::build(run, facts, charts);
    let md = run.dir.join("report.md");
    let index = run.dir.join("index.html");
    write_file(&md, &markdown::render(&title, &blocks))?;
    write_file(&index, &html::render(&title, &blocks))?;
    Ok((md, index))
}

fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    fs::write(path, text).map_err(|source| ReportError::Write {
        file: path.to_path_buf(),
        source,
    })
}
