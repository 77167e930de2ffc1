//! Reading one request body, on every route (a route that ignores its body still
//! reads it, so the connection stays usable and the limits hold everywhere). The
//! body goes into one buffer, sized from the declared `Content-Length` (capped at
//! the limit) or grown as a chunked body arrives; each frame is copied and released
//! at once. Keeping frames instead (what collecting them does) pinned the
//! connection's whole read buffer per frame: a 64 KiB body sent one byte per TCP
//! segment took a worker from 6 MB to 274 MB. The body must be complete within
//! `--body-timeout` of its start and, after a grace second, keep arriving at
//! `--body-min-rate` bytes/s on average, so a truncated, never-ending or trickled
//! body costs its connection seconds, not forever. Statuses are the API's business:
//! it maps a [`BodyError`] to 413, 408 or 400.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};

/// How much of a request body is accepted, and how fast it must come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest body, in bytes.
    pub max: usize,
    /// The whole body must arrive within this from the moment it is first awaited.
    pub timeout: Duration,
    /// After [`MIN_RATE_GRACE`], at least this many bytes per second on average since
    /// the start; 0 for no minimum (the timeout alone).
    pub min_rate: u64,
}

/// A body may take this long before the minimum rate applies (a client's first
/// segment, a `100 Continue` round trip).
pub const MIN_RATE_GRACE: Duration = Duration::from_secs(1);

/// First allocation for a body of unknown length (chunked); doubled as it grows.
const CHUNKED_START: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body not complete within {timeout:?} ({received} bytes received)")]
    TimedOut { timeout: Duration, received: usize },
    #[error(
        "request body slower than {rate} bytes/s after the first second ({received} bytes in {elapsed:?})"
    )]
    TooSlow {
        rate: u64,
        received: usize,
        elapsed: Duration,
    },
    #[error("could not read the request body: {0}")]
    Broken(#[source] hyper::Error),
}

/// Reads the whole body of a request within `limits`.
pub async fn read(mut body: Incoming, limits: &BodyLimits) -> Result<Bytes, BodyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let declared = body.size_hint().exact();
    if declared.is_some_and(|len| len > limits.max as u64) {
        return Err(BodyError::TooLarge { limit: limits.max });
    }
    let first = declared.map_or(CHUNKED_START, |len| usize::try_from(len).unwrap_or(0));
    let mut buf = Vec::with_capacity(first.min(limits.max));
    let clock = Clock::start(*limits, Instant::now());
    loop {
        let (until, expiry) = clock.next_deadline(buf.len());
        let frame = match tokio::time::timeout_at(until.into(), body.frame()).await {
            Err(_) => return Err(clock.expired(expiry, buf.len(), Instant::now())),
            Ok(None) => break,
            Ok(Some(Err(error))) => return Err(BodyError::Broken(error)),
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers carry nothing the shop reads.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limits.max {
            return Err(BodyError::TooLarge { limit: limits.max });
        }
        if buf.capacity() - buf.len() < data.len() {
            let want = (buf.len() + data.len())
                .max(buf.capacity() * 2)
                .min(limits.max);
            buf.reserve_exact(want - buf.len());
        }
        buf.extend_from_slice(&data);
        // `data` drops here: the read buffer it pointed into is free again.
    }
    Ok(Bytes::from(buf))
}

/// Which limit a wait ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Timeout,
    MinRate,
}

/// The body's deadlines as plain arithmetic over what arrived when.
struct Clock {
    start: Instant,
    limits: BodyLimits,
}

impl Clock {
    fn start(limits: BodyLimits, now: Instant) -> Clock {
        Clock { start: now, limits }
    }

    /// How long to wait for more with `received` bytes in: `received` bytes keep the
    /// average at `min_rate` until `grace + received / min_rate`; the timeout caps it.
    fn next_deadline(&self, received: usize) -> (Instant, Expiry) {
        let timeout = self.start + self.limits.timeout;
        if self.limits.min_rate == 0 {
            return (timeout, Expiry::Timeout);
        }
        let nanos = (received as u128 * 1_000_000_000) / u128::from(self.limits.min_rate);
        let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        let rate = self.start + MIN_RATE_GRACE + earned;
        if rate < timeout {
            (rate, Expiry::MinRate)
        } else {
            (timeout, Expiry::Timeout)
        }
    }

    fn expired(&self, expiry: Expiry, received: usize, now: Instant) -> BodyError {
        match expiry {
            Expiry::Timeout => BodyError::TimedOut {
                timeout: self.limits.timeout,
                received,
            },
            Expiry::MinRate => BodyError::TooSlow {
                rate: self.limits.min_rate,
                received,
                elapsed: now - self.start,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(timeout_s: u64, min_rate: u64) -> BodyLimits {
        BodyLimits {
            max: 64 * 1024,
            timeout: Duration::from_secs(timeout_s),
            min_rate,
        }
    }

    #[test]
    fn nothing_received_is_too_slow_after_the_grace_second() {
        let now = Instant::now();
        let clock = Clock::start(limits(10, 500), now);
        assert_eq!(
            clock.next_deadline(0),
            (now + MIN_RATE_GRACE, Expiry::MinRate)
        );
        // 500 bytes buy one more second at 500 bytes/s.
        assert_eq!(
            clock.next_deadline(500),
            (
                now + MIN_RATE_GRACE + Duration::from_secs(1),
                Expiry::MinRate
            )
        );
    }

    #[test]
    fn a_fast_enough_body_runs_into_the_timeout_instead() {
        let now = Instant::now();
        let clock = Clock::start(limits(10, 500), now);
        // 60 KiB at 500 bytes/s would be allowed ~123 s: the 10 s timeout is sooner.
        assert_eq!(
            clock.next_deadline(60 * 1024),
            (now + Duration::from_secs(10), Expiry::Timeout)
        );
    }

    #[test]
    fn no_minimum_rate_leaves_the_timeout_alone() {
        let now = Instant::now();
        let clock = Clock::start(limits(3, 0), now);
        assert_eq!(
            clock.next_deadline(0),
            (now + Duration::from_secs(3), Expiry::Timeout)
        );
        let error = clock.expired(Expiry::Timeout, 15, now + Duration::from_secs(3));
        assert!(
            matches!(error, BodyError::TimedOut { received: 15, .. }),
            "{error:?}"
        );
    }
}
