//! Crash recovery time, the same yardstick for every mode: for each kill, the time
//! until clients got the first ok answer from a server process that had not answered
//! before (the restarted single process, or the master's replacement worker), from
//! the `first-ok` events; folders without them fall back to the restarts the harness
//! observed (measured downtime, or the next worker start). Each answer or restart is
//! matched to one kill, in time order.

use crate::observe::events::Kind;
use crate::runfolder::{EventKind, EventRow};

/// How long after a kill a restart is still matched to it.
pub const RECOVERY_HORIZON_S: f64 = 60.0;
/// A `downtime` row logged up to this long before a kill still belongs to it (the
/// engine may log the exit it measured from with a slightly earlier timestamp).
const DOWNTIME_SLACK_S: f64 = 0.5;

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

/// Recovery as clients saw it: each kill, in time order, to the first `first-ok` (the
/// first ok answer from a server process) of a process that had not answered before
/// the kill and that no earlier kill claimed. The same yardstick for a single process
/// restarted by the naive supervisor and for a master's replacement worker. Folders
/// without `first-ok` rows fall back to the restarts the harness observed.
pub fn recovery(events: &[&EventRow]) -> Recovery {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
