//! One mode's measurements: the [`Timeline`] merges, while the load runs, the
//! per-second rows, per-step totals, answers per worker and the final data of every
//! engine (in-process or `loadgen shard` processes); a second is closed once every
//! source has reported it, then its histogram is reduced to p50/p99/max and dropped,
//! so memory stays flat however long the run. When the mode is over, one
//! [`ModeOutcome`] is built from the timeline and what was learnt around it (the
//! server's cost, the invariant checks). Writers, the gate and the progress line read
//! these; they never merge.

use crate::engine::snapshot::{FinalSnapshot, Hist, Message, SecondSnapshot, WorkerCount};
use crate::observe::watcher::ServerCost;
use crate::outcome::Counts;
use crate::runfolder::rows::SecondRow;
use crate::verdict::invariants::InvariantReport;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// What one mode measured, built once when the mode is over.
pub struct ModeOutcome {
    pub measured: Timeline,
    pub deploy_strategy: String,
    /// Wall-clock second 0 of the mode.
    pub started_at: SystemTime,
    /// Generator processes whose data was merged.
    pub processes: u32,
    /// What the server processes cost during the load, when a watcher ran.
    pub server_cost: Option<ServerCost>,
    /// The invariant checks after the load: `None` when the scenario has none or
    /// they were not run, `Err` when they could not run.
    pub invariants: Option<Result<InvariantReport, String>>,
}

impl ModeOutcome {
    pub fn mode(&self) -> &str {
        &self.measured.mode
    }
}

/// One mode's measurements as they are merged.
pub struct Timeline {
    pub mode: String,
    pub steps: Vec<String>,
    sources: usize,
    pending: BTreeMap<u32, (SecondSnapshot, usize)>,
    pub rows: Vec<SecondRow>,
    /// (second, answers from one worker and version).
    pub workers: Vec<(u32, WorkerCount)>,
    pub step_counts: Vec<Counts>,
    pub fin: FinalSnapshot,
    pub finals_received: usize,
}

impl Timeline {
    /// An empty timeline of `mode` that `sources` engines report into.
    pub fn new(mode: &str, steps: Vec<String>, sources: usize) -> Timeline {
        let n = steps.len();
        Timeline {
            mode: mode.to_string(),
            sources: sources.max(1),
            pending: BTreeMap::new(),
            rows: Vec::new(),
            workers: Vec::new(),
            step_counts: vec![Counts::default(); n],
            fin: FinalSnapshot {
                step_hists: (0..n).map(|_| Hist::new()).collect(),
                ..FinalSnapshot::default()
            },
            finals_received: 0,
            steps,
        }
    }

    pub fn all_finals_in(&self) -> bool {
        self.finals_received >= self.sources
    }

    pub fn push(&mut self, msg: Message) {
        match msg {
            Message::Second(s) => self.push_second(s),
            Message::Final(f) => self.push_final(f),
        }
    }

    fn push_second(&mut self, s: SecondSnapshot) {
        if self.rows.last().is_some_and(|r| s.second <= r.second) {
            // A straggler for a closed second: count it in the next open one.
            let second = self.rows.last().map_or(0, |r| r.second + 1);
            return self.push_second(SecondSnapshot { second, ..s });
        }
        let entry = self.pending.entry(s.second).or_insert_with(|| {
            (
                SecondSnapshot {
                    second: s.second,
                    steps: vec![Counts::default(); s.steps.len()],
                    ..SecondSnapshot::default()
                },
                0,
            )
        });
        merge_second(&mut entry.0, &s);
        entry.1 += 1;
        while let Some(first) = self.pending.first_entry() {
            if first.get().1 < self.sources {
                break;
            }
            let (snap, _) = first.remove();
            self.close(snap);
        }
    }

