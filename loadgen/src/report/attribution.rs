//! Which chaos action each dropped request followed: every second of a mode is
//! charged to the nearest preceding action (deploy, kill or pause) that happened at
//! most [`WINDOW_S`] before it, or to no action at all. "Dropped on deploy", "dropped
//! after a kill", "after a pause" and "away from any chaos" are then separate figures
//! that add up to the mode's dropped requests, so a kill just after a deploy is not
//! blamed on the deploy (the README's first figure did that). A deploy by command
//! (`deploy-ended` with the same PID) covers its whole run: from its start to its end
//! plus the window.

use crate::observe::events::Kind;
use crate::outcome::Class;
use crate::runfolder::{EventKind, EventRow, SecondRow};

/// How long after an action the requests that complete are charged to it.
pub const WINDOW_S: f64 = 10.0;

/// What followed one kind of action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cause {
    /// How many such actions the mode had.
    pub events: usize,
    pub dropped: u64,
    /// 503 and other 5xx answers.
    pub status_5xx: u64,
    /// Requests completing in the seconds charged to these actions.
    pub completed: u64,
}

/// The mode's dropped requests, by the action they followed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attribution {
    pub deploy: Cause,
    pub kill: Cause,
    pub pause: Cause,
    /// Dropped in seconds no action preceded within the window.
    pub elsewhere: u64,
}

impl Attribution {
    /// Every dropped request, each counted once.
    #[cfg(test)]
    pub fn total_dropped(&self) -> u64 {
        self.deploy.dropped + self.kill.dropped + self.pause.dropped + self.elsewhere
    }
}

/// Charges each second of `seconds` to the latest action of `events` that began at or
/// before it and ended at most `WINDOW_S` earlier (a signal ends as it is sent, a
/// deploy command when its `deploy-ended` event says so).
pub fn attribute(seconds: &[&SecondRow], events: &[&EventRow]) -> Attribution {
    let ended = |start: &EventRow| {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Known(Kind::DeployEnded))
            .find(|e| e.pid == start.pid && e.t_s >= start.t_s)
            .map_or(start.t_s, |e| e.t_s)
    };
    // (start, end of the window, kind)
    let mut actions: Vec<(f64, f64, Kind)> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Known(k @ (Kind::Kill | Kind::Pause)) => Some((e.t_s, e.t_s + WINDOW_S, k)),
            EventKind::Known(Kind::Deploy) => Some((e.t_s, ended(e) + WINDOW_S, Kind::Deploy)),
            _ => None,
        })
        .collect();
    actions.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Attribution::default();
    for (_, _, kind) in &actions {
        cause(&mut out, *kind).events += 1;
    }
    for s in seconds {
        let at = f64::from(s.second);
        // The second [at, at + 1) follows an action that began in it or before it.
        let latest = actions
            .iter()
            .rev()
            .find(|(t, until, _)| t.floor() <= at && at < *until);
        let c = &s.counts;
        match latest {
            Some((_, _, kind)) => {
                let charged = cause(&mut out, *kind);
                charged.dropped += c.dropped();
                charged.status_5xx += c.class(Class::Status503) + c.class(Class::Status5xx);
                charged.completed += c.completed();
            }
            None => out.elsewhere += c.dropped(),
        }
    }
    out
}

fn cause(a: &mut Attribution, kind: Kind) -> &mut Cause {
    match kind {
        Kind::Kill => &mut a.kill,
        Kind::Pause => &mut a.pause,
        _ => &mut a.deploy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Counts;

    fn second(s: u32, dropped: u64) -> SecondRow {
        let mut counts = Counts::default();
        counts.classes[Class::Ok as usize] = 10;
        counts.classes[Class::Refused as usize] = dropped;
        SecondRow {
            mode: "m".into(),
            second: s,
            counts,
            ..SecondRow::default()
        }
    }

    fn event(t_s: f64, kind: Kind) -> EventRow {
        EventRow {
            t_s,
            mode: "m".into(),
            kind: EventKind::Known(kind),
            pid: Some(1),
            detail: String::new(),
        }
    }

    #[test]
    fn a_deploy_command_covers_its_whole_run_plus_the_window() {
        let rows: Vec<SecondRow> = (0..60).map(|s| second(s, 1)).collect();
        let rows: Vec<&SecondRow> = rows.iter().collect();
        let mut other_end = event(8.0, Kind::DeployEnded);
        other_end.pid = Some(99);
        let list = [
            event(5.0, Kind::Deploy),
            // A command with another PID ending first is not this deploy's end.
            other_end,
            event(25.5, Kind::DeployEnded),
        ];
        let events: Vec<&EventRow> = list.iter().collect();
        let a = attribute(&rows, &events);
        // 5..=35: from the start to the end (25.5) plus 10 s.
        assert_eq!((a.deploy.events, a.deploy.dropped), (1, 31), "{a:?}");
        assert_eq!(a.elsewhere, 5 + 24, "{a:?}");
        // Without its end it is a signal: 5..=14.
        let events: Vec<&EventRow> = list[..1].iter().collect();
        assert_eq!(attribute(&rows, &events).deploy.dropped, 10);
    }

    #[test]
    fn each_second_goes_to_the_nearest_preceding_action_and_the_parts_add_up() {
        let rows: Vec<SecondRow> = (0..40).map(|s| second(s, 1)).collect();
        let rows: Vec<&SecondRow> = rows.iter().collect();
        let list = [
            event(5.4, Kind::Deploy),
            event(7.2, Kind::Kill),
            event(30.0, Kind::Pause),
        ];
        let events: Vec<&EventRow> = list.iter().collect();
        let a = attribute(&rows, &events);
        // deploy: seconds 5, 6; kill: 7..=17 (second 17 begins before 17.2, the end of
        // its window); pause: 30..=39.
        assert_eq!((a.deploy.events, a.deploy.dropped), (1, 2), "{a:?}");
        assert_eq!((a.kill.events, a.kill.dropped), (1, 11), "{a:?}");
        assert_eq!((a.pause.events, a.pause.dropped), (1, 10), "{a:?}");
        // 0..=4 and 18..=29 followed no action.
        assert_eq!(a.elsewhere, 5 + 12, "{a:?}");
        assert_eq!(a.total_dropped(), 40);
        assert_eq!(a.deploy.completed, 2 * 11);
    }

    #[test]
    fn a_second_deploy_takes_over_from_the_first() {
        let rows: Vec<SecondRow> = (0..40).map(|s| second(s, 10)).collect();
        let rows: Vec<&SecondRow> = rows.iter().collect();
        let list = [event(5.4, Kind::Deploy), event(9.0, Kind::Deploy)];
        let events: Vec<&EventRow> = list.iter().collect();
        let a = attribute(&rows, &events);
        // seconds 5..=8 after the first, 9..=18 after the second.
        assert_eq!((a.deploy.events, a.deploy.dropped), (2, 140), "{a:?}");
    }
}
