//! Translates Unix signals, once, into the values the rest of the code awaits: a
//! serving process only learns "drain now", the master learns "restart" or "stop"
//! (what SIGTERM means is decided here from `--sigterm`). Handlers are installed
//! before the process reports ready, so an early signal is never fatal.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::SigtermAction;

/// SIGTERM, SIGINT or SIGQUIT to a serving process (single or worker): drain.
pub struct DrainSignals {
    term: Signal,
    int: Signal,
    quit: Signal,
}

impl DrainSignals {
    pub fn install() -> io::Result<DrainSignals> {
        Ok(DrainSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// Waits for the next drain signal; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.quit.recv() => "SIGQUIT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterSignal {
    Restart(&'static str),
    Stop(&'static str),
}

/// The master's signals: SIGTERM per `--sigterm`, SIGHUP restarts, SIGINT and
/// SIGQUIT stop.
pub struct MasterSignals {
    sigterm: SigtermAction,
    term: Signal,
    hup: Signal,
    int: Signal,
    quit: Signal,
}

impl MasterSignals {
    pub fn install(sigterm: SigtermAction) -> io::Result<MasterSignals> {
        Ok(MasterSignals {
            sigterm,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    pub async fn recv(&mut self) -> MasterSignal {
        tokio::select! {
            _ = self.term.recv() => match self.sigterm {
                SigtermAction::Restart => MasterSignal::Restart("SIGTERM"),
                SigtermAction::Shutdown => MasterSignal::Stop("SIGTERM"),
            },
            _ = self.hup.recv() => MasterSignal::Restart("SIGHUP"),
            _ = self.int.recv() => MasterSignal::Stop("SIGINT"),
            _ = self.quit.recv() => MasterSignal::Stop("SIGQUIT"),
        }
    }
}
