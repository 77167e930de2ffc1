//! A deterministic synthetic run in the file contract's layout (`reports/README.md`):
//! a queueing model of a single process and a cluster under a midnight spike, with a
//! deploy, kills and a pause. The numbers are plausible, not measured: this exists to
//! give the renderer fixtures of any size, never to stand in for a real run.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use hdrhistogram::Histogram;

pub struct Spec {
    pub users: u64,
    pub seconds: u32,
    pub workers: u32,
}

/// Requests per user journey, and the steps they are split into.
const STEPS: [(&str, f64, f64); 4] = [
    ("browse", 0.34, 0.8),
    ("view_product", 0.33, 0.9),
    ("add_to_cart", 0.17, 1.1),
    ("checkout", 0.16, 2.4),
];
const REQUESTS_PER_USER: f64 = 6.0;
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

#[derive(Default, Clone)]
struct Second {
    sent: u64,
    ok: u64,
    refused: u64,
    closed: u64,
    timeout: u64,
    status_503: u64,
    p50: f64,
    p99: f64,
    max: f64,
    active: u64,
    live: u32,
    /// (pid, version, responses)
    workers: Vec<(u32, &'static str, u64)>,
}

struct Mode {
    name: &'static str,
    cluster: bool,
    seconds: Vec<Second>,
    events: Vec<(f64, &'static str, u32, String)>,
    hist: Histogram<u64>,
}

pub fn write_run(dir: &Path, spec: &Spec) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let modes = [simulate(spec, false), simulate(spec, true)];
    let mut modes_csv = String::from(
        "mode,started_at,duration_s,users_planned,users_started,users_completed,users_aborted,\
         loadgen_processes,loadgen_cpu_s,loadgen_peak_rss_kb,start_lateness_p50_ms,\
         start_lateness_p99_ms,start_lateness_max_ms,server_cpu_s,server_peak_rss_kb,deploy_strategy\n",
    );
    let mut summary = String::from(
        "mode,step,requests,ok,status_4xx,status_503,status_5xx,refused,closed,timeout,dropped,\
         failed,attempts,attempt_failures,retried,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,mean_ms,\
         throughput_rps\n",
    );
    let mut series = String::from(
        "mode,second,sent,completed,ok,status_4xx,status_503,status_5xx,refused,closed,timeout,\
         dropped,attempt_failures,p50_ms,p99_ms,max_ms,active_users,open_connections,live_workers\n",
    );
    let mut workers = String::from("mode,second,worker_pid,version,responses\n");
    let mut events = String::from("t_s,mode,kind,pid,detail\n");
    let mut invariants = String::from("mode,check,expected,actual,holds\n");
    let duration = f64::from(spec.seconds);
    for (i, m) in modes.iter().enumerate() {
        let total = |f: fn(&Second) -> u64| m.seconds.iter().map(f).sum::<u64>();
        let requests = total(|s| s.ok + s.refused + s.closed + s.timeout + s.status_503);
        let dropped = total(|s| s.refused + s.closed + s.timeout);
        let aborted = (dropped as f64 / REQUESTS_PER_USER * 0.8).round() as u64;
        let aborted = aborted.min(spec.users);
        let server_cpu = if m.cluster { 1.62 } else { 0.97 } * duration;
        let _ = writeln!(
            modes_csv,
            "{},2026-11-25T1{}:00:00Z,{duration:.1},{u},{u},{},{aborted},1,{:.1},{},{:.2},{:.2},{:.2},{server_cpu:.1},{},{}",
            m.name,
            i,
            spec.users - aborted,
            0.31 * duration,
            60_000 + spec.users * 9,
            0.08,
            1.9 + i as f64,
            7.5 + i as f64 * 3.0,
            if m.cluster {
                48_000 * (spec.workers as u64 + 1)
            } else {
                52_000
            },
            if m.cluster {
                "rolling restart by the master"
            } else {
                "\"stop, then start (naive supervisor)\""
            },
            u = spec.users,
        );
        let q = |p: f64| m.hist.value_at_quantile(p) as f64 / 1000.0;
        for (step, share, slowness) in STEPS
            .iter()
            .copied()
            .chain(std::iter::once(("all", 1.0, 1.0)))
        {
            let part = |n: u64| (n as f64 * share).round() as u64;
            let (req, ok) = (part(requests), part(total(|s| s.ok)));
            let (refused, closed, timeout, s503) = (
                part(total(|s| s.refused)),
                part(total(|s| s.closed)),
                part(total(|s| s.timeout)),
                part(total(|s| s.status_503)),
            );
            let ok = ok.min(req - (refused + closed + timeout + s503).min(req));
            let req = ok + refused + closed + timeout + s503;
            let dropped = refused + closed + timeout;
            let _ = writeln!(
                summary,
                "{},{step},{req},{ok},0,{s503},0,{refused},{closed},{timeout},{dropped},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.1}",
                m.name,
                dropped + s503,
                req + dropped * 2,
                dropped * 3,
                dropped,
                q(0.5) * slowness,
                q(0.9) * slowness,
                q(0.99) * slowness,
                q(0.999) * slowness,
                q(1.0) * slowness,
                m.hist.mean() / 1000.0 * slowness,
                req as f64 / duration,
            );
        }
        for (t, s) in m.seconds.iter().enumerate() {
            let completed = s.ok + s.refused + s.closed + s.timeout + s.status_503;
            let lat = |v: f64| {
                if completed == 0 {
                    String::new()
                } else {
                    format!("{v:.3}")
                }
            };
            let _ = writeln!(
                series,
                "{},{t},{},{completed},{},0,{},0,{},{},{},{},{},{},{},{},{},{},{}",
                m.name,
                s.sent,
                s.ok,
                s.status_503,
                s.refused,
                s.closed,
                s.timeout,
                s.refused + s.closed + s.timeout,
                (s.refused + s.closed + s.timeout) * 3 + s.status_503,
                lat(s.p50),
                lat(s.p99),
                lat(s.max),
                s.active,
                s.active,
                s.live,
            );
            for (pid, version, n) in &s.workers {
                let _ = writeln!(workers, "{},{t},{pid},{version},{n}", m.name);
            }
        }
        for (t, kind, pid, detail) in &m.events {
            let _ = writeln!(events, "{t:.3},{},{kind},{pid},{detail}", m.name);
        }
        for check in [
            "lost_orders",
            "duplicate_orders",
            "oversold",
            "vanished_carts",
        ] {
            let _ = writeln!(invariants, "{},{check},0,0,true", m.name);
        }
        let _ = writeln!(invariants, "{},stock_balance,100000,100000,true", m.name);
        fs::write(dir.join(format!("latency-{}.hgrm", m.name)), hgrm(&m.hist))?;
    }
    let cluster_p99 = modes[1].hist.value_at_quantile(0.99) as f64 / 1000.0;
    let thresholds = format!(
        "threshold,actual,verdict\ncluster.dropped == 0,0,pass\ncluster.p99 < 1s,{cluster_p99:.1} ms,{}\nlost_orders == 0,0,pass\n",
        if cluster_p99 < 1000.0 { "pass" } else { "FAIL" }
    );
    fs::write(dir.join("modes.csv"), modes_csv)?;
    fs::write(dir.join("summary.csv"), summary)?;
    fs::write(dir.join("timeseries.csv"), series)?;
    fs::write(dir.join("workers.csv"), workers)?;
    fs::write(dir.join("events.csv"), events)?;
    fs::write(dir.join("invariants.csv"), invariants)?;
    fs::write(dir.join("thresholds.csv"), thresholds)?;
    fs::write(
        dir.join("scenario.toml"),
        format!(
            "# Synthetic run written by the render_report example, not by a real load run.\n\
             name = \"synthetic-spike\"\n\n[load]\nusers = {}\nduration_s = {}\n",
            spec.users, spec.seconds
        ),
    )?;
    Ok(())
}

/// The HdrHistogram percentile-distribution layout, values in milliseconds.
fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let mut count = 0u64;
    for v in h.iter_quantiles(5) {
        count += v.count_since_last_iteration();
        let p = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / 1000.0;
        if p < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {p:14.12} {count:10} {:14.2}",
                1.0 / (1.0 - p)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {p:14.12} {count:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]\n#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0,
        h.max() as f64 / 1000.0,
        h.len(),
        h.buckets(),
        2048
    );
    out
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

fn simulate(spec: &Spec, cluster: bool) -> Mode {
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