    fn push_final(&mut self, f: FinalSnapshot) {
        for (a, h) in self.fin.step_hists.iter_mut().zip(f.step_hists.iter()) {
            a.merge(h);
        }
        self.fin.lateness.merge(&f.lateness);
        self.fin.send_lateness.merge(&f.send_lateness);
        self.fin.connect.merge(&f.connect);
        self.fin.generator_late += f.generator_late;
        self.fin.users_planned += f.users_planned;
        self.fin.users_started += f.users_started;
        self.fin.users_completed += f.users_completed;
        self.fin.users_aborted += f.users_aborted;
        self.fin.users_cut += f.users_cut;
        self.fin.users_never_started += f.users_never_started;
        self.fin.users_lost += f.users_lost;
        for (pid, at) in f.first_ok {
            match self.fin.first_ok.iter_mut().find(|(p, _)| *p == pid) {
                Some((_, first)) => *first = (*first).min(at),
                None => self.fin.first_ok.push((pid, at)),
            }
        }
        for fault in f.generator_faults {
            if !self.fin.generator_faults.contains(&fault) {
                self.fin.generator_faults.push(fault);
            }
        }
        self.fin.cpu_s += f.cpu_s;
        self.fin.peak_rss_kb += f.peak_rss_kb;
        self.fin.duration_s = self.fin.duration_s.max(f.duration_s);
        self.fin.ledger.merge(f.ledger);
        self.finals_received += 1;
    }

    /// Closes every second still open (a source ended or stopped early).
    pub fn flush(&mut self) {
        while let Some((_, (snap, _))) = self.pending.pop_first() {
            self.close(snap);
        }
    }

    fn close(&mut self, snap: SecondSnapshot) {
        let mut counts = Counts::default();
        for (total, c) in self.step_counts.iter_mut().zip(snap.steps.iter()) {
            total.add(c);
            counts.add(c);
        }
        for w in snap.workers {
            self.workers.push((snap.second, w));
        }
        self.rows.push(SecondRow {
            mode: self.mode.clone(),
            second: snap.second,
            counts,
            p50_ms: snap.hist.ms_at(0.5).into(),
            p99_ms: snap.hist.ms_at(0.99).into(),
            max_ms: snap.hist.max_ms().into(),
            active_users: snap.active_users,
            open_connections: snap.open_connections,
            live_workers: None,
            send_lateness_p50_ms: snap.send_lateness.ms_at(0.5).into(),
            send_lateness_p99_ms: snap.send_lateness.ms_at(0.99).into(),
            send_lateness_max_ms: snap.send_lateness.max_ms().into(),
            generator_late: snap.generator_late,
        });
    }

    /// Fills the `live_workers` column from the watcher's per-second samples.
    pub fn set_live_workers(&mut self, per_second: &[u32]) {
        for row in &mut self.rows {
            row.live_workers = per_second
                .get(row.second as usize)
                .or(per_second.last())
                .copied();
        }
    }

    /// Counts over every step and second closed so far.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in &self.step_counts {
            t.add(c);
        }
        t
    }

    /// Latency of every step together.
    pub fn all_hist(&self) -> Hist {
        let mut h = Hist::new();
        for s in &self.fin.step_hists {
            h.merge(s);
        }
        h
    }
}

fn merge_second(into: &mut SecondSnapshot, s: &SecondSnapshot) {
    if into.steps.len() < s.steps.len() {
        into.steps.resize(s.steps.len(), Counts::default());
    }
    for (a, c) in into.steps.iter_mut().zip(s.steps.iter()) {
        a.add(c);
    }
    into.hist.merge(&s.hist);
    into.send_lateness.merge(&s.send_lateness);
    into.generator_late += s.generator_late;
    for w in &s.workers {
        match into
            .workers
            .iter_mut()
            .find(|x| x.pid == w.pid && x.version == w.version)
        {
            Some(x) => x.responses += w.responses,
            None => into.workers.push(w.clone()),
        }
    }
    into.active_users += s.active_users;
    into.open_connections += s.open_connections;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(second: u32, sent: u64) -> Message {
        Message::Second(SecondSnapshot {
            second,
            steps: vec![Counts {
                sent,
                ..Counts::default()
            }],
            ..SecondSnapshot::default()
        })
    }

    #[test]
    fn a_second_closes_when_every_source_reported_it() {
        let mut m = Timeline::new("single", vec!["a".into()], 2);
        m.push(snap(0, 1));
        m.push(snap(1, 1));
        assert!(m.rows.is_empty());
        m.push(snap(0, 2));
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.rows[0].counts.sent, 3);
        m.flush();
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.total().sent, 4);
    }
}
