//! The segment folders a merge is given, checked before anything is merged: each holds
//! a `segment.json`; together they are segments 0..N of one run (one count, one mode,
//! one nonce, one scenario text), each exactly once; each finished, and none started
//! later than the limit after the agreed instant. Every refusal names the segment
//! (and its folder), so whoever runs the merge knows which host to look at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::segment::record::SegmentRecord;

/// One segment folder, its record and its scenario text.
#[derive(Debug, Clone)]
pub struct SegmentDir {
    pub dir: PathBuf,
    pub record: SegmentRecord,
    pub scenario: String,
}

impl SegmentDir {
    pub fn name(&self) -> String {
        format!(
            "segment {}/{} ({})",
            self.record.index,
            self.record.count,
            self.dir.display()
        )
    }
}

/// Why the given folders are not one whole, finished, segmented run.
#[derive(Debug, thiserror::Error)]
pub enum SegmentsError {
    #[error("no segment folders given")]
    None,
    #[error("{dir}: not a segment's run folder: {why}")]
    NotASegment { dir: String, why: String },
    #[error("segment {index}/{count} is missing (given: {given})")]
    Missing {
        index: u32,
        count: u32,
        given: String,
    },
    #[error("segment {index}/{count} is given twice: {first} and {second}")]
    Twice {
        index: u32,
        count: u32,
        first: String,
        second: String,
    },
    #[error(
        "{name} did not finish (killed, stopped early, failed or still running): its users are unaccounted for"
    )]
    Unfinished { name: String },
    #[error("{name} started {late_ms} ms after the agreed instant (limit {limit_ms} ms)")]
    Late {
        name: String,
        late_ms: i64,
        limit_ms: u128,
    },
    #[error("{name} belongs to another run than segment 0/{count}: {what} differs")]
    OtherRun {
        name: String,
        count: u32,
        what: &'static str,
    },
}

/// Reads every folder's record and checks that they make one whole run; returns the
/// segments in index order.
pub fn read_all(dirs: &[PathBuf], late_limit: Duration) -> Result<Vec<SegmentDir>, SegmentsError> {
    let mut found: Vec<SegmentDir> = Vec::new();
    for dir in dirs {
        found.push(read_one(dir)?);
    }
    check(found, late_limit)
}

fn read_one(dir: &Path) -> Result<SegmentDir, SegmentsError> {
    let not = |why: String| SegmentsError::NotASegment {
        dir: dir.display().to_string(),
        why,
    };
    let record = SegmentRecord::read(dir).map_err(not)?;
    let scenario = std::fs::read_to_string(dir.join("scenario.toml"))
        .map_err(|e| not(format!("cannot read its scenario.toml: {e}")))?;
    Ok(SegmentDir {
        dir: dir.to_path_buf(),
        record,
        scenario,
    })
}

/// The checks of [`read_all`] on records already read.
pub fn check(
    mut found: Vec<SegmentDir>,
    late_limit: Duration,
) -> Result<Vec<SegmentDir>, SegmentsError> {
    let Some(first) = found.first() else {
        return Err(SegmentsError::None);
    };
    let count = first.record.count;
    found.sort_by_key(|s| s.record.index);
    for pair in found.windows(2) {
        if pair[0].record.index == pair[1].record.index {
            return Err(SegmentsError::Twice {
                index: pair[0].record.index,
                count,
                first: pair[0].dir.display().to_string(),
                second: pair[1].dir.display().to_string(),
            });
        }
    }
    let given: Vec<String> = found
        .iter()
        .map(|s| format!("{}/{}", s.record.index, s.record.count))
        .collect();
    for index in 0..count {
        if !found.iter().any(|s| s.record.index == index) {
            return Err(SegmentsError::Missing {
                index,
                count,
                given: given.join(", "),
            });
        }
    }
    let reference = found[0].clone();
    for s in &found {
        let differs = if s.record.count != count {
            Some("the segment count")
        } else if s.record.mode != reference.record.mode {
            Some("the mode")
        } else if s.record.nonce != reference.record.nonce {
            Some("the agreed start (nonce)")
        } else if s.scenario != reference.scenario {
            Some("the scenario text")
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(SegmentsError::OtherRun {
                name: s.name(),
                count,
                what,
            });
        }
        if !s.record.finished {
            return Err(SegmentsError::Unfinished { name: s.name() });
        }
        if s.record.start_offset_ms > late_limit.as_millis() as i64 {
            return Err(SegmentsError::Late {
                name: s.name(),
                late_ms: s.record.start_offset_ms,
                limit_ms: late_limit.as_millis(),
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(index: u32, count: u32) -> SegmentDir {
        SegmentDir {
            dir: PathBuf::from(format!("runs/seg-{index}")),
            record: SegmentRecord {
                index,
                count,
                mode: "cluster".into(),
                users_planned: 10,
                sources: 1,
                processes: 1,
                chaos: index == 0,
                target: "127.0.0.1:1".into(),
                nonce: 7,
                agreed_start_unix_ms: 1_000,
                clock_at_start_unix_ms: 1_000,
                clock_offset_ms: None,
                start_offset_ms: 0,
                finished: true,
            },
            scenario: "name = \"x\"".into(),
        }
    }

    const LIMIT: Duration = Duration::from_secs(5);

    #[test]
    fn a_whole_run_in_any_order_passes() {
        let ok = check(vec![seg(2, 3), seg(0, 3), seg(1, 3)], LIMIT).expect("whole");
        assert_eq!(
            ok.iter().map(|s| s.record.index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn each_refusal_names_the_segment() {
        let e = check(vec![seg(0, 3), seg(2, 3)], LIMIT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment 1/3 is missing"), "{e}");
        let e = check(vec![seg(0, 2), seg(0, 2), seg(1, 2)], LIMIT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment 0/2 is given twice"), "{e}");
        let mut killed = seg(1, 2);
        killed.record.finished = false;
        let e = check(vec![seg(0, 2), killed], LIMIT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment 1/2 (runs/seg-1) did not finish"), "{e}");
        let mut late = seg(1, 2);
        late.record.start_offset_ms = 7_250;
        let e = check(vec![seg(0, 2), late], LIMIT).unwrap_err().to_string();
        assert!(
            e.contains("segment 1/2 (runs/seg-1) started 7250 ms after"),
            "{e}"
        );
        let mut other = seg(1, 2);
        other.record.nonce = 8;
        let e = check(vec![seg(0, 2), other], LIMIT)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("segment 1/2 (runs/seg-1) belongs to another run"),
            "{e}"
        );
    }
}
