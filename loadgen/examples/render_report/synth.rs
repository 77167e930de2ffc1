//! A deterministic synthetic run in the file contract's layout (`reports/README.md`),
//! written from the [`crate::model`] of a single process and a cluster under a
//! midnight spike, through the library's own run-folder rows and `.hgrm` writer, so it
//! is laid out exactly as a real run. The numbers are plausible, not measured: this
//! exists to give the renderer fixtures of any size, never to stand in for a real run.

use std::fs;
use std::path::Path;

use loadgen::outcome::{Class, Counts};
use loadgen::runfolder::{
    EventKind, EventRow, InvariantRow, ModeRow, Ms, SecondRow, StockRow, SummaryRow, ThresholdRow,
    WorkerRow, table, write_hgrm, write_rows,
};

use crate::model::{REQUESTS_PER_USER, Second, Spec, simulate};

/// The journey's steps: name, share of the requests, latency relative to the mean.
const STEPS: [(&str, f64, f64); 4] = [
    ("browse", 0.34, 0.8),
    ("view_product", 0.33, 0.9),
    ("add_to_cart", 0.17, 1.1),
    ("checkout", 0.16, 2.4),
];

/// Requests by final class; the model answers nothing with a 4xx or another 5xx.
fn counts(ok: u64, status_503: u64, refused: u64, closed: u64, timeout: u64) -> Counts {
    let mut c = Counts::default();
    for (class, n) in [
        (Class::Ok, ok),
        (Class::Status503, status_503),
        (Class::Refused, refused),
        (Class::Closed, closed),
        (Class::Timeout, timeout),
    ] {
        c.classes[class as usize] = n;
    }
    c
}

