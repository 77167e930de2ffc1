//! The cap on open connections per serving process (`--max-connections`) and the
//! back-pressure that keeps it. A [`Permit`] is taken *before* a connection is
//! accepted and travels with it until its socket is closed (the linger after an
//! error answer included). While no permit is free this process stops accepting:
//! new connections wait in the kernel's accept queue, where another worker of the
//! cluster takes them, instead of being accepted here and starved, and the process
//! never runs out of file descriptors for its database. The drain counts the open
//! connections here too. Which connections deserve to be cut (slow bodies, stalled
//! heads) is decided elsewhere; this only counts.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::log::RateLimit;

/// File descriptors kept out of the default cap: the database, its WAL and shared
/// memory, stderr, the listening socket, the runtime's own (epoll, eventfd, signals).
/// A quarter of the limit when that is less (a test's limit of 64).
pub const RESERVED_FDS: u64 = 64;

/// The default cap: what the open-file limit leaves once the reserve is set aside.
pub fn default_max(nofile: u64) -> usize {
    let reserve = RESERVED_FDS.min(nofile / 4);
    usize::try_from(nofile.saturating_sub(reserve).max(1)).unwrap_or(usize::MAX)
}

/// Open connections of this process against its cap.
pub struct ConnLimit {
    open: AtomicUsize,
    max: usize,
    freed: Notify,
    warning: Mutex<RateLimit>,
}

impl ConnLimit {
    pub fn new(max: usize) -> Arc<ConnLimit> {
        Arc::new(ConnLimit {
            open: AtomicUsize::new(0),
            max: max.max(1),
            freed: Notify::new(),
            warning: Mutex::new(RateLimit::new(Duration::from_secs(1))),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now (accepted and not yet closed).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A permit if the cap allows one more connection.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()
            .map(|_| Permit(Arc::clone(self)))
    }

    /// A permit past the cap: for connections the kernel already queued when a
    /// single process drains (they are served, not refused).
    pub fn force(self: &Arc<Self>) -> Permit {
        self.open.fetch_add(1, Ordering::AcqRel);
        Permit(Arc::clone(self))
    }

    /// Waits (on the event loop) until a permit is free.
    pub async fn acquire(self: &Arc<Self>, role: &'static str) -> Permit {
        loop {
            let freed = self.freed.notified();
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            self.warn_full(role);
            freed.await;
        }
    }

    /// Logs, at most once a second, that accepting pauses at the cap.
    pub fn warn_full(&self, role: &'static str) {
        let ready = match self.warning.lock() {
            Ok(mut warning) => warning.ready(),
            Err(poisoned) => poisoned.into_inner().ready(),
        };
        if let Some(held) = ready {
            crate::log_event!(
                role,
                "connection limit reached ({} open): not accepting until one closes ({held} more waits since last warning)",
                self.max
            );
        }
    }
}

/// One open connection's place under the cap; freed when dropped.
pub struct Permit(Arc<ConnLimit>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_stop_at_the_cap_and_come_back_when_dropped() {
        let limit = ConnLimit::new(2);
        let a = limit.try_acquire().expect("first");
        let _b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none(), "the cap is 2");
        assert_eq!(limit.open(), 2);
        drop(a);
        assert_eq!(limit.open(), 1);
        let _c = limit.try_acquire().expect("a freed permit is reusable");
        let _forced = limit.force();
        assert_eq!(limit.open(), 3, "a forced permit counts past the cap");
    }

    #[tokio::test]
    async fn acquire_waits_for_a_permit_to_be_freed() {
        let limit = ConnLimit::new(1);
        let held = limit.try_acquire().expect("first");
        let waiter = {
            let limit = Arc::clone(&limit);
            tokio::spawn(async move { limit.acquire("test").await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "no permit is free yet");
        drop(held);
        let permit = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter gets the freed permit")
            .expect("task");
        assert_eq!(limit.open(), 1);
        drop(permit);
    }

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_process() {
        assert_eq!(default_max(20_000), 19_936);
        assert_eq!(default_max(512), 448);
        assert_eq!(default_max(64), 48);
        assert_eq!(default_max(1), 1);
    }
}
