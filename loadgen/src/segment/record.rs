//! What a segment leaves besides its ordinary run folder, for `loadgen merge`:
//! `segment.json` ([`SegmentRecord`]: which segment, how many users, the agreed start,
//! this host's clock at its second 0 and the measured offsets, whether it finished) and
//! `snapshots-<mode>.jsonl`, every snapshot its generators sent, one JSON line each, in
//! the same format local shard processes stream to their parent ([`tee`] writes it
//! while the mode runs; [`read_snapshots`] reads it back). The record is written once
//! when the load starts (`finished: false`) and again at the end: a segment killed
//! mid-run leaves `finished: false` behind, which the merge refuses by name. Also the
//! per-second and per-step histograms of a message stream as an interval log
//! ([`interval_log`]), for the `.hlog` file of a segment and of a merged run.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::engine::snapshot::{Hist, Message};
use crate::runfolder::hlog::IntervalLog;

/// The file name of a segment's record.
pub const RECORD_FILE: &str = "segment.json";

/// The file name of a mode's snapshot stream.
pub fn snapshots_file(mode: &str) -> String {
    format!("snapshots-{mode}.jsonl")
}

/// One segment's account of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub index: u32,
    pub count: u32,
    pub mode: String,
    /// Users of the plan this segment owns.
    pub users_planned: u64,
    /// Snapshot sources (runtime threads of every local process): a second is whole
    /// once each has reported it.
    pub sources: usize,
    pub processes: u32,
    /// Whether this segment acted on the server (chaos rules).
    pub chaos: bool,
    /// The target as `host:port`.
    pub target: String,
    /// First part of every idempotency key of the run: the same in every segment.
    pub nonce: u64,
    pub agreed_start_unix_ms: u64,
    /// This host's clock at its second 0.
    pub clock_at_start_unix_ms: u64,
    /// This host's clock minus the starter's, measured at a release; `None` with
    /// `--start-at` (the clocks are trusted).
    pub clock_offset_ms: Option<i64>,
    /// How late this segment's second 0 was against the agreed instant, on the
    /// reference clock: (clock at second 0 - clock offset) - agreed start.
    pub start_offset_ms: i64,
    pub finished: bool,
}

impl SegmentRecord {
    /// Whole seconds the merge moves this segment's seconds by: its start offset,
    /// rounded (a segment whose second 0 came 1.2 s late holds merged second 1 in its
    /// own second 0). Sub-second offsets cannot be re-binned and are recorded only.
    pub fn second_shift(&self) -> i64 {
        (self.start_offset_ms as f64 / 1000.0).round() as i64
    }

    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(tmp, dir.join(RECORD_FILE))
    }

    pub fn read(dir: &Path) -> Result<SegmentRecord, String> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Signed milliseconds between two instants: `a - b`.
pub fn diff_ms(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Copies every message of `rx` into `path` (one JSON line each) and passes it on.
/// The task ends, flushing the file, when `rx` closes; it returns the first write
/// error (the messages still pass on).
pub fn tee(
    mut rx: mpsc::UnboundedReceiver<Message>,
    path: PathBuf,
) -> io::Result<(mpsc::UnboundedReceiver<Message>, JoinHandle<io::Result<()>>)> {
    let file = std::fs::File::create(&path)?;
    let (tx, out) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut w = io::BufWriter::new(file);
        let mut failed = None;
        while let Some(m) = rx.recv().await {
            if failed.is_none() {
                let line = serde_json::to_string(&m).map_err(io::Error::other);
                // Flushed per message: a segment killed mid-run keeps what it saw.
                if let Err(e) = line.and_then(|l| writeln!(w, "{l}").and_then(|_| w.flush())) {
                    failed = Some(e);
                }
            }
            let _ = tx.send(m);
        }
        failed.map_or(Ok(()), Err)
    });
    Ok((out, task))
}

/// Reads a snapshot stream back; the error names the file and line.
pub fn read_snapshots(dir: &Path, mode: &str) -> Result<Vec<Message>, String> {
    let path = dir.join(snapshots_file(mode));
    let file =
        std::fs::File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let m = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        out.push(m);
    }
    Ok(out)
}

/// The interval log of a message stream: each second's histogram (every source's
/// merged), each step's whole-run histogram from the final snapshots.
pub fn interval_log<'a>(
    messages: impl IntoIterator<Item = &'a Message>,
    start: SystemTime,
    steps: &[String],
    length: Duration,
) -> IntervalLog {
    let mut seconds: std::collections::BTreeMap<u32, Hist> = Default::default();
    let mut step_hists: Vec<Hist> = steps.iter().map(|_| Hist::new()).collect();
    for m in messages {
        match m {
            Message::Second(s) => seconds.entry(s.second).or_default().merge(&s.hist),
            Message::Final(f) => {
                for (a, h) in step_hists.iter_mut().zip(&f.step_hists) {
                    a.merge(h);
                }
            }
        }
    }
    IntervalLog {
        start,
        seconds: seconds.into_iter().map(|(s, h)| (s, h.0)).collect(),
        steps: steps
            .iter()
            .cloned()
            .zip(step_hists.into_iter().map(|h| h.0))
            .collect(),
        length,
    }
}
