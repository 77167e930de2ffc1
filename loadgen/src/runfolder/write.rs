//! The run's measurements as run-folder rows: modes.csv, summary.csv, timeseries.csv,
//! workers.csv, events.csv and the latency-<mode>.hgrm files, from each mode's `ModeOutcome`
//! and the run's events. Decides what each row says (the `all` summary row, throughput
//! over the mode's duration, 0 for an empty histogram); how it is spelled is `rows`'.

use std::io;
use std::path::Path;

use super::checks;
use super::hgrm::write_hgrm;
use super::rows::{EventKind, EventRow, ModeRow, SecondRow, SummaryRow, WorkerRow};
use super::table::write_rows;
use crate::engine::snapshot::Hist;
use crate::engine::timeline::{ModeOutcome, Timeline};
use crate::observe::events::EventSink;
use crate::outcome::Counts;
use stampede_common::time::rfc3339;

/// Writes every CSV and .hgrm file of the run folder for the modes run so far.
pub fn write_run(dir: &Path, modes: &[ModeOutcome], events: &EventSink) -> io::Result<()> {
    write_rows::<ModeRow>(dir, modes.iter().map(mode_row))?;
    write_rows::<SummaryRow>(dir, modes.iter().flat_map(|m| summary_rows(&m.measured)))?;
    write_rows::<SecondRow>(dir, modes.iter().flat_map(|m| &m.measured.rows))?;
    write_rows::<WorkerRow>(dir, modes.iter().flat_map(|m| worker_rows(&m.measured)))?;
    write_rows::<EventRow>(
        dir,
        events.events.iter().map(|e| EventRow {
            t_s: e.t.as_secs_f64(),
            mode: e.mode.clone(),
            kind: EventKind::Known(e.kind),
            pid: Some(e.pid),
            detail: e.detail.clone(),
        }),
    )?;
    checks::write_invariants(dir, modes)?;
    for m in modes {
        write_hgrm(dir, m.mode(), &m.measured.all_hist().0)?;
    }
    Ok(())
}

fn mode_row(m: &ModeOutcome) -> ModeRow {
    let f = &m.measured.fin;
    ModeRow {
        mode: m.mode().to_string(),
        started_at: rfc3339(m.started_at),
        duration_s: f.duration_s,
        users_planned: f.users_planned,
        users_started: f.users_started,
        users_completed: f.users_completed,
        users_aborted: f.users_aborted,
        users_cut: f.users_cut,
        users_never_started: f.users_never_started,
        loadgen_processes: m.processes,
        loadgen_cpu_s: f.cpu_s,
        loadgen_peak_rss_kb: Some(f.peak_rss_kb),
        start_lateness_p50_ms: f.lateness.ms_at(0.5).into(),
        start_lateness_p99_ms: f.lateness.ms_at(0.99).into(),
        start_lateness_max_ms: f.lateness.max_ms().into(),
        send_lateness_p50_ms: f.send_lateness.ms_at(0.5).into(),
        send_lateness_p99_ms: f.send_lateness.ms_at(0.99).into(),
        send_lateness_max_ms: f.send_lateness.max_ms().into(),
        connections: f.connect.0.len(),
        connect_p50_ms: f.connect.ms_at(0.5).into(),
        connect_p99_ms: f.connect.ms_at(0.99).into(),
        connect_max_ms: f.connect.max_ms().into(),
        generator_late: f.generator_late,
        server_cpu_s: m.server_cost.map(|c| c.cpu_seconds),
        server_peak_rss_kb: m.server_cost.map(|c| c.peak_rss_kb),
        deploy_strategy: m.deploy_strategy.clone(),
    }
}

/// One row per step, then the mode's `all` row.
fn summary_rows(m: &Timeline) -> Vec<SummaryRow> {
    let mut rows: Vec<SummaryRow> = m
        .steps
        .iter()
        .zip(&m.step_counts)
        .zip(&m.fin.step_hists)
        .map(|((step, c), h)| summary_row(m, step, c, h))
        .collect();
    rows.push(summary_row(m, "all", &m.total(), &m.all_hist()));
    rows
}

fn summary_row(m: &Timeline, step: &str, c: &Counts, h: &Hist) -> SummaryRow {
    SummaryRow {
        mode: m.mode.clone(),
        step: step.to_string(),
        counts: *c,
        p50_ms: h.ms_at(0.5).into(),
        p90_ms: h.ms_at(0.9).into(),
        p99_ms: h.ms_at(0.99).into(),
        p999_ms: h.ms_at(0.999).into(),
        max_ms: h.max_ms().into(),
        mean_ms: if h.0.is_empty() {
            0.0
        } else {
            h.0.mean() / 1000.0
        }
        .into(),
        throughput_rps: if m.fin.duration_s > 0.0 {
            c.completed() as f64 / m.fin.duration_s
        } else {
            0.0
        },
    }
}

fn worker_rows(m: &Timeline) -> impl Iterator<Item = WorkerRow> + '_ {
    m.workers.iter().map(|(second, w)| WorkerRow {
        mode: m.mode.clone(),
        second: *second,
        worker_pid: w.pid,
        version: w.version.clone(),
        responses: w.responses,
    })
}
