//! The numbers of the comparison table (the seed article's table, measured), one
//! [`ModeFacts`] per mode, computed from the loaded rows alone. Each definition below
//! is also printed on the report page (see [`DEFINITIONS`]), so the page and the code
//! cannot drift apart silently: change both here.

use super::attribution::{Attribution, attribute};
use super::data::RunData;
use crate::observe::events::Kind;
use crate::outcome::Class;
use crate::runfolder::{EventKind, EventRow, ModeRow, SecondRow};

/// Width of the moving window for "throughput under the spike".
pub const SPIKE_WINDOW_S: usize = 5;
/// How long after a kill a restart is still matched to it.
pub const RECOVERY_HORIZON_S: f64 = 60.0;
/// A `downtime` row logged up to this long before a kill still belongs to it (the
/// engine may log the exit it measured from with a slightly earlier timestamp).
const DOWNTIME_SLACK_S: f64 = 0.5;
/// Start lateness p99 above this means the generator, not the server, may have set
/// the pace (run folders from before send lateness was measured).
pub const LATENESS_P99_LIMIT_MS: f64 = 100.0;
/// More requests written late than this share means the generator set the pace (the
/// default `late_budget`; the run itself applied the scenario's own).
pub const LATE_SHARE_LIMIT: f64 = 0.01;

/// Whether the generator kept to the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    OnTime,
    Late,
    Unknown,
}

/// The generator's pace in one mode: by its late requests when the folder has them,
/// else by start lateness.
pub fn generator_verdict(f: &ModeFacts) -> Pace {
    let row = &f.row;
    if row.send_lateness_max_ms.get().is_some_and(|max| max > 0.0) || row.generator_late > 0 {
        let sent = f.requests.max(1) as f64;
        return if row.generator_late as f64 > LATE_SHARE_LIMIT * sent {
            Pace::Late
        } else {
            Pace::OnTime
        };
    }
    match row.start_lateness_p99_ms.get() {
        Some(p99) if p99 > LATENESS_P99_LIMIT_MS => Pace::Late,
        Some(_) => Pace::OnTime,
        None => Pace::Unknown,
    }
}

/// How each comparison number is computed, as shown on the page.
pub const DEFINITIONS: &[(&str, &str)] = &[
    (
        "CPU use of the server processes",
        "server_cpu_s (master and every worker, exited ones included) divided by the mode's \
         duration_s: the average number of cores the server kept busy.",
    ),
    (
        "Requests dropped on deploy, after a kill, after a pause",
        "each second's dropped requests (no HTTP answer after retries: refused, closed or \
         timeout) are charged to the latest chaos action (deploy, kill or pause) that began \
         in that second or up to 10 s before it; seconds that no action preceded are \
         \"away from any chaos\". The four figures add up to the mode's dropped requests. \
         503 and other 5xx answers in the same seconds are shown beside them.",
    ),
    (
        "Crash recovery time",
        "for each kill: the time from the kill to the first ok answer clients got from a \
         server process that had not answered before (the restarted single process, or \
         the master's replacement worker: `first-ok` events), within 60 s, each answer \
         matched to one kill; median and worst over the kills. Run folders without \
         `first-ok` rows use the restarts the harness observed instead.",
    ),
    (
        "Throughput under the spike",
        "the highest 5-second moving average of requests answered ok per second \
         (timeseries `ok`), so fast refusals never count as throughput.",
    ),
    (
        "Shoppers who failed",
        "users who stopped before the end of their journey (aborted at a failed or \
         unexpected answer, or cut off), of the users planned: a request dropped early in a \
         journey costs the whole purchase, which the dropped-requests share hides.",
    ),
    (
        "Deploy strategy",
        "as the engine recorded it in modes.csv (`deploy_strategy`).",
    ),
];

/// Recovery after the kills of one mode.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub kills: usize,
    /// Whether any restart could have been seen at all: false when the mode has no
    /// worker-started, server-restarted or downtime rows (no process watcher ran).
    pub observable: bool,
    /// Seconds from kill to serving again, one per recovered kill, sorted.
    pub times_s: Vec<f64>,
}

