//! One segment's mode while it runs, as `run::mode` sees it: [`Session::begin`] agrees
//! the start (waiting for a release if asked), writes `segment.json` saying the load
//! began, and puts the snapshot stream through [`record::tee`]; [`Session::finish`]
//! writes the `.hlog` interval log from that stream and marks the record finished.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::SegmentRun;
use super::record::{self, SegmentRecord};
use super::start::{self, Resolved};
use crate::engine::snapshot::Message;
use crate::engine::timeline::Timeline;
use crate::plan::RunPlan;
use crate::runfolder::hlog;

/// A segment's start, agreed before its generators start.
pub struct Agreed {
    pub resolved: Resolved,
}

impl Agreed {
    /// Waits for the agreed start of `seg` (a release, or an instant).
    pub async fn wait(seg: &SegmentRun, plan: &RunPlan) -> Result<Agreed, String> {
        // Local shard processes need a moment to start (as `run::generators` allows).
        let lead = if plan.load.processes() > 1 {
            Duration::from_millis(1500)
        } else {
            Duration::from_millis(50)
        };
        let resolved = seg
            .start
            .resolve(lead, seg.segment.index)
            .await
            .map_err(|e| format!("segment {}: {e}", seg.segment))?;
        Ok(Agreed { resolved })
    }

    /// The run's nonce: the agreed instant, the same in every segment.
    pub fn nonce(&self) -> u64 {
        start::unix_ms(self.resolved.agreed)
    }

    pub fn t0(&self) -> Instant {
        self.resolved.t0
    }
}

/// A segment's mode between the start of its generators and their end.
pub struct Session {
    record: SegmentRecord,
    dir: PathBuf,
    tee: JoinHandle<std::io::Result<()>>,
}

/// What a segment says about itself when its generators have started.
pub struct Begin<'a> {
    pub seg: &'a SegmentRun,
    pub agreed: &'a Agreed,
    pub plan: &'a RunPlan,
    pub dir: &'a Path,
    pub mode: &'a str,
    pub target: String,
    pub sources: usize,
    pub processes: u32,
}

impl Session {
    /// Writes the unfinished record and tees `rx` into the snapshot stream.
    pub fn begin(
        b: Begin<'_>,
        rx: mpsc::UnboundedReceiver<Message>,
    ) -> Result<(Session, mpsc::UnboundedReceiver<Message>), String> {
        let r = &b.agreed.resolved;
        let clock_at_start = r.clock_at_t0();
        let clock_offset_ms = r.clock_offset.map(|d| {
            let ms = d.as_millis() as i64;
            if r.clock_behind { -ms } else { ms }
        });
        let on_reference = record::diff_ms(clock_at_start, r.agreed) - clock_offset_ms.unwrap_or(0);
        let record = SegmentRecord {
            index: b.seg.segment.index,
            count: b.seg.segment.count,
            mode: b.mode.to_string(),
            users_planned: b.plan.load.users,
            sources: b.sources,
            processes: b.processes,
            chaos: b.seg.chaos,
            target: b.target,
            nonce: b.agreed.nonce(),
            agreed_start_unix_ms: start::unix_ms(r.agreed),
            clock_at_start_unix_ms: start::unix_ms(clock_at_start),
            clock_offset_ms,
            start_offset_ms: on_reference,
            finished: false,
        };
        let fail =
            |e: std::io::Error| format!("segment {}: cannot write its record: {e}", b.seg.segment);
        record.write(b.dir).map_err(fail)?;
        let (rx, tee) =
            record::tee(rx, b.dir.join(record::snapshots_file(b.mode))).map_err(fail)?;
        Ok((
            Session {
                record,
                dir: b.dir.to_path_buf(),
                tee,
            },
            rx,
        ))
    }

    /// After the generators ended: the interval log, and the record marked finished
    /// when the load ran to its end (`complete`; not when it was stopped early).
    pub async fn finish(mut self, data: &Timeline, complete: bool) -> Result<(), String> {
        let fail = |e: String| format!("segment {}/{}: {e}", self.record.index, self.record.count);
        // The writer ends when the last generator lets go of the stream; every line is
        // already flushed, so one that lingers is not waited for long.
        match tokio::time::timeout(Duration::from_secs(5), &mut self.tee).await {
            Ok(Ok(Err(e))) => return Err(fail(format!("cannot write its snapshots: {e}"))),
            Ok(Err(e)) => return Err(fail(format!("snapshot writer failed: {e}"))),
            Ok(Ok(Ok(()))) | Err(_) => self.tee.abort(),
        }
        let messages = record::read_snapshots(&self.dir, &self.record.mode).map_err(fail)?;
        let start =
            std::time::UNIX_EPOCH + Duration::from_millis(self.record.clock_at_start_unix_ms);
        let log = record::interval_log(
            &messages,
            start,
            &data.steps,
            Duration::from_secs_f64(data.fin.duration_s),
        );
        hlog::write_hlog(&self.dir, &self.record.mode, &log)
            .map_err(|e| fail(format!("cannot write its interval log: {e}")))?;
        self.record.finished = complete;
        self.record
            .write(&self.dir)
            .map_err(|e| fail(format!("cannot write its record: {e}")))
    }
}
