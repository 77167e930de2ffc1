//! The numbers of the comparison table (the seed article's table, measured), one
//! [`ModeFacts`] per mode, computed from the loaded rows alone. Each definition below
//! is also printed on the report page (see [`DEFINITIONS`]), so the page and the code
//! cannot drift apart silently: change both here.

use super::attribution::{Attribution, attribute};
use super::data::RunData;
use super::recovery::{Recovery, recovery};
use crate::outcome::Class;
use crate::runfolder::{EventRow, ModeRow, SecondRow};

/// Width of the moving window for "throughput under the spike".
pub const SPIKE_WINDOW_S: usize = 5;
/// How long after a kill a restart is still matched to it.
/// Start lateness p99 above this means the generator, not the server, may have set
/// the pace (run folders from before send lateness was measured).
pub const LATENESS_P99_LIMIT_MS: f64 = 100.0;
/// More requests written late than this share means the generator set the pace, when
/// the scenario does not say (`late_budget`'s default).
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
pub fn generator_verdict(f: &ModeFacts, late_budget: f64) -> Pace {
    let row = &f.row;
    if row.send_lateness_max_ms.get().is_some_and(|max| max > 0.0) || row.generator_late > 0 {
        let sent = f.requests.max(1) as f64;
        return if row.generator_late as f64 > late_budget * sent {
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
         in that second or up to 10 s before it (a deploy by command: up to 10 s after it \
         ended); seconds that no action preceded are \
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
