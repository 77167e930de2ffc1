//! Where the users of one runtime thread record what happened: per-second buckets of
//! integer counters and one histogram per second, plus lifetime histograms per step,
//! lateness, user counts and the ledger of what shoppers were told (confirmed orders,
//! carts, refused and unanswered checkouts). Every runtime thread has its own
//! recorder, so its mutex is never contended (it is there because tokio tasks must be
//! `Send`); no lock is shared by all users. The engine drains complete seconds once a
//! second into `SecondSnapshot`s; the hot path touches only integers and `Instant`s.

use crate::engine::snapshot::{FinalSnapshot, Hist, SecondSnapshot, WorkerCount};
use crate::outcome::{Class, Counts};
use crate::verdict::invariants::{ConfirmedOrder, Ledger};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Bucket {
    steps: Vec<Counts>,
    hist: Option<Hist>,
    send_lateness: Option<Hist>,
    generator_late: u64,
    /// (worker pid, version index) -> responses.
    workers: HashMap<(u32, u16), u64>,
}

struct Group {
    steps: usize,
    seconds: BTreeMap<u32, Bucket>,
    step_hists: Vec<Hist>,
    lateness: Hist,
    send_lateness: Hist,
    /// Connection setup (TCP connect, and the TLS handshake for HTTPS), µs.
    connect: Hist,
    generator_late: u64,
    users_started: u64,
    users_completed: u64,
    users_aborted: u64,
    users_cut: u64,
    users_lost: u64,
    generator_faults: Vec<String>,
    /// Server process -> when it first answered `ok`, µs after the mode's start.
    first_ok: HashMap<u32, u64>,
    versions: Vec<Box<[u8]>>,
    /// Orders and carts the server confirmed, for the invariant checks.
    ledger: Ledger,
}

impl Group {
    fn bucket(&mut self, second: u32) -> &mut Bucket {
        let steps = self.steps;
        self.seconds.entry(second).or_insert_with(|| Bucket {
            steps: vec![Counts::default(); steps],
            ..Bucket::default()
        })
    }

    fn version_index(&mut self, version: &[u8]) -> u16 {
        if let Some(i) = self.versions.iter().position(|v| &**v == version) {
            return i as u16;
        }
        if self.versions.len() >= u16::MAX as usize {
            return u16::MAX;
        }
        self.versions.push(version.into());
        (self.versions.len() - 1) as u16
    }
}

/// One finished request, as the user loop reports it.
pub struct Finished<'a> {
    pub second: u32,
    pub step: usize,
    pub class: Class,
    pub attempts: u32,
    pub attempt_failures: u32,
    pub latency_us: u64,
    /// When it finished, microseconds after the mode's start.
    pub at_us: u64,
    /// `X-Worker-Pid` and `X-Server-Version` of the answer, if one arrived.
    pub worker: Option<(u32, &'a [u8])>,
}

/// How a user's walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEnd {
    /// Walked the whole journey.
    Completed,
    /// Stopped at a failed or unexpected answer.
    Aborted,
    /// The run was cut off while it walked.
    Cut,
}

/// The generator's own faults kept per engine: enough to name the limit.
const MAX_FAULTS: usize = 8;

pub struct Recorder {
    state: Mutex<Group>,
    steps: usize,
    /// A request sent later than this after it was due is the generator's lateness.
    late_after_us: u64,
    pub active_users: AtomicU64,
    pub open_connections: Arc<AtomicU64>,
}

impl Recorder {
    pub fn new(steps: usize, late_after: std::time::Duration) -> Recorder {
        let state = Mutex::new(Group {
            steps,
            seconds: BTreeMap::new(),
            step_hists: (0..steps).map(|_| Hist::new()).collect(),
            lateness: Hist::new(),
            send_lateness: Hist::coarse(),
            connect: Hist::coarse(),
            generator_late: 0,
            users_started: 0,
            users_completed: 0,
            users_aborted: 0,
            users_cut: 0,
            users_lost: 0,
            generator_faults: Vec::new(),
            first_ok: HashMap::new(),
            versions: Vec::new(),
            ledger: Ledger::default(),
        });
        Recorder {
            state,
            steps,
            late_after_us: late_after.as_micros().min(u128::from(u64::MAX)) as u64,
            active_users: AtomicU64::new(0),
            open_connections: Arc::new(AtomicU64::new(0)),
        }
    }

