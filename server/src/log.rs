//! Lifecycle log lines on stderr: one line per event, with a UTC timestamp, the PID
//! and the role of the process (`single`, `worker`, `master`). Request traffic is not
//! logged here; only lifecycle events and rate-limited warnings are. The calendar
//! arithmetic is `stampede_common::time`'s.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use stampede_common::time;

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
    let (year, month, day, hour, minute, second) = time::civil(now);
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_millis());
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
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
