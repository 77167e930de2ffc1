//! `latency-<mode>.hlog`: the histograms of one mode as an HdrHistogram interval log,
//! the standard format other tools read (HdrHistogram's `HistogramLogProcessor`,
//! HdrHistogramVisualizer, `hdr-plot`): a `#[StartTime: ...]` and `#[BaseTime: ...]`
//! header, then one `Tag=...,start,length,max,base64(V2+DEFLATE histogram)` line per
//! interval. Each second of the mode is one interval tagged `all` (every step's
//! latency of the requests that ended in it); then each journey step's whole-run
//! histogram is one interval covering the mode, tagged `step:<name>`. Values are
//! microseconds (the max column in milliseconds: a max-value divisor of 1000). The one
//! writer ([`write_hlog`]) and the one reader ([`read_hlog`]), both on the hdrhistogram
//! crate's `interval_log` module.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

/// The tag of the per-second intervals.
pub const ALL_TAG: &str = "all";

/// The file name of `mode`'s interval log.
pub fn hlog_file(mode: &str) -> String {
    format!("latency-{mode}.hlog")
}

/// The tag of a step's whole-run interval (a tag holds no ',' nor space).
pub fn step_tag(step: &str) -> String {
    let clean: String = step
        .chars()
        .map(|c| {
            if c == ',' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("step:{clean}")
}

/// What one interval log holds.
#[derive(Debug, Clone)]
pub struct IntervalLog {
    /// Wall-clock second 0 of the mode.
    pub start: SystemTime,
    /// (second, histogram of the requests that ended in it), in order.
    pub seconds: Vec<(u32, Histogram<u64>)>,
    /// (step name as tagged, histogram over the whole mode).
    pub steps: Vec<(String, Histogram<u64>)>,
    /// The mode's length, which the step intervals cover.
    pub length: Duration,
}

/// Why an interval log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: not an interval log: {why}")]
    Format { path: String, why: String },
}

/// Writes `log` as `dir/latency-<mode>.hlog`.
pub fn write_hlog(dir: &Path, mode: &str, log: &IntervalLog) -> io::Result<()> {
    let text = hlog_bytes(log)?;
    std::fs::write(dir.join(hlog_file(mode)), text)
}

/// The interval-log bytes of `log`.
pub fn hlog_bytes(log: &IntervalLog) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("Stampede loadgen latency, microseconds; tag `all` = one interval per second, `step:<name>` = the whole mode")
        .with_start_time(log.start)
        .with_base_time(log.start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut out, &mut serializer)?;
    let fail = |e| io::Error::other(format!("interval log: {e:?}"));
    for (second, h) in &log.seconds {
        writer
            .write_histogram(
                h,
                Duration::from_secs(u64::from(*second)),
                Duration::from_secs(1),
                Tag::new(ALL_TAG),
            )
            .map_err(fail)?;
    }
    for (step, h) in &log.steps {
        let tag = step_tag(step);
        writer
            .write_histogram(h, Duration::ZERO, log.length, Tag::new(&tag))
            .map_err(fail)?;
    }
    drop(writer);
    Ok(out)
}

/// Reads `dir/latency-<mode>.hlog` back.
pub fn read_hlog(dir: &Path, mode: &str) -> Result<IntervalLog, HlogError> {
    let path = dir.join(hlog_file(mode));
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|source| HlogError::Io {
        path: shown.clone(),
        source,
    })?;
    parse_hlog(&bytes).map_err(|why| HlogError::Format { path: shown, why })
}

/// Parses interval-log bytes; the error says what was wrong.
pub fn parse_hlog(bytes: &[u8]) -> Result<IntervalLog, String> {
    let mut log = IntervalLog {
        start: UNIX_EPOCH,
        seconds: Vec::new(),
        steps: Vec::new(),
        length: Duration::ZERO,
    };
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|e| format!("{e:?}"))? {
            LogEntry::StartTime(t) => log.start = UNIX_EPOCH + t,
            LogEntry::BaseTime(_) => {}
            LogEntry::Interval(i) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .map_err(|e| format!("bad base64: {e}"))?;
                let h: Histogram<u64> = deserializer
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| format!("bad histogram: {e:?}"))?;
                match i.tag().map(|t| t.as_str()) {
                    Some(ALL_TAG) => log.seconds.push((i.start_timestamp().as_secs() as u32, h)),
                    Some(tag) if tag.starts_with("step:") => {
                        log.length = log.length.max(i.duration());
                        log.steps.push((tag["step:".len()..].to_string(), h));
                    }
                    other => return Err(format!("unexpected interval tag {other:?}")),
                }
            }
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for v in values {
            h.record(*v).expect("in range");
        }
        h
    }

    #[test]
    fn round_trips_through_the_standard_format() {
        let start = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        let log = IntervalLog {
            start,
            seconds: vec![(0, hist(&[100, 200])), (2, hist(&[5_000, 1_500_000]))],
            steps: vec![
                ("browse".into(), hist(&[100, 5_000])),
                ("buy".into(), hist(&[200])),
            ],
            length: Duration::from_secs(3),
        };
        let bytes = hlog_bytes(&log).expect("write");
        let text = String::from_utf8(bytes.clone()).expect("text");
        assert!(text.contains("#[StartTime: 1800000000.123"), "{text}");
        assert!(text.contains("#[BaseTime: 1800000000.123"), "{text}");
        // start, length, max (ms, divisor 1000), then the base64 histogram.
        assert!(text.contains("Tag=all,2.000,1.000,1500.159,"), "{text}");
        assert!(text.contains("Tag=step:buy,0.000,3.000,"), "{text}");
        let back = parse_hlog(&bytes).expect("read");
        assert_eq!(back.start, start);
        assert_eq!(back.seconds.len(), 2);
        assert_eq!(back.seconds[1].0, 2);
        assert_eq!(back.seconds[1].1.len(), 2);
        assert_eq!(back.seconds[1].1.max(), log.seconds[1].1.max());
        assert_eq!(back.steps[0].0, "browse");
        assert_eq!(back.steps[1].1.len(), 1);
        assert_eq!(back.length, Duration::from_secs(3));
    }

    #[test]
    fn a_damaged_log_is_refused() {
        let log = IntervalLog {
            start: UNIX_EPOCH,
            seconds: vec![(0, hist(&[100]))],
            steps: Vec::new(),
            length: Duration::ZERO,
        };
        let text = String::from_utf8(hlog_bytes(&log).expect("write")).expect("text");
        let broken = text.replace("Tag=all,0.000,1.000,0.100,", "Tag=all,0.000,1.000,0.100,!!");
        assert!(parse_hlog(broken.as_bytes()).is_err());
    }
}
