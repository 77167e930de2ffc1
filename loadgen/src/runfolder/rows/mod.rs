//! One row type per CSV file of the run folder, the single description of each file's
//! columns (reports/README.md explains them): the engine's writer fills them, the
//! report reads them back, the synthetic example writes through them. Field order is
//! column order; [`cells`] fixes how numbers are written. Depends only on the outcome
//! classes and event kinds, so the engine can keep its per-second rows as [`SecondRow`].

mod cells;
mod columns;
mod counted;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::table::{self, Table};
use crate::observe::events::Kind;

pub use cells::Ms;
pub use counted::{SecondRow, SummaryRow};

/// `modes.csv`: facts about one mode's run as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModeRow {
    pub mode: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    #[serde(serialize_with = "cells::three_decimals")]
    pub duration_s: f64,
    pub users_planned: u64,
    pub users_started: u64,
    pub users_completed: u64,
    pub users_aborted: u64,
    /// Still walking when the run was cut off (newer columns, down to
    /// `generator_late`: a folder written before them reads as 0).
    #[serde(default)]
    pub users_cut: u64,
    /// Due after the cut-off, so never started.
    #[serde(default)]
    pub users_never_started: u64,
    pub loadgen_processes: u32,
    #[serde(serialize_with = "cells::three_decimals")]
    pub loadgen_cpu_s: f64,
    pub loadgen_peak_rss_kb: Option<u64>,
    pub start_lateness_p50_ms: Ms,
    pub start_lateness_p99_ms: Ms,
    pub start_lateness_max_ms: Ms,
    /// How late loadgen wrote each request against the instant it was due.
    #[serde(default)]
    pub send_lateness_p50_ms: Ms,
    #[serde(default)]
    pub send_lateness_p99_ms: Ms,
    #[serde(default)]
    pub send_lateness_max_ms: Ms,
    /// Requests written later than the scenario's `late_after`.
    #[serde(default)]
    pub generator_late: u64,
    /// Connections set up, and how long each setup took (TCP connect, and the TLS
    /// handshake for HTTPS), apart from request latency (newer columns).
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub connect_p50_ms: Ms,
    #[serde(default)]
    pub connect_p99_ms: Ms,
    #[serde(default)]
    pub connect_max_ms: Ms,
    /// `None`: no process watcher measured the server.
    #[serde(serialize_with = "cells::three_decimals_or_empty")]
    pub server_cpu_s: Option<f64>,
    pub server_peak_rss_kb: Option<u64>,
    pub deploy_strategy: String,
}

impl Table for ModeRow {
    const FILE: &'static str = table::MODES;
}

/// `workers.csv`: responses from one server process in one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    pub mode: String,
    pub second: u32,
    pub worker_pid: u32,
    pub version: String,
    pub responses: u64,
}

impl Table for WorkerRow {
    const FILE: &'static str = table::WORKERS;
}

/// What an `events.csv` row records: a kind the engine writes, or one this version
/// does not know (kept and listed, never charted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Known(Kind),
    Other(String),
}

impl EventKind {
    pub fn parse(s: &str) -> Self {
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

impl Default for EventKind {
    fn default() -> Self {
        Self::Other(String::new())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::parse(&s))
    }
}

/// `events.csv`: one chaos action or observed process change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// Seconds since the mode's load started.
    #[serde(serialize_with = "cells::three_decimals")]
    pub t_s: f64,
    pub mode: String,
    pub kind: EventKind,
    /// The engine writes 0 when no process is concerned; other writers leave it empty.
    pub pid: Option<u32>,
    #[serde(default)]
    pub detail: String,
}

impl Table for EventRow {
    const FILE: &'static str = table::EVENTS;
}

/// `invariants.csv`: one check of what the shop still holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvariantRow {
    pub mode: String,
    pub check: String,
    pub expected: String,
    pub actual: String,
    #[serde(deserialize_with = "cells::yes_or_no")]
    pub holds: bool,
    /// What the check compared, in words (newer columns: a folder written before them
    /// reads as empty).
    #[serde(default)]
    pub compared: String,
    /// How many items (orders, carts, products) it looked at.
    #[serde(default)]
    pub items: Option<u64>,
}

