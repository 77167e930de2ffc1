//! Lifecycle log lines on stderr: one line per event, with a UTC timestamp, the PID
//! and the role of the process (`single`, `worker`, `master`). Request traffic is not
//! logged here; only lifecycle events and rate-limited warnings are.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes one log line; a single `write_all` so lines of several processes sharing
/// stderr do not interleave.
pub fn line(role: &str, args: fmt::Arguments<'_>) {
    let text = format!(
        "{} pid={} {role}: {args}\n",
        timestamp(SystemTime::now()),
        std::process::id()
    );
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `log_event!("master", "worker {} ready", pid)`.
#[macro_export]
macro_rules! log_event {
    ($role:expr, $($arg:tt)*) => {
        $crate::log::line($role, format_args!($($arg)*))
    };
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-25T13:45:01.123Z`.
pub fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2026-11-25T13:45:01.123Z
        let t = UNIX_EPOCH + Duration::from_millis(1_795_614_301_123);
        assert_eq!(timestamp(t), "2026-11-25T13:45:01.123Z");
        // a leap day
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t), "2000-02-29T00:00:00.000Z");
    }
}
