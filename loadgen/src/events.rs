//! The event log of a mode's run: what the harness did to the server (deploy, kill,
//! pause, resume, restart) and what it saw happen (worker started, worker exited,
//! downtime). Events are rare (tens per run), so one shared log behind a mutex is fine;
//! the per-request hot path never touches it. `output` writes it as `events.csv`, the
//! progress line shows the last entry.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The `kind` column of `events.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Deploy,
    Kill,
    Pause,
    Resume,
    WorkerStarted,
    WorkerExited,
    ServerRestarted,
    Downtime,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Deploy => "deploy",
            EventKind::Kill => "kill",
            EventKind::Pause => "pause",
            EventKind::Resume => "resume",
            EventKind::WorkerStarted => "worker-started",
            EventKind::WorkerExited => "worker-exited",
            EventKind::ServerRestarted => "server-restarted",
            EventKind::Downtime => "downtime",
        }
    }

    /// Chaos actions the harness itself performed, as opposed to what it observed.
    pub fn is_action(self) -> bool {
        matches!(
            self,
            EventKind::Deploy | EventKind::Kill | EventKind::Pause | EventKind::Resume
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `events.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Time since the mode's load started.
    pub t: Duration,
    pub kind: EventKind,
    /// The process acted on or observed; 0 when there is none.
    pub pid: i32,
    pub detail: String,
}

/// A clonable handle on one mode's event log, timed from the mode's start instant.
#[derive(Debug, Clone)]
pub struct EventLog {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl EventLog {
    pub fn new(start: Instant) -> Self {
        EventLog {
            start,
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The instant `t = 0` of this log.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records an event that happens now.
    pub fn record(&self, kind: EventKind, pid: i32, detail: impl Into<String>) {
        self.record_at(Instant::now(), kind, pid, detail);
    }

    /// Records an event that happened at `when` (events before the start count as t = 0).
    pub fn record_at(&self, when: Instant, kind: EventKind, pid: i32, detail: impl Into<String>) {
        let event = Event {
            t: when.saturating_duration_since(self.start),
            kind,
            pid,
            detail: detail.into(),
        };
        self.lock().push(event);
    }

    /// A copy of every event so far, in time order.
    pub fn snapshot(&self) -> Vec<Event> {
        let mut events = self.lock().clone();
        events.sort_by_key(|e| e.t);
        events
    }

    /// The most recent event, for the progress line.
    pub fn last(&self) -> Option<Event> {
        self.lock().iter().max_by_key(|e| e.t).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        // A panic while holding this lock cannot leave a half-pushed Vec: recover the data.
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_in_time_order_relative_to_the_start() {
        let start = Instant::now();
        let log = EventLog::new(start);
        log.record_at(
            start + Duration::from_millis(300),
            EventKind::Kill,
            7,
            "SIGKILL",
        );
        log.record_at(
            start + Duration::from_millis(100),
            EventKind::Deploy,
            1,
            "SIGTERM",
        );
        let events = log.snapshot();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, EventKind::Deploy);
        assert_eq!(events[0].t, Duration::from_millis(100));
        assert_eq!(events[1].pid, 7);
        assert_eq!(log.last().map(|e| e.kind), Some(EventKind::Kill));
    }
}