pub fn write_run(dir: &Path, spec: &Spec) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let modes = [simulate(spec, false), simulate(spec, true)];
    let (mut mode_rows, mut summary, mut series) = (Vec::new(), Vec::new(), Vec::new());
    let (mut workers, mut events, mut invariants) = (Vec::new(), Vec::new(), Vec::new());
    let mut stock = Vec::new();
    let duration = f64::from(spec.seconds);
    for (i, m) in modes.iter().enumerate() {
        let total = |f: fn(&Second) -> u64| m.seconds.iter().map(f).sum::<u64>();
        let requests = total(|s| s.ok + s.refused + s.closed + s.timeout + s.status_503);
        let dropped = total(|s| s.refused + s.closed + s.timeout);
        let aborted = (dropped as f64 / REQUESTS_PER_USER * 0.8).round() as u64;
        let aborted = aborted.min(spec.users);
        mode_rows.push(ModeRow {
            mode: m.name.to_string(),
            started_at: format!("2026-11-25T1{i}:00:00Z"),
            duration_s: duration,
            users_planned: spec.users,
            users_started: spec.users,
            users_completed: spec.users - aborted,
            users_aborted: aborted,
            loadgen_processes: 1,
            loadgen_cpu_s: 0.31 * duration,
            loadgen_peak_rss_kb: Some(60_000 + spec.users * 9),
            start_lateness_p50_ms: Ms::from(0.08),
            start_lateness_p99_ms: Ms::from(1.9 + i as f64),
            start_lateness_max_ms: Ms::from(7.5 + i as f64 * 3.0),
            server_cpu_s: Some(if m.cluster { 1.62 } else { 0.97 } * duration),
            server_peak_rss_kb: Some(if m.cluster {
                48_000 * (u64::from(spec.workers) + 1)
            } else {
                52_000
            }),
            deploy_strategy: if m.cluster {
                "rolling restart by the master"
            } else {
                "stop, then start (naive supervisor)"
            }
            .to_string(),
            send_lateness_p50_ms: Ms::from(0.05),
            send_lateness_p99_ms: Ms::from(1.2 + i as f64),
            send_lateness_max_ms: Ms::from(6.0 + i as f64 * 3.0),
            ..ModeRow::default()
        });
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
            summary.push(SummaryRow {
                mode: m.name.to_string(),
                step: step.to_string(),
                counts: Counts {
                    attempts: req + dropped * 2,
                    attempt_failures: dropped * 3,
                    retried: dropped,
                    ..counts(ok, s503, refused, closed, timeout)
                },
                p50_ms: Ms::from(q(0.5) * slowness),
                p90_ms: Ms::from(q(0.9) * slowness),
                p99_ms: Ms::from(q(0.99) * slowness),
                p999_ms: Ms::from(q(0.999) * slowness),
                max_ms: Ms::from(q(1.0) * slowness),
                mean_ms: Ms::from(m.hist.mean() / 1000.0 * slowness),
                throughput_rps: req as f64 / duration,
            });
        }
        for (t, s) in m.seconds.iter().enumerate() {
            let dropped = s.refused + s.closed + s.timeout;
            let completed = s.ok + dropped + s.status_503;
            // Like some writers, leave the latency of a second without answers empty.
            let lat = |v: f64| {
                if completed == 0 {
                    Ms::EMPTY
                } else {
                    Ms::from(v)
                }
            };
            series.push(SecondRow {
                mode: m.name.to_string(),
                second: t as u32,
                counts: Counts {
                    sent: s.sent,
                    attempt_failures: dropped * 3 + s.status_503,
                    ..counts(s.ok, s.status_503, s.refused, s.closed, s.timeout)
                },
                p50_ms: lat(s.p50),
                p99_ms: lat(s.p99),
                max_ms: lat(s.max),
                active_users: s.active,
                open_connections: s.active,
                live_workers: Some(s.live),
                ..SecondRow::default()
            });
            workers.extend(s.workers.iter().map(|(pid, version, n)| WorkerRow {
                mode: m.name.to_string(),
                second: t as u32,
                worker_pid: *pid,
                version: version.to_string(),
                responses: *n,
            }));
        }
        events.extend(m.events.iter().map(|(t, kind, pid, detail)| EventRow {
            t_s: *t,
            mode: m.name.to_string(),
            kind: EventKind::parse(kind),
            pid: Some(*pid),
            detail: detail.clone(),
        }));
        let checks = [
            (
                "lost_orders",
                "0",
                "every confirmed order, looked up again",
                15_300,
            ),
            (
                "duplicate_orders",
                "0",
                "the listing's orders per key",
                15_300,
            ),
            (
                "phantom_orders",
                "0",
                "the listing against the keys sent",
                15_300,
            ),
            ("oversold", "0", "per product: sold against stock", 100),
            ("vanished_carts", "0", "every cart, looked up again", 30_000),
            (
                "stock_balance",
                "2000000",
                "per product: initial = stock + sold",
                100,
            ),
        ];
        invariants.extend(checks.map(|(check, value, compared, items)| InvariantRow {
            mode: m.name.to_string(),
            check: check.to_string(),
            expected: value.to_string(),
            actual: value.to_string(),
            holds: true,
            compared: compared.to_string(),
            items: Some(items),
        }));
        stock.extend(
            [(1, 300, 300), (2, 20_000, 15_000)].map(|(product, initial, sold)| StockRow {
                mode: m.name.to_string(),
                product: format!("{product}"),
                initial_stock: initial,
                stock: initial - sold,
                sold,
                promised: Some(sold),
            }),
        );
        write_hgrm(dir, m.name, &m.hist)?;
    }
    let cluster_p99 = modes[1].hist.value_at_quantile(0.99) as f64 / 1000.0;
    let threshold = |rule: &str, actual: String, pass: bool| ThresholdRow {
        threshold: rule.to_string(),
        actual,
        pass,
    };
    let thresholds = [
        threshold("cluster.dropped == 0", "0".into(), true),
        threshold(
            "cluster.p99 < 1s",
            format!("{cluster_p99:.1} ms"),
            cluster_p99 < 1000.0,
        ),
        threshold("lost_orders == 0", "0".into(), true),
    ];
    write_rows::<ModeRow>(dir, mode_rows)?;
    write_rows::<SummaryRow>(dir, summary)?;
    write_rows::<SecondRow>(dir, series)?;
    write_rows::<WorkerRow>(dir, workers)?;
    write_rows::<EventRow>(dir, events)?;
    write_rows::<InvariantRow>(dir, invariants)?;
    write_rows::<StockRow>(dir, stock)?;
    write_rows::<ThresholdRow>(dir, thresholds)?;
    fs::write(
        dir.join(table::SCENARIO),
        format!(
            "# Synthetic run written by the render_report example, not by a real load run.\n\
             name = \"synthetic-spike\"\n\n[load]\nusers = {}\nduration_s = {}\n",
            spec.users, spec.seconds
        ),
    )?;
    Ok(())
}
