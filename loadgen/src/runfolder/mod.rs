//! Writing a run folder exactly as reports/README.md specifies: modes.csv,
//! summary.csv, timeseries.csv, workers.csv, events.csv and latency-<mode>.hgrm
//! (the scenario copy is written when the run starts); the verdict files,
//! invariants.csv and thresholds.csv, are `checks`'. Reads merged `ModeData`;
//! formats numbers only here (milliseconds with microsecond precision).

mod checks;

pub use checks::write_thresholds;

use crate::engine::snapshot::Hist;
use crate::engine::timeline::ModeData;
use crate::observe::events::EventSink;
use crate::outcome::{CLASSES, Class, Counts};
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn ms(v: f64) -> String {
    format!("{v:.3}")
}

/// Writes every CSV and .hgrm file of the run folder for the modes run so far.
pub fn write_run(dir: &Path, modes: &[ModeData], events: &EventSink) -> io::Result<()> {
    write_modes(dir, modes)?;
    write_summary(dir, modes)?;
    write_timeseries(dir, modes)?;
    write_workers(dir, modes)?;
    write_events(dir, events)?;
    checks::write_invariants(dir, modes)?;
    for m in modes {
        std::fs::write(
            dir.join(format!("latency-{}.hgrm", m.mode)),
            hgrm(&m.all_hist()),
        )?;
    }
    Ok(())
}

pub(crate) fn csv_err(e: csv::Error) -> io::Error {
    io::Error::other(e)
}

fn write_modes(dir: &Path, modes: &[ModeData]) -> io::Result<()> {
    let mut w = csv::Writer::from_path(dir.join("modes.csv")).map_err(csv_err)?;
    w.write_record([
        "mode",
        "started_at",
        "duration_s",
        "users_planned",
        "users_started",
        "users_completed",
        "users_aborted",
        "loadgen_processes",
        "loadgen_cpu_s",
        "loadgen_peak_rss_kb",
        "start_lateness_p50_ms",
        "start_lateness_p99_ms",
        "start_lateness_max_ms",
        "server_cpu_s",
        "server_peak_rss_kb",
        "deploy_strategy",
    ])
    .map_err(csv_err)?;
    for m in modes {
        let f = &m.fin;
        w.write_record([
            m.mode.clone(),
            rfc3339(m.started_at),
            format!("{:.3}", f.duration_s),
            f.users_planned.to_string(),
            f.users_started.to_string(),
            f.users_completed.to_string(),
            f.users_aborted.to_string(),
            m.processes.to_string(),
            format!("{:.3}", f.cpu_s),
            f.peak_rss_kb.to_string(),
            ms(f.lateness.ms_at(0.5)),
            ms(f.lateness.ms_at(0.99)),
            ms(f.lateness.max_ms()),
            m.server_cost
                .map(|c| format!("{:.3}", c.cpu_seconds))
                .unwrap_or_default(),
            m.server_cost
                .map(|c| c.peak_rss_kb.to_string())
                .unwrap_or_default(),
            m.deploy_strategy.clone(),
        ])
        .map_err(csv_err)?;
    }
    w.flush()
}

fn summary_record(mode: &ModeData, step: &str, c: &Counts, h: &Hist) -> Vec<String> {
    let mut r = vec![
        mode.mode.clone(),
        step.to_string(),
        c.completed().to_string(),
    ];
    r.extend(CLASSES.iter().map(|k| c.class(*k).to_string()));
    r.extend([
        c.dropped().to_string(),
        c.failed().to_string(),
        c.attempts.to_string(),
        c.attempt_failures.to_string(),
        c.retried.to_string(),
        ms(h.ms_at(0.5)),
        ms(h.ms_at(0.9)),
        ms(h.ms_at(0.99)),
        ms(h.ms_at(0.999)),
        ms(h.max_ms()),
        ms(if h.0.is_empty() {
            0.0
        } else {
            h.0.mean() / 1000.0
        }),
        format!(
            "{:.2}",
            if mode.fin.duration_s > 0.0 {
                c.completed() as f64 / mode.fin.duration_s
            } else {
                0.0
            }
        ),
    ]);
    r
}

fn write_summary(dir: &Path, modes: &[ModeData]) -> io::Result<()> {
    let mut w = csv::Writer::from_path(dir.join("summary.csv")).map_err(csv_err)?;
    let mut header = vec!["mode", "step", "requests"];
    header.extend(CLASSES.iter().map(|c| c.name()));
    header.extend([
        "dropped",
        "failed",
        "attempts",
        "attempt_failures",
        "retried",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
        "mean_ms",
        "throughput_rps",
    ]);
    w.write_record(&header).map_err(csv_err)?;
    for m in modes {
        for (i, step) in m.steps.iter().enumerate() {
            w.write_record(summary_record(
                m,
                step,
                &m.step_counts[i],
                &m.fin.step_hists[i],
            ))
            .map_err(csv_err)?;
        }
        w.write_record(summary_record(m, "all", &m.total(), &m.all_hist()))
            .map_err(csv_err)?;
    }
    w.flush()
}

