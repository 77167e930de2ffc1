//! What happened to the server during a run: what the harness did to it (deploy, kill,
//! pause, resume, restart) and what it saw happen (worker started, worker exited,
//! downtime), with the time since the mode's start and the PID concerned. While a mode
//! runs, chaos and the process watcher record into that mode's [`EventLog`] (shared,
//! timed from the mode's start instant; events are rare, so a mutex is fine and the
//! per-request hot path never touches it). When the mode ends its events move into the
//! run's [`EventSink`], which `output` writes as events.csv. Kinds are fixed by
//! reports/README.md.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The `kind` column of events.csv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Deploy,
    /// A deploy command ended (its exit status and how long it ran).
    DeployEnded,
    Kill,
    Pause,
    Resume,
    WorkerStarted,
    WorkerExited,
    ServerRestarted,
    Downtime,
    /// A chaos action that could not be applied, with the reason.
    ChaosSkipped,
    /// The master (or single process) of a target loadgen did not start went away.
    MasterExited,
    /// The first `ok` answer clients got from a server process.
    FirstOk,
}

const ALL_KINDS: [Kind; 12] = [
    Kind::Deploy,
    Kind::DeployEnded,
    Kind::Kill,
    Kind::Pause,
    Kind::Resume,
    Kind::WorkerStarted,
    Kind::WorkerExited,
    Kind::ServerRestarted,
    Kind::Downtime,
    Kind::ChaosSkipped,
    Kind::MasterExited,
    Kind::FirstOk,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::DeployEnded => "deploy-ended",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Resume => "resume",
            Kind::WorkerStarted => "worker-started",
            Kind::WorkerExited => "worker-exited",
            Kind::ServerRestarted => "server-restarted",
            Kind::Downtime => "downtime",
            Kind::ChaosSkipped => "chaos-skipped",
            Kind::MasterExited => "master-exited",
            Kind::FirstOk => "first-ok",
        }
    }

    /// The kind named `name` in events.csv, if it is one.
    pub fn parse(name: &str) -> Option<Kind> {
        ALL_KINDS.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of events.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Time since the mode's load started.
    pub t: Duration,
    pub mode: String,
    pub kind: Kind,
    /// The process acted on or observed; 0 when there is none.
    pub pid: u32,
    pub detail: String,
}

/// Events of every mode of a run, in the order they were pushed.
#[derive(Debug, Default)]
pub struct EventSink {
    pub events: Vec<Event>,
}

impl EventSink {
    pub fn push(
        &mut self,
        t: Duration,
        mode: &str,
        kind: Kind,
        pid: u32,
        detail: impl Into<String>,
    ) {
        self.events.push(Event {
            t,
            mode: mode.to_string(),
            kind,
            pid,
            detail: detail.into(),
        });
    }

    /// Moves a finished mode's log into the sink, naming the cause of exits the
    /// watcher saw without a status (the master reaped them first) when the harness
    /// itself had just signalled that process.
    pub fn extend(&mut self, log: &EventLog) {
        let mut events = log.snapshot();
        attribute_exits(&mut events);
        self.events.extend(events);
    }

    /// Logs when clients first got an `ok` answer from each server process of `mode`
    /// (pid 0, a server that does not name its processes, is left out), keeping the
    /// mode's rows in time order.
    pub fn first_answers(&mut self, mode: &str, first_ok: &[(u32, u64)]) {
        for &(pid, at_us) in first_ok.iter().filter(|(pid, _)| *pid != 0) {
            self.push(
                Duration::from_micros(at_us),
                mode,
                Kind::FirstOk,
                pid,
                "first ok answer from this process",
            );
        }
        let first = self.events.iter().position(|e| e.mode == mode);
        if let Some(first) = first {
            self.events[first..].sort_by_key(|e| e.t);
        }
    }

    pub fn of_mode<'a>(&'a self, mode: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.mode == mode)
    }
}

/// What the watcher writes when a worker's status was reaped before it could look.
pub const STATUS_REAPED: &str = "exited (status reaped by its parent)";

/// Gives an exit without a status the signal of the kill that preceded it.
fn attribute_exits(events: &mut [Event]) {
    for i in 0..events.len() {
        if events[i].kind != Kind::WorkerExited || events[i].detail != STATUS_REAPED {
            continue;
        }
        let pid = events[i].pid;
        let kill = events[..i]
            .iter()
            .rev()
            .find(|e| e.kind == Kind::Kill && e.pid == pid)
            .map(|e| e.detail.clone());
        if let Some(signal) = kill {
            events[i].detail = format!("after {signal} sent by loadgen");
        }
    }
}

/// A clonable handle on one mode's event log, timed from the mode's start instant.
#[derive(Debug, Clone)]
pub struct EventLog {
    start: Instant,
    mode: Arc<str>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl EventLog {
    pub fn new(start: Instant, mode: &str) -> Self {
        EventLog {
            start,
            mode: Arc::from(mode),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The instant `t = 0` of this log.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records an event that happens now.
    pub fn record(&self, kind: Kind, pid: i32, detail: impl Into<String>) {
        self.record_at(Instant::now(), kind, pid, detail);
    }

    /// Records an event that happened at `when` (before the start counts as t = 0).
    pub fn record_at(&self, when: Instant, kind: Kind, pid: i32, detail: impl Into<String>) {
        let event = Event {
            t: when.saturating_duration_since(self.start),
            mode: self.mode.to_string(),
            kind,
            pid: u32::try_from(pid).unwrap_or(0),
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
        // A panic while holding this lock cannot leave a half-pushed Vec: keep the data.
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
        let log = EventLog::new(start, "cluster");
        log.record_at(start + Duration::from_millis(300), Kind::Kill, 7, "SIGKILL");
        log.record_at(
            start + Duration::from_millis(100),
            Kind::Deploy,
            1,
            "SIGTERM",
        );
        let events = log.snapshot();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, Kind::Deploy);
        assert_eq!(events[0].t, Duration::from_millis(100));
        assert_eq!(events[1].pid, 7);
        assert_eq!(events[1].mode, "cluster");
        assert_eq!(log.last().map(|e| e.kind), Some(Kind::Kill));
        log.record_at(
            start + Duration::from_millis(310),
            Kind::WorkerExited,
            7,
            STATUS_REAPED,
        );
        log.record_at(
            start + Duration::from_millis(320),
            Kind::WorkerExited,
            8,
            STATUS_REAPED,
        );
        let mut sink = EventSink::default();
        sink.extend(&log);
        assert_eq!(sink.of_mode("cluster").count(), 4);
        let exits: Vec<&str> = sink
            .of_mode("cluster")
            .filter(|e| e.kind == Kind::WorkerExited)
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(exits, ["after SIGKILL sent by loadgen", STATUS_REAPED]);
        assert_eq!(sink.of_mode("single").count(), 0);
    }
}
