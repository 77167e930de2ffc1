//! The agreed start instant of a segmented run, and how each segment finds its own
//! second 0 from it. Two ways to agree:
//! - `--start-at T` (RFC 3339 or Unix milliseconds): every segment starts when its own
//!   clock reads T. The clocks are trusted to agree (NTP, as on Kubernetes nodes); a
//!   skew between them is a skew between the segments' seconds, and is not measured.
//! - `--start-file PATH`: a release. Each segment says it is waiting by creating
//!   `PATH.ready-I` (the starter releases once all N are there), then waits (polling,
//!   bounded) until PATH holds an instant. An instant still ahead by the segment's clock is waited for as with
//!   `--start-at`. An instant already past is the starter's "now": the release. Each
//!   segment then starts [`RELEASE_LEAD`] after it saw the file, and measures how far its
//!   own clock is from the starter's (its reading when it saw the file minus the
//!   instant written; an over-estimate by at most the poll interval and the shared
//!   storage's delay). That clock offset is recorded and `loadgen merge` removes it.
//!
//! [`clock_now`] is the one wall-clock reading of this module; `LOADGEN_TEST_CLOCK_SKEW_MS`
//! (tests only, undocumented for users) shifts it, to fake a host whose clock is off.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// How often a start file is looked for.
pub const POLL: Duration = Duration::from_millis(10);
/// A released segment's second 0 comes this long after it saw the release: time for
/// its local shard processes to start and build their plans.
pub const RELEASE_LEAD: Duration = Duration::from_millis(1500);

/// How the segments agree on their start.
#[derive(Debug, Clone)]
pub enum StartSpec {
    At(SystemTime),
    File { path: PathBuf, timeout: Duration },
}

/// The marker a segment leaves beside the start file while it waits for it.
pub fn ready_marker(start_file: &std::path::Path, index: u32) -> PathBuf {
    let mut name = start_file.as_os_str().to_owned();
    name.push(format!(".ready-{index}"));
    PathBuf::from(name)
}

/// The start a segment resolved to.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The agreed instant of second 0, on the reference clock (the starter's for a
    /// release, every host's for `--start-at`).
    pub agreed: SystemTime,
    /// This host's clock minus the reference clock, when it could be measured.
    pub clock_offset: Option<Duration>,
    /// Whether the offset is negative (this clock behind the reference).
    pub clock_behind: bool,
    /// This segment's second 0 on its monotonic clock.
    pub t0: Instant,
}

/// Why no start instant could be agreed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("start file {path}: nothing there after {waited:?} (was the run released?)")]
    NoRelease { path: String, waited: Duration },
    #[error("start file {path}: {why}")]
    BadFile { path: String, why: String },
}

/// This host's wall clock, shifted by `LOADGEN_TEST_CLOCK_SKEW_MS` in tests.
pub fn clock_now() -> SystemTime {
    let skew: i64 = std::env::var("LOADGEN_TEST_CLOCK_SKEW_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let now = SystemTime::now();
    if skew >= 0 {
        now + Duration::from_millis(skew.unsigned_abs())
    } else {
        now.checked_sub(Duration::from_millis(skew.unsigned_abs()))
            .unwrap_or(now)
    }
}

/// Unix milliseconds of `t` (0 before 1970).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Parses an instant: Unix milliseconds (digits only) or RFC 3339
/// (`2026-12-01T23:59:30Z`, `2026-12-01T23:59:30.250+01:00`).
pub fn parse_instant(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = text
            .parse()
            .map_err(|_| format!("`{text}`: too large for Unix milliseconds"))?;
        return Ok(UNIX_EPOCH + Duration::from_millis(ms));
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "`{text}`: not an instant; write Unix milliseconds or RFC 3339 (2026-12-01T23:59:30Z)"
        )
    })
}

fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u64>().ok()? * 10u64.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The monotonic instant at which this host's clock reads `at` (now, if past).
pub fn instant_at(at: SystemTime) -> Instant {
    let now = Instant::now();
    match at.duration_since(clock_now()) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}

impl StartSpec {
    /// Waits for the agreement (a start file) and resolves this segment's second 0.
    /// `lead`: the earliest second 0 can be from now (local shard processes' start-up).
    pub async fn resolve(&self, lead: Duration, index: u32) -> Result<Resolved, StartError> {
        let earliest = Instant::now() + lead;
        match self {
            StartSpec::At(at) => Ok(Resolved {
                agreed: *at,
                clock_offset: None,
                clock_behind: false,
                t0: instant_at(*at).max(earliest),
            }),
            StartSpec::File { path, timeout } => {
                let shown = path.display().to_string();
                let marker = ready_marker(path, index);
                std::fs::write(&marker, format!("{}\n", unix_ms(clock_now()))).map_err(|e| {
                    StartError::BadFile {
                        path: shown.clone(),
                        why: format!("cannot write {}: {e}", marker.display()),
                    }
                })?;
                let deadline = Instant::now() + *timeout;
                let text = loop {
                    match std::fs::read_to_string(path) {
                        Ok(t) if !t.trim().is_empty() => break t,
                        // Absent, or created but not yet written.
                        _ if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                        _ => {
                            return Err(StartError::NoRelease {
                                path: shown,
                                waited: *timeout,
                            });
                        }
                    }
                };
                let seen = clock_now();
                let seen_at = Instant::now();
                let written = parse_instant(&text).map_err(|why| StartError::BadFile {
                    path: shown.clone(),
                    why,
                })?;
                match written.duration_since(seen) {
                    // Still ahead: a start instant, waited for like --start-at.
                    Ok(_) => Ok(Resolved {
                        agreed: written,
                        clock_offset: None,
                        clock_behind: false,
                        t0: instant_at(written).max(earliest),
                    }),
                    // A release: start together, RELEASE_LEAD after it.
                    Err(_) => {
                        let (offset, behind) = match seen.duration_since(written) {
                            Ok(d) => (d, false),
                            Err(e) => (e.duration(), true),
                        };
                        Ok(Resolved {
                            agreed: written + RELEASE_LEAD,
                            clock_offset: Some(offset),
                            clock_behind: behind,
                            t0: (seen_at + RELEASE_LEAD).max(earliest),
                        })
                    }
                }
            }
        }
    }
}

impl Resolved {
    /// This host's clock reading at its second 0.
    pub fn clock_at_t0(&self) -> SystemTime {
        let now_i = Instant::now();
        let now = clock_now();
        if self.t0 >= now_i {
            now + (self.t0 - now_i)
        } else {
            now.checked_sub(now_i - self.t0).unwrap_or(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_in_both_spellings() {
        let ms = 1_796_169_570_250u64;
        let at = UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(parse_instant("1796169570250"), Ok(at));
        assert_eq!(parse_instant("2026-12-01T23:59:30.250Z"), Ok(at));
        assert_eq!(parse_instant("2026-12-02T00:59:30.25+01:00"), Ok(at));
        assert_eq!(
            parse_instant("2026-12-01T23:59:30Z"),
            Ok(UNIX_EPOCH + Duration::from_secs(ms / 1000))
        );
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-12-01T23:59:30",
            "12:00",
        ] {
            assert!(parse_instant(bad).is_err(), "{bad:?} accepted");
        }
    }
}
