//! A deterministic synthetic run in the file contract's layout (`reports/README.md`),
//! written from the [`crate::model`] of a single process and a cluster under a
//! midnight spike. The numbers are plausible, not measured: this exists to give the
//! renderer fixtures of any size, never to stand in for a real run.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use hdrhistogram::Histogram;

use crate::model::{REQUESTS_PER_USER, Second, Spec, simulate};

/// The journey's steps: name, share of the requests, latency relative to the mean.
const STEPS: [(&str, f64, f64); 4] = [
    ("browse", 0.34, 0.8),
    ("view_product", 0.33, 0.9),
    ("add_to_cart", 0.17, 1.1),
    ("checkout", 0.16, 2.4),
];

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