impl Table for InvariantRow {
    const FILE: &'static str = table::INVARIANTS;
}

/// `stock.csv`: one product's stock after a mode, as the audit view lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StockRow {
    pub mode: String,
    pub product: String,
    pub initial_stock: i64,
    pub stock: i64,
    /// Units in the server's order lines.
    pub sold: i64,
    /// Units shoppers were confirmed; empty when confirmations do not list items.
    pub promised: Option<i64>,
}

impl Table for StockRow {
    const FILE: &'static str = table::STOCK;
}

/// `thresholds.csv`: one CI-gate threshold, the measured value and the verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    pub threshold: String,
    pub actual: String,
    /// The `verdict` column: `pass` or `FAIL`.
    #[serde(rename = "verdict", with = "cells::pass_fail")]
    pub pass: bool,
}

impl Table for ThresholdRow {
    const FILE: &'static str = table::THRESHOLDS;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runfolder::table::{header_line, read_rows, write_rows};

    #[test]
    fn headers_are_the_documented_ones() {
        assert_eq!(
            header_line::<ModeRow>(),
            "mode,started_at,duration_s,users_planned,users_started,users_completed,\
             users_aborted,users_cut,users_never_started,loadgen_processes,loadgen_cpu_s,\
             loadgen_peak_rss_kb,start_lateness_p50_ms,start_lateness_p99_ms,\
             start_lateness_max_ms,send_lateness_p50_ms,send_lateness_p99_ms,\
             send_lateness_max_ms,generator_late,connections,connect_p50_ms,connect_p99_ms,\
             connect_max_ms,server_cpu_s,server_peak_rss_kb,deploy_strategy"
        );
        assert_eq!(
            header_line::<WorkerRow>(),
            "mode,second,worker_pid,version,responses"
        );
        assert_eq!(header_line::<EventRow>(), "t_s,mode,kind,pid,detail");
        assert_eq!(
            header_line::<InvariantRow>(),
            "mode,check,expected,actual,holds,compared,items"
        );
        assert_eq!(
            header_line::<StockRow>(),
            "mode,product,initial_stock,stock,sold,promised"
        );
        assert_eq!(header_line::<ThresholdRow>(), "threshold,actual,verdict");
    }

    #[test]
    fn rows_read_back_as_written() {
        let dir = std::env::temp_dir().join(format!("stampede-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let events = vec![
            EventRow {
                t_s: 1.5,
                mode: "cluster".into(),
                kind: EventKind::Known(Kind::Kill),
                pid: Some(42),
                detail: "SIGKILL, \"now\"".into(),
            },
            EventRow {
                t_s: 2.0,
                mode: "cluster".into(),
                kind: EventKind::parse("reboot"),
                pid: None,
                detail: String::new(),
            },
        ];
        let thresholds = vec![ThresholdRow {
            threshold: "cluster.p99 < 1s".into(),
            actual: "12.5ms".into(),
            pass: false,
        }];
        write_rows::<EventRow>(&dir, &events).expect("write events");
        write_rows::<ThresholdRow>(&dir, &thresholds).expect("write thresholds");
        write_rows::<InvariantRow>(&dir, Vec::<InvariantRow>::new()).expect("write none");
        let events_back: Vec<EventRow> = read_rows(&dir).expect("read events");
        let thresholds_back: Vec<ThresholdRow> = read_rows(&dir).expect("read thresholds");
        let invariants_back: Vec<InvariantRow> = read_rows(&dir).expect("read invariants");
        let empty = std::fs::read_to_string(dir.join(table::INVARIANTS)).expect("read file");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(events_back, events);
        assert_eq!(thresholds_back, thresholds);
        assert!(invariants_back.is_empty());
        assert_eq!(
            empty, "mode,check,expected,actual,holds,compared,items\n",
            "header alone"
        );
    }
}