impl Recovery {
    pub fn unrecovered(&self) -> usize {
        self.kills - self.times_s.len()
    }
    pub fn median_s(&self) -> Option<f64> {
        let n = self.times_s.len();
        (n > 0).then(|| {
            if n % 2 == 1 {
                self.times_s[n / 2]
            } else {
                (self.times_s[n / 2 - 1] + self.times_s[n / 2]) / 2.0
            }
        })
    }
    pub fn worst_s(&self) -> Option<f64> {
        self.times_s.last().copied()
    }
}

/// The best 5-second stretch of answered requests.
#[derive(Debug, Clone, Copy)]
pub struct Spike {
    pub ok_per_s: f64,
    pub from_s: u32,
    pub to_s: u32,
}

/// Whether every planned user is accounted for.
#[derive(Debug, Clone, Copy)]
pub struct Users {
    pub planned: u64,
    pub started: u64,
    pub completed: u64,
    pub aborted: u64,
    pub cut: u64,
    pub never_started: u64,
}

impl Users {
    /// Every planned user completed, aborted, was cut off or never started, and every
    /// started one is one of the first three.
    pub fn all_accounted(&self) -> bool {
        self.completed + self.aborted + self.cut + self.never_started == self.planned
            && self.completed + self.aborted + self.cut == self.started
    }
}

/// The comparison numbers and generator health of one mode.
#[derive(Debug, Clone)]
pub struct ModeFacts {
    pub mode: String,
    pub row: ModeRow,
    /// Average server cores busy; `None` when the engine could not measure it.
    pub server_cores: Option<f64>,
    /// Dropped requests by the chaos action they followed.
    pub drops: Attribution,
    pub recovery: Recovery,
    pub spike: Option<Spike>,
    pub users: Users,
    /// Average cores the generator used.
    pub loadgen_cores: f64,
    /// The generator's part of the CPU time it and the server used together.
    pub loadgen_share: Option<f64>,
    /// Total requests, dropped, and p99 from summary.csv's `all` row.
    pub requests: u64,
    pub dropped: u64,
    pub p99_ms: Option<f64>,
}

/// Compute the facts of every mode, in `modes.csv` order.
pub fn compute(run: &RunData) -> Vec<ModeFacts> {
    run.modes.iter().map(|row| mode_facts(run, row)).collect()
}

fn mode_facts(run: &RunData, row: &ModeRow) -> ModeFacts {
    let mode = row.mode.as_str();
    let seconds: Vec<&SecondRow> = run.seconds_of(mode).collect();
    let events: Vec<&EventRow> = run.events_of(mode).collect();
    let duration = row.duration_s.max(f64::MIN_POSITIVE);
    let all = run
        .summary
        .iter()
        .find(|s| s.mode == mode && s.step == "all");
    ModeFacts {
        mode: mode.to_string(),
        server_cores: row.server_cpu_s.map(|cpu| cpu / duration),
        drops: attribute(&seconds, &events),
        recovery: recovery(&events),
        spike: spike(&seconds),
        users: Users {
            planned: row.users_planned,
            started: row.users_started,
            completed: row.users_completed,
            aborted: row.users_aborted,
            cut: row.users_cut,
            never_started: row.users_never_started,
        },
        loadgen_cores: row.loadgen_cpu_s / duration,
        loadgen_share: row
            .server_cpu_s
            .map(|server| row.loadgen_cpu_s + server)
            .filter(|total| *total > 0.0)
            .map(|total| row.loadgen_cpu_s / total),
        requests: all.map_or(0, |a| a.counts.completed()),
        dropped: all.map_or(0, |a| a.counts.dropped()),
        p99_ms: all.and_then(|a| a.p99_ms.get()),
        row: row.clone(),
    }
}

