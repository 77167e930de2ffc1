//! `--metrics-listen ADDR`: the run's figures as OpenMetrics text while it goes, for
//! Prometheus to scrape (and Grafana to draw). Fed from the control side only: each
//! time the run merges a second of every generator's snapshots, [`LiveMetrics::update`]
//! copies the totals so far into a small shared state; the user tasks never see it.
//! [`serve`] answers `GET /metrics` from that state. What is exposed: requests by mode
//! and class (counters), attempts, retries, requests sent, users active and open
//! connections (gauges), the last merged second's latency quantiles (p50, p99, max),
//! and chaos events by kind (counters). Counters are per mode and keep their values
//! after the mode ends, so a scrape between modes loses nothing.

mod serve;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::timeline::Timeline;
use crate::observe::events::Event;
use crate::outcome::{CLASSES, Counts};

/// What one mode has measured so far.
#[derive(Debug, Clone, Default)]
struct ModeState {
    counts: Counts,
    active_users: u64,
    open_connections: u64,
    /// p50, p99 and max of the last merged second, in ms.
    last_second: Option<(f64, f64, f64)>,
    seconds: u32,
    /// Chaos and process events by kind name.
    events: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
struct State {
    scenario: String,
    modes: BTreeMap<String, ModeState>,
    /// The mode running now.
    running: Option<String>,
}

/// The shared state and the address it is served on.
#[derive(Debug, Clone)]
pub struct LiveMetrics {
    state: Arc<Mutex<State>>,
    pub addr: SocketAddr,
}

impl LiveMetrics {
    /// Binds `addr` and serves `/metrics` on the current runtime until the process ends.
    pub async fn start(addr: &str, scenario: &str) -> std::io::Result<LiveMetrics> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let live = LiveMetrics {
            state: Arc::new(Mutex::new(State {
                scenario: scenario.to_string(),
                ..State::default()
            })),
            addr: listener.local_addr()?,
        };
        tokio::spawn(serve::serve(listener, live.clone()));
        Ok(live)
    }

    /// Copies what `data` merged so far, and the mode's events, into the state. Cheap
    /// when no second closed since the last call.
    pub fn update(&self, data: &Timeline, events: impl FnOnce() -> Vec<Event>) {
        let mut state = self.lock();
        state.running = Some(data.mode.clone());
        let m = state.modes.entry(data.mode.clone()).or_default();
        let seconds = data.rows.len() as u32;
        if seconds == m.seconds && seconds > 0 {
            return;
        }
        m.seconds = seconds;
        m.counts = data.total();
        // `sent` is counted per second only.
        m.counts.sent = data.rows.iter().map(|r| r.counts.sent).sum();
        if let Some(last) = data.rows.last() {
            m.active_users = last.active_users;
            m.open_connections = last.open_connections;
            m.last_second = Some((
                last.p50_ms.get().unwrap_or(0.0),
                last.p99_ms.get().unwrap_or(0.0),
                last.max_ms.get().unwrap_or(0.0),
            ));
        }
        m.events.clear();
        for e in events() {
            *m.events.entry(e.kind.name()).or_default() += 1;
        }
    }

    /// The mode has ended: no user is active in it any more.
    pub fn mode_ended(&self, mode: &str) {
        let mut state = self.lock();
        if let Some(m) = state.modes.get_mut(mode) {
            m.active_users = 0;
            m.open_connections = 0;
        }
        state.running = None;
    }

    /// The OpenMetrics text of the state now.
    pub fn text(&self) -> String {
        render(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A metric family of one number per mode: name, help, value.
type Family = (&'static str, &'static str, fn(&ModeState) -> u64);

fn render(s: &State) -> String {
    let mut out = String::new();
    let scenario = escape(&s.scenario);
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "# HELP {name} {help}");
    };
    family(
        &mut out,
        "loadgen_requests",
        "counter",
        "Requests finished, by final outcome class.",
    );
    for (mode, m) in &s.modes {
        for class in CLASSES {
            let _ = writeln!(
                out,
                "loadgen_requests_total{{scenario=\"{scenario}\",mode=\"{}\",class=\"{}\"}} {}",
                escape(mode),
                class.name(),
                m.counts.class(class)
            );
        }
    }
    let counters: [Family; 5] = [
        (
            "loadgen_requests_sent",
            "Requests whose first attempt was due.",
            |m| m.counts.sent,
        ),
        (
            "loadgen_requests_dropped",
            "Requests that got no HTTP answer after their retries.",
            |m| m.counts.dropped(),
        ),
        (
            "loadgen_requests_failed",
            "Requests dropped or answered 5xx.",
            |m| m.counts.failed(),
        ),
        ("loadgen_attempts", "Attempts, retries included.", |m| {
            m.counts.attempts
        }),
        ("loadgen_retries", "Requests retried at least once.", |m| {
            m.counts.retried
        }),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        for (mode, m) in &s.modes {
            let _ = writeln!(
                out,
                "{name}_total{{scenario=\"{scenario}\",mode=\"{}\"}} {}",
                escape(mode),
                value(m)
            );
        }
    }
    let gauges: [Family; 3] = [
        (
            "loadgen_users_active",
            "Users walking their journey now.",
            |m| m.active_users,
        ),
        (
            "loadgen_open_connections",
            "Client connections open now.",
            |m| m.open_connections,
        ),
        (
            "loadgen_seconds_merged",
            "Seconds of load merged so far.",
            |m| u64::from(m.seconds),
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        for (mode, m) in &s.modes {
            let _ = writeln!(
                out,
                "{name}{{scenario=\"{scenario}\",mode=\"{}\"}} {}",
                escape(mode),
                value(m)
            );
        }
    }
    family(
        &mut out,
        "loadgen_latency_seconds",
        "gauge",
        "Latency of the requests completed in the last merged second, at quantile 0.5, 0.99 and 1 (max).",
    );
    for (mode, m) in &s.modes {
        if let Some((p50, p99, max)) = m.last_second {
            for (q, v) in [("0.5", p50), ("0.99", p99), ("1", max)] {
                let _ = writeln!(
                    out,
                    "loadgen_latency_seconds{{scenario=\"{scenario}\",mode=\"{}\",quantile=\"{q}\"}} {}",
                    escape(mode),
                    v / 1000.0
                );
            }
        }
    }
    family(
        &mut out,
        "loadgen_events",
        "counter",
        "Chaos actions and observed process events, by kind.",
    );
    for (mode, m) in &s.modes {
        for (kind, n) in &m.events {
            let _ = writeln!(
                out,
                "loadgen_events_total{{scenario=\"{scenario}\",mode=\"{}\",kind=\"{kind}\"}} {n}",
                escape(mode)
            );
        }
    }
    family(
        &mut out,
        "loadgen_mode_running",
        "gauge",
        "1 for the mode whose load runs now.",
    );
    for mode in s.modes.keys() {
        let running = s.running.as_deref() == Some(mode.as_str());
        let _ = writeln!(
            out,
            "loadgen_mode_running{{scenario=\"{scenario}\",mode=\"{}\"}} {}",
            escape(mode),
            u8::from(running)
        );
    }
    out.push_str("# EOF\n");
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
