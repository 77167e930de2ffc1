//! The queueing model behind the synthetic runs: users arrive on a quiet baseline
//! and then a spike; a single process (capacity just below the peak) or a cluster of
//! workers serves them through a deploy, three kills and a pause, and the model
//! records what the engine would: per-second counts and latencies, who answered,
//! the events, and a latency histogram.

use hdrhistogram::Histogram;

/// The size of a synthetic run: users per mode, seconds of load, cluster workers.
pub struct Spec {
    pub users: u64,
    pub seconds: u32,
    pub workers: u32,
}

/// Each user's journey: this many requests, spread over this many seconds.
pub const REQUESTS_PER_USER: f64 = 6.0;
const JOURNEY_S: usize = 12;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One second of one mode, as the engine would count it.
#[derive(Default, Clone)]
pub struct Second {
    pub sent: u64,
    pub ok: u64,
    pub refused: u64,
    pub closed: u64,
    pub timeout: u64,
    pub status_503: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub active: u64,
    pub live: u32,
    /// (pid, version, responses)
    pub workers: Vec<(u32, &'static str, u64)>,
}

/// One mode's whole synthetic run.
pub struct Mode {
    pub name: &'static str,
    pub cluster: bool,
    pub seconds: Vec<Second>,
    pub events: Vec<(f64, &'static str, u32, String)>,
    pub hist: Histogram<u64>,
}

/// Users arriving in each second: a quiet baseline, then the midnight spike.
fn arrivals(spec: &Spec) -> Vec<f64> {
    let n = spec.seconds as usize;
    let peak = n as f64 * 0.45;
    let width = (n as f64 * 0.12).max(2.0);
    let shape: Vec<f64> = (0..n)
        .map(|s| {
            let x = (s as f64 - peak) / width;
            let spike = if s as f64 >= peak * 0.8 {
                (-x * x).exp() * 8.0
            } else {
                0.0
            };
            1.0 + spike
        })
        .collect();
    let sum: f64 = shape.iter().sum();
    shape.iter().map(|v| v / sum * spec.users as f64).collect()
}

pub fn simulate(spec: &Spec, cluster: bool) -> Mode {
    let n = spec.seconds as usize;
    let d = f64::from(spec.seconds);
    let mut rng = Rng(if cluster {
        0x9E37_79B9_7F4A_7C15
    } else {
        0xD1B5_4A32_D192_ED03
    });
    let users = arrivals(spec);
    let mut sent = vec![0.0; n];
    let mut active = vec![0.0; n];
    for (s, u) in users.iter().enumerate() {
        for k in 0..JOURNEY_S.min(n - s) {
            sent[s + k] += u * REQUESTS_PER_USER / JOURNEY_S as f64;
            active[s + k] += u;
        }
    }
    let peak_sent = sent.iter().cloned().fold(0.0, f64::max);
    // A single process saturates below the peak; the cluster has headroom.
    let per_worker = peak_sent * if cluster { 0.75 } else { 0.8 };
    let workers = if cluster { spec.workers.max(1) } else { 1 };
    let deploy_t = (d * 0.5).floor() + 0.4;
    let kill_ts: Vec<f64> = [0.3, 0.65, 0.82]
        .iter()
        .map(|f| (d * f).floor() + 0.6)
        .collect();
    let pause_t = (d * 0.72).floor() + 0.2;
    let pause_len = 3.0;

    let mut events: Vec<(f64, &'static str, u32, String)> = Vec::new();
    // Process table: (pid, version, from_s, until_s)
    let mut procs: Vec<(u32, &'static str, f64, f64)> = Vec::new();
    let mut next_pid = if cluster { 4101 } else { 3101 };
    let mut pid = || {
        next_pid += 1;
        next_pid - 1
    };
    let mut down: Vec<(f64, f64)> = Vec::new();
    if cluster {
        for _ in 0..workers {
            procs.push((pid(), "v1", 0.0, f64::INFINITY));
        }
        let mut plan: Vec<f64> = kill_ts.clone();
        plan.push(deploy_t);
        plan.sort_by(f64::total_cmp);
        for t in plan {
            let live: Vec<usize> = (0..procs.len())
                .filter(|&i| procs[i].2 <= t && procs[i].3 > t)
                .collect();
            if t == deploy_t {
                events.push((t, "deploy", 4100, "SIGTERM".into()));
                for (k, i) in live.into_iter().enumerate() {
                    let start = t + 0.3 + k as f64 * 0.9;
                    let new = pid();
                    procs.push((new, "v2", start, f64::INFINITY));
                    events.push((start, "worker-started", new, String::new()));
                    procs[i].3 = start + 0.6;
                    events.push((start + 0.6, "worker-exited", procs[i].0, "exit 0".into()));
                }
                continue;
            }
            let victim = live[(rng.next() * live.len() as f64) as usize % live.len()];
            let (vpid, version) = (procs[victim].0, procs[victim].1);
            procs[victim].3 = t;
            events.push((t, "kill", vpid, "SIGKILL".into()));
            events.push((t + 0.02, "worker-exited", vpid, "signal 9 (SIGKILL)".into()));
            let new = pid();
            let back = t + 0.18 + rng.next() * 0.1;
            procs.push((new, version, back, f64::INFINITY));
            events.push((back, "worker-started", new, String::new()));
        }
    } else {
        procs.push((pid(), "v1", 0.0, f64::INFINITY));
        let mut restart =
            |t: f64, drain: f64, gap: f64, kind: &'static str, version: &'static str| {
                let i = procs.len() - 1;
                let old = procs[i].0;
                events.push((
                    t,
                    kind,
                    old,
                    if kind == "kill" {
                        "SIGKILL".into()
                    } else {
                        "SIGTERM".into()
                    },
                ));
                let exit = t + drain;
                procs[i].3 = exit;
                events.push((
                    exit,
                    "worker-exited",
                    old,
                    if kind == "kill" {
                        "signal 9 (SIGKILL)".into()
                    } else {
                        "exit 0".into()
                    },
                ));
                let new = pid();
                procs.push((new, version, exit + gap, f64::INFINITY));
                events.push((exit + gap, "server-restarted", new, String::new()));
                events.push((exit + gap, "downtime", new, format!("{:.0}", gap * 1000.0)));
                down.push((exit, exit + gap));
            };
        let mut version = "v1";
        let mut plan: Vec<(f64, &str)> = kill_ts.iter().map(|&t| (t, "kill")).collect();
        plan.push((deploy_t, "deploy"));
        plan.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (t, kind) in plan {
            if kind == "deploy" {
                version = "v2";
                restart(t, 0.4, 1.6, "deploy", version);
            } else {
                restart(t, 0.02, 1.1 + rng.next() * 0.4, "kill", version);
            }
        }
    }
    // The pause hits the process (single) or one live worker (cluster).
    let paused = procs
        .iter()
        .rev()
        .find(|p| p.2 <= pause_t && p.3 > pause_t + pause_len)
        .map_or(0, |p| p.0);
    events.push((pause_t, "pause", paused, format!("{pause_len:.0} s")));
    events.push((pause_t + pause_len, "resume", paused, String::new()));
    events.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut seconds = Vec::with_capacity(n);
    let mut queue = 0.0f64;
    for s in 0..n {
        let (a, b) = (s as f64, s as f64 + 1.0);
        let overlap = |from: f64, until: f64| (until.min(b) - from.max(a)).clamp(0.0, 1.0);
        let serving: Vec<(u32, &'static str, f64)> = procs
            .iter()
            .map(|p| {
                let mut up = overlap(p.2, p.3);
                if p.0 == paused {
                    up -= overlap(pause_t, pause_t + pause_len);
                }
                (p.0, p.1, up.max(0.0))
            })
            .filter(|p| p.2 > 0.0)
            .collect();
        let up_fraction = if cluster {
            (serving.iter().map(|p| p.2).sum::<f64>() / f64::from(workers)).min(1.0)
        } else {
            serving.iter().map(|p| p.2).sum::<f64>().min(1.0)
        };
        let down_fraction: f64 = down
            .iter()
            .map(|&(f, u)| overlap(f, u))
            .sum::<f64>()
            .min(1.0);
        let offered = sent[s] * (0.95 + rng.next() * 0.1);
        // Requests due while the only process is down are refused, retried, then dropped.
        let refused = (offered * down_fraction * 0.7).round();
        let capacity = per_worker * f64::from(workers) * up_fraction * (0.97 + rng.next() * 0.06);
        let demand = queue + offered - refused;
        let served = demand.min(capacity);
        queue = demand - served;
        // Requests still queued after 8 s of wait time out.
        let wait_s = if capacity > 0.0 {
            queue / per_worker
        } else {
            queue / per_worker + 1.0
        };
        let timeout = if wait_s > 8.0 {
            (queue * 0.3).round()
        } else {
            0.0
        };
        queue -= timeout;
        let closed = if !cluster && down_fraction > 0.0 {
            (offered * 0.02).round()
        } else {
            0.0
        };
        let ok = (served - closed).max(0.0).round() as u64;
        let paused_now = overlap(pause_t, pause_t + pause_len) > 0.0;
        let base = 3.0 + 2.0 * rng.next();
        let p50 = base + wait_s * 500.0;
        let mut p99 = p50 * 3.5 + 20.0 + wait_s * 900.0;
        if paused_now {
            p99 = p99.max(if cluster { 1800.0 } else { 2900.0 });
        }
        let max = p99 * (1.4 + rng.next()) + if timeout > 0.0 { 10_000.0 } else { 0.0 };
        let completed = ok + refused as u64 + closed as u64 + timeout as u64;
        if completed > 0 {
            let us = |ms: f64| (ms * 1000.0).max(1.0) as u64;
            hist.saturating_record_n(us(p50 * 0.6), completed / 4);
            hist.saturating_record_n(us(p50), completed / 4);
            hist.saturating_record_n(us(p50 * 1.8), completed / 4);
            hist.saturating_record_n(us(p99 * 0.7), completed / 4 - completed / 100);
            hist.saturating_record_n(us(p99), (completed / 100).max(1) - completed / 1000);
            hist.saturating_record_n(us(max), (completed / 1000).max(1));
        }
        let total_up: f64 = serving.iter().map(|p| p.2).sum();
        let mut share_left = ok;
        let workers_row: Vec<(u32, &'static str, u64)> = serving
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let n = if i + 1 == serving.len() {
                    share_left
                } else {
                    ((ok as f64 * p.2 / total_up) * (0.9 + rng.next() * 0.2)).round() as u64
                };
                let n = n.min(share_left);
                share_left -= n;
                (p.0, p.1, n)
            })
            .filter(|w| w.2 > 0)
            .collect();
        let live = procs.iter().filter(|p| p.2 <= b && p.3 > b).count() as u32;
        seconds.push(Second {
            sent: offered.round() as u64,
            ok,
            refused: refused as u64,
            closed: closed as u64,
            timeout: timeout as u64,
            status_503: 0,
            p50,
            p99,
            max,
            active: active[s].round() as u64,
            live,
            workers: workers_row,
        });
    }
    Mode {
        name: if cluster { "cluster" } else { "single" },
        cluster,
        seconds,
        events,
        hist,
    }
}
