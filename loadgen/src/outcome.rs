//! Outcome classes of an attempt and of a request, exactly as reports/README.md
//! defines them, and the integer counters the engine keeps per step and second.
//! Owns the definitions of dropped, failed, attempt failures and retried, and the
//! conservation rule (every request sent ends in exactly one class); nothing else in
//! the crate decides what counts as what.

use serde::{Deserialize, Serialize};

/// The class of one attempt (and of a request: the class of its last attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ok = 0,
    Status4xx = 1,
    Status503 = 2,
    Status5xx = 3,
    Refused = 4,
    Closed = 5,
    Timeout = 6,
    /// Still in flight when the run was cut off (`max_duration`, Ctrl-C, an
    /// abort-on-fail threshold): nobody knows how it would have ended.
    Cut = 7,
    /// loadgen could not make the request (its own file or port limits, a URI that
    /// does not parse): the generator's fault, never the server's.
    GeneratorError = 8,
    /// An HTTPS target whose certificate (or TLS handshake) failed: the server
    /// answered nothing loadgen could trust. Dropped, and not `refused`.
    TlsError = 9,
}

pub const CLASSES: [Class; 10] = [
    Class::Ok,
    Class::Status4xx,
    Class::Status503,
    Class::Status5xx,
    Class::Refused,
    Class::Closed,
    Class::Timeout,
    Class::Cut,
    Class::GeneratorError,
    Class::TlsError,
];

/// Classes newer than the first run-folder format: a folder written before them has
/// no column for them, and reads as none.
pub const ADDED_CLASSES: [Class; 3] = [Class::Cut, Class::GeneratorError, Class::TlsError];

impl Class {
    /// Column name in summary.csv and timeseries.csv.
    pub fn name(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Status4xx => "status_4xx",
            Class::Status503 => "status_503",
            Class::Status5xx => "status_5xx",
            Class::Refused => "refused",
            Class::Closed => "closed",
            Class::Timeout => "timeout",
            Class::Cut => "cut",
            Class::GeneratorError => "generator_error",
            Class::TlsError => "tls_error",
        }
    }

    /// The class of an HTTP answer; `ok_status` says whether the step accepts it.
    pub fn of_status(status: u16, ok_status: bool) -> Class {
        match status {
            _ if ok_status => Class::Ok,
            503 => Class::Status503,
            500..=599 => Class::Status5xx,
            // 1xx/3xx and unexpected 4xx all mean "answered, but not ok".
            _ => Class::Status4xx,
        }
    }
}

/// Integer counters for one step (or all steps) over some span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Requests whose first attempt was due in the span.
    pub sent: u64,
    /// Requests that finished in the span, by final class.
    pub classes: [u64; 10],
    pub attempts: u64,
    pub attempt_failures: u64,
    pub retried: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        for (a, b) in self.classes.iter_mut().zip(o.classes.iter()) {
            *a += b;
        }
        self.attempts += o.attempts;
        self.attempt_failures += o.attempt_failures;
        self.retried += o.retried;
    }

    pub fn class(&self, c: Class) -> u64 {
        self.classes[c as usize]
    }

    /// Requests that finished (every class).
    pub fn completed(&self) -> u64 {
        self.classes.iter().sum()
    }

    /// No HTTP answer after the retries.
    pub fn dropped(&self) -> u64 {
        self.class(Class::Refused)
            + self.class(Class::Closed)
            + self.class(Class::Timeout)
            + self.class(Class::TlsError)
    }

    /// Dropped, answered with a 5xx, or cut off in flight: a request whose outcome
    /// was not a good answer from the server, as far as anyone measured.
    pub fn failed(&self) -> u64 {
        self.dropped()
            + self.class(Class::Status503)
            + self.class(Class::Status5xx)
            + self.class(Class::Cut)
    }

    /// Requests sent that ended in no class: zero when every request is accounted for.
    pub fn unaccounted(&self) -> i128 {
        i128::from(self.sent) - i128::from(self.completed())
    }

    /// Records one finished request.
    pub fn finish(&mut self, class: Class, attempts: u32, attempt_failures: u32) {
        self.classes[class as usize] += 1;
        self.attempts += u64::from(attempts);
        self.attempt_failures += u64::from(attempt_failures);
        if attempts > 1 {
            self.retried += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(Class::of_status(200, true), Class::Ok);
        assert_eq!(Class::of_status(409, true), Class::Ok);
        assert_eq!(Class::of_status(409, false), Class::Status4xx);
        assert_eq!(Class::of_status(503, false), Class::Status503);
        assert_eq!(Class::of_status(500, false), Class::Status5xx);
    }

    #[test]
    fn dropped_and_failed() {
        let mut c = Counts::default();
        c.finish(Class::Ok, 2, 1);
        c.finish(Class::Timeout, 3, 3);
        c.finish(Class::Status503, 1, 1);
        assert_eq!((c.completed(), c.dropped(), c.failed()), (3, 1, 2));
        c.finish(Class::Cut, 1, 1);
        c.finish(Class::GeneratorError, 1, 1);
        // Cut counts as failed, not dropped; the generator's faults are neither.
        assert_eq!((c.completed(), c.dropped(), c.failed()), (5, 1, 3));
        assert_eq!((c.attempts, c.attempt_failures, c.retried), (8, 7, 2));
        c.finish(Class::TlsError, 1, 1);
        // A certificate that failed is no answer: dropped.
        assert_eq!((c.completed(), c.dropped(), c.failed()), (6, 2, 4));
    }
}