fn write_timeseries(dir: &Path, modes: &[ModeData]) -> io::Result<()> {
    let mut w = csv::Writer::from_path(dir.join("timeseries.csv")).map_err(csv_err)?;
    let mut header = vec!["mode", "second", "sent", "completed"];
    header.extend(CLASSES.iter().map(|c| c.name()));
    header.extend([
        "dropped",
        "attempt_failures",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "active_users",
        "open_connections",
        "live_workers",
    ]);
    w.write_record(&header).map_err(csv_err)?;
    for m in modes {
        for r in &m.rows {
            let c = &r.counts;
            let mut rec = vec![
                m.mode.clone(),
                r.second.to_string(),
                c.sent.to_string(),
                c.completed().to_string(),
            ];
            rec.extend(CLASSES.iter().map(|k| c.class(*k).to_string()));
            rec.extend([
                c.dropped().to_string(),
                c.attempt_failures.to_string(),
                ms(r.p50_ms),
                ms(r.p99_ms),
                ms(r.max_ms),
                r.active_users.to_string(),
                r.open_connections.to_string(),
                r.live_workers.map(|n| n.to_string()).unwrap_or_default(),
            ]);
            w.write_record(&rec).map_err(csv_err)?;
        }
    }
    w.flush()
}

fn write_workers(dir: &Path, modes: &[ModeData]) -> io::Result<()> {
    let mut w = csv::Writer::from_path(dir.join("workers.csv")).map_err(csv_err)?;
    w.write_record(["mode", "second", "worker_pid", "version", "responses"])
        .map_err(csv_err)?;
    for m in modes {
        for (second, wc) in &m.workers {
            w.write_record([
                m.mode.clone(),
                second.to_string(),
                wc.pid.to_string(),
                wc.version.clone(),
                wc.responses.to_string(),
            ])
            .map_err(csv_err)?;
        }
    }
    w.flush()
}

fn write_events(dir: &Path, events: &EventSink) -> io::Result<()> {
    let mut w = csv::Writer::from_path(dir.join("events.csv")).map_err(csv_err)?;
    w.write_record(["t_s", "mode", "kind", "pid", "detail"])
        .map_err(csv_err)?;
    for e in &events.events {
        w.write_record([
            format!("{:.3}", e.t.as_secs_f64()),
            e.mode.clone(),
            e.kind.name().to_string(),
            e.pid.to_string(),
            e.detail.clone(),
        ])
        .map_err(csv_err)?;
    }
    w.flush()
}

/// HdrHistogram's percentile-distribution text, values in milliseconds.
pub fn hgrm(h: &Hist) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let h = &h.0;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / 1000.0;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / 1000.0,
            h.stdev() / 1000.0,
            h.max() as f64 / 1000.0,
        )
    };
    let _ = writeln!(s, "#[Mean    = {mean:12.3}, StdDeviation   = {sd:12.3}]");
    let _ = writeln!(
        s,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        2048
    );
    s
}

/// RFC 3339 UTC timestamp, e.g. 2026-11-25T13:40:22Z.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Folder-name timestamp, e.g. 20261125-134022.
pub fn stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The end-of-run table, one line per mode.
pub fn summary_table(modes: &[ModeData]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "mode",
        "requests",
        "ok",
        "dropped",
        "failed",
        "retried",
        "503",
        "5xx",
        "p50 ms",
        "p99 ms",
        "max ms",
        "req/s"
    );
    for m in modes {
        let c = m.total();
        let h = m.all_hist();
        let rps = if m.fin.duration_s > 0.0 {
            c.completed() as f64 / m.fin.duration_s
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.1}",
            m.mode,
            c.completed(),
            c.class(Class::Ok),
            c.dropped(),
            c.failed(),
            c.retried,
            c.class(Class::Status503),
            c.class(Class::Status5xx),
            h.ms_at(0.5),
            h.ms_at(0.99),
            h.max_ms(),
            rps
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_614_022);
        assert_eq!(rfc3339(t), "2026-11-25T13:40:22Z");
        assert_eq!(stamp(UNIX_EPOCH), "19700101-000000");
    }

    #[test]
    fn hgrm_layout() {
        let mut h = Hist::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let text = hgrm(&h);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(
            text.contains("#[Max     =     1000.447, Total count    =         1000]"),
            "{text}"
        );
    }
}