/// Recovery as clients saw it: each kill, in time order, to the first `first-ok` (the
/// first ok answer from a server process) of a process that had not answered before
/// the kill and that no earlier kill claimed. The same yardstick for a single process
/// restarted by the naive supervisor and for a master's replacement worker. Folders
/// without `first-ok` rows fall back to the restarts the harness observed.
fn recovery(events: &[&EventRow]) -> Recovery {
    let first_ok: Vec<&EventRow> = events
        .iter()
        .copied()
        .filter(|e| e.kind == EventKind::Known(Kind::FirstOk))
        .collect();
    if first_ok.is_empty() {
        return observed_recovery(events);
    }
    let mut claimed = vec![false; first_ok.len()];
    let mut times = Vec::new();
    let kills: Vec<&EventRow> = events
        .iter()
        .copied()
        .filter(|e| e.kind == EventKind::Known(Kind::Kill))
        .collect();
    for kill in &kills {
        let next = first_ok.iter().enumerate().find(|(i, e)| {
            !claimed[*i] && e.t_s > kill.t_s && e.t_s <= kill.t_s + RECOVERY_HORIZON_S
        });
        if let Some((i, e)) = next {
            claimed[i] = true;
            times.push(e.t_s - kill.t_s);
        }
    }
    times.sort_by(f64::total_cmp);
    Recovery {
        kills: kills.len(),
        observable: true,
        times_s: times,
    }
}

/// Kills are matched in time order, each to one restart that no earlier kill claimed,
/// so two kills close together are not both credited to the first replacement.
fn observed_recovery(events: &[&EventRow]) -> Recovery {
    let mut claimed = vec![false; events.len()];
    let mut times = Vec::new();
    let mut kills = 0;
    for kill in events
        .iter()
        .filter(|e| e.kind == EventKind::Known(Kind::Kill))
    {
        kills += 1;
        let horizon = kill.t_s + RECOVERY_HORIZON_S;
        let unclaimed = |claimed: &[bool], want: &dyn Fn(&EventRow) -> bool| {
            events
                .iter()
                .enumerate()
                .find(|(i, e)| !claimed[*i] && e.t_s <= horizon && want(e))
                .map(|(i, _)| i)
        };
        let is_downtime = |e: &EventRow| {
            e.kind == EventKind::Known(Kind::Downtime) && parse_ms(&e.detail).is_some()
        };
        let is_start = |e: &EventRow| {
            matches!(
                e.kind,
                EventKind::Known(Kind::WorkerStarted) | EventKind::Known(Kind::ServerRestarted)
            )
        };
        let Some(first) = unclaimed(&claimed, &|e| {
            (is_downtime(e) && e.t_s >= kill.t_s - DOWNTIME_SLACK_S)
                || (is_start(e) && e.t_s > kill.t_s)
        }) else {
            continue;
        };
        claimed[first] = true;
        // One restart may be logged twice (server-restarted and its downtime): the
        // measured downtime wins, and both rows are claimed.
        let at = events[first].t_s;
        let twin = unclaimed(&claimed, &|e| {
            (e.t_s - at).abs() <= DOWNTIME_SLACK_S
                && if is_downtime(events[first]) {
                    is_start(e)
                } else {
                    is_downtime(e)
                }
        });
        if let Some(t) = twin {
            claimed[t] = true;
        }
        let downtime = [Some(first), twin]
            .into_iter()
            .flatten()
            .find(|&i| is_downtime(events[i]));
        times.push(match downtime {
            Some(i) => parse_ms(&events[i].detail).unwrap_or(0.0) / 1000.0,
            None => at - kill.t_s,
        });
    }
    times.sort_by(f64::total_cmp);
    Recovery {
        kills,
        observable: events.iter().any(|e| {
            matches!(
                e.kind,
                EventKind::Known(Kind::WorkerStarted)
                    | EventKind::Known(Kind::ServerRestarted)
                    | EventKind::Known(Kind::Downtime)
            )
        }),
        times_s: times,
    }
}

