//! What to do when accept(2) fails, for both ways this server accepts (single mode's
//! own listener on the event loop, a worker's accept thread on the shared socket):
//! the one home of [`FD_BACKOFF`] and of the rate-limited warning. An error that
//! concerns one client (aborted before accept, interrupted) is retried at once and
//! not logged; running out of file descriptors or memory backs off instead of
//! spinning, warning at most once a second with the count held back (a
//! [`RateLimit`]); anything else is unexpected and is warned about and backed off
//! from the same way. It decides and logs; the caller does the waiting (a thread
//! sleeps, the event loop awaits).

use std::io;
use std::time::Duration;

use crate::log::RateLimit;

/// How long accept waits after running out of file descriptors (or hitting another
/// error that would repeat at once) before trying again. The connection stays
/// queued in the kernel; existing connections keep being served meanwhile.
pub const FD_BACKOFF: Duration = Duration::from_millis(50);

/// At most one accept warning per this long.
const WARNING_PERIOD: Duration = Duration::from_secs(1);

/// The accept-error policy of one accept loop, with its warning rate limit.
pub struct AcceptErrors {
    warning: RateLimit,
    role: &'static str,
}

impl AcceptErrors {
    /// `role` names the process in log lines.
    pub fn new(role: &'static str) -> AcceptErrors {
        AcceptErrors {
            warning: RateLimit::new(WARNING_PERIOD),
            role,
        }
    }

    /// Logs `error` if it deserves it (rate-limited) and returns how long to pause
    /// before the next accept: `None` to retry at once.
    pub fn on_error(&mut self, error: &io::Error) -> Option<Duration> {
        match error.raw_os_error() {
            Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => None,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                if let Some(suppressed) = self.warning.ready() {
                    crate::log_event!(
                        self.role,
                        "accept failed: {error}; backing off {FD_BACKOFF:?} ({suppressed} more since last warning)"
                    );
                }
                Some(FD_BACKOFF)
            }
            _ => {
                if self.warning.ready().is_some() {
                    crate::log_event!(self.role, "accept failed: {error}");
                }
                Some(FD_BACKOFF)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn one_clients_trouble_is_retried_at_once() {
        let mut errors = AcceptErrors::new("test");
        for code in [libc::EINTR, libc::ECONNABORTED, libc::EPROTO] {
            assert_eq!(errors.on_error(&os(code)), None, "errno {code}");
        }
        assert!(!errors.warning.has_fired(), "nothing was logged");
    }

    #[test]
    fn running_out_of_descriptors_backs_off() {
        let mut errors = AcceptErrors::new("test");
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(errors.on_error(&os(code)), Some(FD_BACKOFF), "errno {code}");
        }
        // One warning went out; the other three were held back.
        assert_eq!(errors.warning.held_back(), 3);
    }

    #[test]
    fn an_unexpected_error_backs_off_too_rather_than_spinning() {
        let mut errors = AcceptErrors::new("test");
        assert_eq!(errors.on_error(&os(libc::EBADF)), Some(FD_BACKOFF));
    }
}
