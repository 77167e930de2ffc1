//! The live line while a mode runs: elapsed against the planned arrivals, users
//! active and started, requests per second and p99 of the last closed second, and
//! cumulative errors. Reads `ModeData` once a second; `--quiet` (or a non-terminal
//! stderr) shows nothing. Never slows the engine: it sees only merged snapshots.

use crate::outcome::Class;
use crate::timeline::ModeData;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

pub struct Progress {
    bar: Option<ProgressBar>,
    planned: Duration,
    users: u64,
}

impl Progress {
    /// `planned`: when the last user is due; `users`: users of the mode.
    pub fn new(quiet: bool, mode: &str, planned: Duration, users: u64) -> Progress {
        let bar = (!quiet).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template("{prefix:.bold} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(format!("[{mode}]"));
            bar.set_message("starting");
            bar
        });
        Progress {
            bar,
            planned,
            users,
        }
    }

    pub fn message(&self, text: &str) {
        if let Some(b) = &self.bar {
            b.set_message(text.to_string());
        }
    }

    pub fn update(&self, m: &ModeData) {
        let Some(bar) = &self.bar else { return };
        let Some(last) = m.rows.last() else { return };
        let t = m.total();
        let errors = t.completed() - t.class(Class::Ok);
        bar.set_message(format!(
            "{}s / arrivals until {}s  users {} active, {} planned  {} req/s  errors {} (dropped {})  p99 {:.1} ms",
            last.second + 1,
            self.planned.as_secs(),
            last.active_users,
            self.users,
            last.counts.completed(),
            errors,
            t.dropped(),
            last.p99_ms
        ));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
