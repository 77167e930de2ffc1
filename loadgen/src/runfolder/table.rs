//! A run-folder CSV file as a table of typed rows: the file names, the [`Table`] trait
//! that ties a row type to its file, and [`write_rows`] / [`read_rows`] on top of the
//! `csv` crate. Owns the header line (written even when a file has no rows, taken from
//! the row type's own column names) and the read errors that name the file, line and
//! column of bad input. What a row holds and how its cells read is the row types'.

use std::borrow::Borrow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub const MODES: &str = "modes.csv";
pub const SUMMARY: &str = "summary.csv";
pub const TIMESERIES: &str = "timeseries.csv";
pub const WORKERS: &str = "workers.csv";
pub const EVENTS: &str = "events.csv";
pub const INVARIANTS: &str = "invariants.csv";
pub const STOCK: &str = "stock.csv";
pub const THRESHOLDS: &str = "thresholds.csv";
/// The verbatim copy of the scenario the run used.
pub const SCENARIO: &str = "scenario.toml";

/// A row type of one CSV file of the run folder. `Default` gives the header: csv names
/// the columns only while serializing a row, and a file with no rows keeps its header.
pub trait Table: Serialize + DeserializeOwned + Default {
    /// The file's name inside the run folder.
    const FILE: &'static str;
}

/// Why a run-folder file could not be read; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    #[error("{}, line {line}: {message}", file.display())]
    Csv {
        file: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}, line {line}: {message}", file.display())]
    Hgrm {
        file: PathBuf,
        line: u64,
        message: String,
    },
}

/// The header line of `R`'s file.
pub fn header<R: Table>() -> Result<csv::ByteRecord, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(R::default())?;
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(io::Error::other(e.to_string())))?;
    let mut record = csv::ByteRecord::new();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice())
        .read_byte_record(&mut record)?;
    Ok(record)
}

/// `R`'s header as one comma-separated line, for tests.
#[cfg(test)]
pub(crate) fn header_line<R: Table>() -> String {
    let record = header::<R>().expect("a default row serializes");
    let names: Vec<_> = record.iter().map(String::from_utf8_lossy).collect();
    names.join(",")
}

/// Writes `R::FILE` in `dir`: the header, then one line per row.
pub fn write_rows<R: Table>(
    dir: &Path,
    rows: impl IntoIterator<Item = impl Borrow<R>>,
) -> io::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(dir.join(R::FILE))
        .map_err(io::Error::other)?;
    w.write_byte_record(&header::<R>().map_err(io::Error::other)?)
        .map_err(io::Error::other)?;
    for row in rows {
        w.serialize(row.borrow()).map_err(io::Error::other)?;
    }
    w.flush()
}

/// Reads every row of `R::FILE` in `dir`. Columns are matched by name, so extra columns
/// a newer writer adds are ignored; a missing or malformed value is an error naming the
/// file, line and column.
pub fn read_rows<R: Table>(dir: &Path) -> Result<Vec<R>, ReadError> {
    let path = dir.join(R::FILE);
    let text = read_text(&path)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_error(&path, &e, None))?
        .clone();
    reader
        .deserialize()
        .map(|row| row.map_err(|e| csv_error(&path, &e, Some(&headers))))
        .collect()
}

/// [`read_rows`] for a file the run folder may lack: `None` when it is absent.
pub fn read_rows_if_present<R: Table>(dir: &Path) -> Result<Option<Vec<R>>, ReadError> {
    if dir.join(R::FILE).exists() {
        read_rows(dir).map(Some)
    } else {
        Ok(None)
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String, ReadError> {
    fs::read_to_string(path).map_err(|source| ReadError::Io {
        file: path.to_path_buf(),
        source,
    })
}

fn csv_error(path: &Path, err: &csv::Error, headers: Option<&csv::StringRecord>) -> ReadError {
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
    ReadError::Csv {
        file: path.to_path_buf(),
        line,
        message,
    }
}