    fn group(&self) -> std::sync::MutexGuard<'_, Group> {
        // A panic elsewhere must not stop the measurements: take the data anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection was set up (connect, and TLS handshake) in `us`.
    pub fn connected(&self, us: u64) {
        self.group().connect.record(us);
    }

    pub fn user_started(&self, lateness_us: u64) {
        let mut g = self.group();
        g.users_started += 1;
        g.lateness.record(lateness_us);
    }

    pub fn user_finished(&self, end: UserEnd) {
        let mut g = self.group();
        match end {
            UserEnd::Completed => g.users_completed += 1,
            UserEnd::Aborted => g.users_aborted += 1,
            UserEnd::Cut => g.users_cut += 1,
        }
    }

    /// A user task panicked or would not stop: what it had in flight is lost.
    pub fn user_lost(&self) {
        self.group().users_lost += 1;
    }

    /// The generator could not do its part (`why` as the OS said it).
    pub fn generator_fault(&self, why: &str) {
        let mut g = self.group();
        if g.generator_faults.len() < MAX_FAULTS && !g.generator_faults.iter().any(|f| f == why) {
            g.generator_faults.push(why.to_string());
        }
    }

    /// The server confirmed an order.
    pub fn order(&self, order: ConfirmedOrder) {
        self.group().ledger.orders.push(order);
    }

    /// A checkout under `key` ended without a confirmation after an attempt that got
    /// no answer (or a 5xx): the server may hold its order.
    pub fn order_unanswered(&self, key: String) {
        self.group().ledger.unanswered.push(key);
    }

    /// A checkout under `key` was answered with a 4xx: no order.
    pub fn order_refused(&self, key: String) {
        self.group().ledger.refused.push(key);
    }

    /// The server created cart `id`.
    pub fn cart(&self, id: String) {
        self.group().ledger.carts.push(id);
    }

    /// A request of `step` was written `lateness_us` after it was due, in `second`.
    pub fn sent(&self, second: u32, step: usize, lateness_us: u64) {
        let late = lateness_us > self.late_after_us;
        let mut g = self.group();
        g.send_lateness.record(lateness_us);
        g.generator_late += u64::from(late);
        let b = g.bucket(second);
        b.steps[step].sent += 1;
        b.send_lateness
            .get_or_insert_with(Hist::coarse)
            .record(lateness_us);
        b.generator_late += u64::from(late);
    }

    pub fn finished(&self, f: &Finished<'_>) {
        let mut g = self.group();
        let version = f.worker.map(|(pid, v)| (pid, g.version_index(v)));
        if let (Class::Ok, Some((pid, _))) = (f.class, f.worker) {
            // Recorded as they finish, under this lock: the first one is the earliest.
            g.first_ok.entry(pid).or_insert(f.at_us);
        }
        g.step_hists[f.step].record(f.latency_us);
        let b = g.bucket(f.second);
        b.steps[f.step].finish(f.class, f.attempts, f.attempt_failures);
        b.hist.get_or_insert_with(Hist::new).record(f.latency_us);
        if let Some(key) = version {
            *b.workers.entry(key).or_insert(0) += 1;
        }
    }

