//! Lifecycle log lines on stderr: one line per event, with a UTC timestamp, the PID
//! and the role of the process (`single`, `worker`, `master`). Request traffic is not
//! logged here; only lifecycle events and rate-limited warnings are. A warning that
//! can repeat at request rate (a failed accept, a 5xx answer while the disk is full)
//! goes through a [`RateLimit`] or a [`Throttled`] line: at most one a second, with
//! the count of those held back, so a storm of errors cannot fill the disk the log
//! is on. The calendar arithmetic is `stampede_common::time`'s.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Lets a message through at most once per period; counts the ones held back.
#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(period: Duration) -> RateLimit {
        RateLimit {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(number held back since the last one)` when a message may go out now.
    pub fn ready(&mut self) -> Option<u64> {
        self.ready_at(Instant::now())
    }

    fn ready_at(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now - last < self.period) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Whether any message went out yet.
    #[cfg(test)]
    pub fn has_fired(&self) -> bool {
        self.last.is_some()
    }

    /// Messages held back since the last one that went out.
    #[cfg(test)]
    pub fn held_back(&self) -> u64 {
        self.suppressed
    }
}

/// A log line shared by every thread of the process, let through at most once per
/// period (a `static`: `static ERRORS: Throttled = Throttled::per_second("5xx answers");`).
pub struct Throttled {
    what: &'static str,
    limit: Mutex<RateLimit>,
}

impl Throttled {
    /// `what` names the held-back messages in the count, e.g. "5xx answers".
    pub const fn per_second(what: &'static str) -> Throttled {
        Throttled {
            what,
            limit: Mutex::new(RateLimit::new(Duration::from_secs(1))),
        }
    }

    /// Logs `args` unless a line went out less than a period ago; the line that goes
    /// out says how many were held back before it.
    pub fn line(&self, role: &str, args: fmt::Arguments<'_>) {
        let ready = match self.limit.lock() {
            Ok(mut limit) => limit.ready(),
            Err(poisoned) => poisoned.into_inner().ready(),
        };
        match ready {
            None => {}
            Some(0) => line(role, args),
            Some(held) => line(
                role,
                format_args!("{args} ({held} more {} since the last line)", self.what),
            ),
        }
    }
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

    #[test]
    fn rate_limit_lets_one_message_through_per_period() {
        let mut limit = RateLimit::new(Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(limit.ready_at(start), Some(0));
        assert_eq!(limit.ready_at(start + Duration::from_millis(10)), None);
        assert_eq!(limit.ready_at(start + Duration::from_millis(999)), None);
        assert_eq!(limit.held_back(), 2);
        assert_eq!(limit.ready_at(start + Duration::from_millis(1000)), Some(2));
        assert_eq!(limit.held_back(), 0);
    }
}