/// A `downtime` detail: milliseconds, possibly written with a unit.
fn parse_ms(detail: &str) -> Option<f64> {
    let d = detail.trim();
    d.strip_suffix("ms")
        .unwrap_or(d)
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

fn spike(seconds: &[&SecondRow]) -> Option<Spike> {
    let last = seconds.iter().map(|s| s.second).max()? as usize;
    let mut ok = vec![0u64; last + 1];
    for s in seconds {
        ok[s.second as usize] += s.counts.class(Class::Ok);
    }
    let width = SPIKE_WINDOW_S.min(ok.len());
    let mut best: Option<(u64, usize)> = None;
    for start in 0..=(ok.len() - width) {
        let sum: u64 = ok[start..start + width].iter().sum();
        if best.is_none_or(|(b, _)| sum > b) {
            best = Some((sum, start));
        }
    }
    best.map(|(sum, start)| Spike {
        ok_per_s: sum as f64 / width as f64,
        from_s: start as u32,
        to_s: (start + width) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Counts;

    fn second(s: u32, ok: u64, dropped: u64) -> SecondRow {
        let mut counts = Counts {
            sent: ok + dropped,
            ..Counts::default()
        };
        for _ in 0..ok {
            counts.finish(Class::Ok, 1, 0);
        }
        for _ in 0..dropped {
            counts.finish(Class::Refused, 1, 1);
        }
        SecondRow {
            mode: "m".into(),
            second: s,
            counts,
            ..SecondRow::default()
        }
    }

    fn event(t_s: f64, kind: EventKind, detail: &str) -> EventRow {
        EventRow {
            t_s,
            mode: "m".into(),
            kind,
            pid: Some(1),
            detail: detail.into(),
        }
    }

    #[test]
    fn recovery_prefers_measured_downtime_then_the_next_start() {
        let list = [
            event(10.0, EventKind::Known(Kind::Kill), ""),
            event(10.0, EventKind::Known(Kind::WorkerExited), "SIGKILL"),
            event(10.25, EventKind::Known(Kind::WorkerStarted), ""),
            event(20.0, EventKind::Known(Kind::Kill), ""),
            event(21.5, EventKind::Known(Kind::Downtime), "1200"),
            event(21.5, EventKind::Known(Kind::ServerRestarted), ""),
            event(50.0, EventKind::Known(Kind::Kill), ""),
        ];
        let events: Vec<&EventRow> = list.iter().collect();
        let r = recovery(&events);
        assert_eq!(r.kills, 3);
        assert_eq!(r.unrecovered(), 1, "the last kill has no restart: {r:?}");
        assert_eq!(r.times_s, vec![0.25, 1.2]);
        assert!(r.observable);
    }

    #[test]
    fn recovery_is_the_first_ok_answer_from_a_new_process_when_clients_saw_one() {
        let list = [
            event(0.5, EventKind::Known(Kind::FirstOk), ""),
            event(10.0, EventKind::Known(Kind::Kill), ""),
            event(10.25, EventKind::Known(Kind::WorkerStarted), ""),
            event(11.5, EventKind::Known(Kind::FirstOk), ""),
            event(20.0, EventKind::Known(Kind::Kill), ""),
            event(20.0, EventKind::Known(Kind::Kill), ""),
            event(20.4, EventKind::Known(Kind::FirstOk), ""),
        ];
        let events: Vec<&EventRow> = list.iter().collect();
        let r = recovery(&events);
        // Not the worker start at 10.25 s: the first answer from it, at 11.5 s. The
        // second kill at 20 s finds no answer left to claim.
        assert_eq!(r.kills, 3);
        assert_eq!(r.times_s.len(), 2, "{r:?}");
        assert!((r.times_s[0] - 0.4).abs() < 1e-9 && (r.times_s[1] - 1.5).abs() < 1e-9);
        assert_eq!(r.unrecovered(), 1);
    }

    #[test]
    fn kills_without_any_restart_rows_are_unobservable_not_unrecovered() {
        let list = [
            event(10.0, EventKind::Known(Kind::Kill), ""),
            event(12.0, EventKind::Known(Kind::Kill), ""),
        ];
        let events: Vec<&EventRow> = list.iter().collect();
        let r = recovery(&events);
        assert_eq!(
            (r.kills, r.times_s.len(), r.observable),
            (2, 0, false),
            "{r:?}"
        );
    }

    #[test]
    fn spike_is_the_best_five_second_average_of_ok() {
        let rows: Vec<SecondRow> = (0..20)
            .map(|s| second(s, if (8..13).contains(&s) { 100 } else { 10 }, 50))
            .collect();
        let rows: Vec<&SecondRow> = rows.iter().collect();
        let s = spike(&rows).expect("rows exist");
        assert_eq!((s.ok_per_s, s.from_s, s.to_s), (100.0, 8, 13));
    }
}