    /// Removes and merges every second before `upto`; one snapshot per second from
    /// `from` on, empty seconds included, gauges sampled now.
    pub fn drain(&self, from: u32, upto: u32) -> Vec<SecondSnapshot> {
        let mut out: Vec<SecondSnapshot> = (from..upto)
            .map(|second| SecondSnapshot {
                second,
                steps: vec![Counts::default(); self.steps],
                ..SecondSnapshot::default()
            })
            .collect();
        let mut workers: Vec<HashMap<(u32, String), u64>> = vec![HashMap::new(); out.len()];
        {
            let mut g = self.group();
            let keep = g.seconds.split_off(&upto);
            let done = std::mem::replace(&mut g.seconds, keep);
            for (second, b) in done {
                // A second before `from` was already reported: fold it into `from`.
                let i = second.saturating_sub(from) as usize;
                let Some(snap) = out.get_mut(i) else { continue };
                for (a, c) in snap.steps.iter_mut().zip(b.steps.iter()) {
                    a.add(c);
                }
                if let Some(h) = &b.hist {
                    snap.hist.merge(h);
                }
                if let Some(h) = &b.send_lateness {
                    snap.send_lateness.merge(h);
                }
                snap.generator_late += b.generator_late;
                for ((pid, vi), n) in b.workers {
                    let v = g.versions.get(vi as usize).map_or_else(
                        || "unknown".to_string(),
                        |v| String::from_utf8_lossy(v).into_owned(),
                    );
                    *workers[i].entry((pid, v)).or_insert(0) += n;
                }
            }
        }
        let active = self.active_users.load(Ordering::Relaxed);
        let open = self.open_connections.load(Ordering::Relaxed);
        for (snap, w) in out.iter_mut().zip(workers) {
            snap.active_users = active;
            snap.open_connections = open;
            let mut list: Vec<WorkerCount> = w
                .into_iter()
                .map(|((pid, version), responses)| WorkerCount {
                    pid,
                    version,
                    responses,
                })
                .collect();
            list.sort_by(|a, b| (a.pid, &a.version).cmp(&(b.pid, &b.version)));
            snap.workers = list;
        }
        out
    }

    /// Lifetime data: per-step histograms, lateness, user counts and the ledger
    /// (moved out: call once, at the end).
    pub fn finish(&self, users_planned: u64) -> FinalSnapshot {
        let mut f = FinalSnapshot {
            step_hists: (0..self.steps).map(|_| Hist::new()).collect(),
            users_planned,
            ..FinalSnapshot::default()
        };
        {
            let mut g = self.group();
            for (a, h) in f.step_hists.iter_mut().zip(g.step_hists.iter()) {
                a.merge(h);
            }
            f.lateness.merge(&g.lateness);
            f.send_lateness.merge(&g.send_lateness);
            f.connect.merge(&g.connect);
            f.generator_late += g.generator_late;
            f.users_started += g.users_started;
            f.users_completed += g.users_completed;
            f.users_aborted += g.users_aborted;
            f.users_cut += g.users_cut;
            f.users_lost += g.users_lost;
            f.users_never_started = users_planned.saturating_sub(g.users_started);
            f.generator_faults = std::mem::take(&mut g.generator_faults);
            f.first_ok = g.first_ok.drain().collect();
            // The run is over: hand the ledger on instead of copying every id.
            f.ledger.merge(std::mem::take(&mut g.ledger));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_complete_seconds_and_keeps_the_rest() {
        let r = Recorder::new(2, std::time::Duration::from_millis(50));
        for user in 0..10u64 {
            r.sent(0, 0, if user == 0 { 60_000 } else { 10 });
            let f = Finished {
                second: (user % 3) as u32,
                step: 1,
                class: Class::Ok,
                attempts: 1,
                attempt_failures: 0,
                latency_us: 1000 * (user + 1),
                at_us: 1000 * user,
                worker: Some((7, b"v1")),
            };
            r.finished(&f);
        }
        let snaps = r.drain(0, 2);
        assert_eq!(snaps.len(), 2);
        assert_eq!(snaps[0].steps[0].sent, 10);
        // One request was written 60 ms after it was due, past the 50 ms bound.
        assert_eq!(snaps[0].generator_late, 1);
        assert_eq!(snaps[0].send_lateness.0.len(), 10);
        let done: u64 = snaps.iter().map(|s| s.steps[1].completed()).sum();
        assert_eq!(done, 7); // users 0,3,6,9 in second 0; 1,4,7 in second 1
        assert_eq!(
            snaps[0].workers,
            vec![WorkerCount {
                pid: 7,
                version: "v1".into(),
                responses: 4
            }]
        );
        let rest = r.drain(2, 3);
        assert_eq!(rest[0].steps[1].completed(), 3);
        assert_eq!(r.finish(10).step_hists[1].0.len(), 10);
    }
}
