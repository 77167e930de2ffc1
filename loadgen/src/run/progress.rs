//! The live line while a mode runs: elapsed against the planned arrivals, users
//! active and started, requests per second and p99 of the last closed second, and
//! cumulative errors, the last event and the next chaos action. Reads the mode's `Timeline` once a second; `--quiet` (or a non-terminal
//! stderr) shows nothing. Never slows the engine: it sees only merged snapshots.

use crate::engine::timeline::Timeline;
use crate::observe::events::Event;
use crate::outcome::Class;
use crate::plan::chaos::PlannedAction;
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

    /// Redraws from the merged data, the last event seen and the next chaos action.
    pub fn update(&self, m: &Timeline, last_event: Option<&Event>, next: Option<&PlannedAction>) {
        let Some(bar) = &self.bar else { return };
        let Some(last) = m.rows.last() else { return };
        let t = m.total();
        let errors = t.completed() - t.class(Class::Ok);
        let mut chaos = String::new();
        if let Some(e) = last_event {
            chaos.push_str(&format!(
                "  last: {} {} at {:.1}s",
                e.kind,
                e.pid,
                e.t.as_secs_f64()
            ));
        }
        if let Some(a) = next {
            chaos.push_str(&format!(
                "  next: {} at {:.1}s",
                a.kind.name(),
                a.at.as_secs_f64()
            ));
        }
        bar.set_message(format!(
            "{}s / arrivals until {}s  users {} active, {} planned  {} req/s  errors {} (dropped {})  p99 {:.1} ms{chaos}",
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
