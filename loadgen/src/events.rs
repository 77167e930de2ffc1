//! The event sink of a mode: what happened to the server, with the time since the
//! mode's start and the PID concerned, for events.csv. The engine owns one per mode
//! and writes it out; chaos actions and the process watcher (issue 5) push into it.
//! Kinds are fixed by reports/README.md.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deploy,
    Kill,
    Pause,
    Resume,
    WorkerStarted,
    WorkerExited,
    ServerRestarted,
    Downtime,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Resume => "resume",
            Kind::WorkerStarted => "worker-started",
            Kind::WorkerExited => "worker-exited",
            Kind::ServerRestarted => "server-restarted",
            Kind::Downtime => "downtime",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub t: Duration,
    pub mode: String,
    pub kind: Kind,
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

    pub fn of_mode<'a>(&'a self, mode: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.mode == mode)
    }
}
