//! What the report says, in order: the verdict, the comparison table and how its
//! numbers are computed, the generator's health, the charts, the per-step summary,
//! the invariants, the thresholds and the chaos events. Built once as [`Block`]s and
//! rendered by both pages.

use super::comparison::{comparison, count_tone, generator};
use super::{Block, Cell, Span, Table, Tone, rich, text};
use crate::observe::events::Kind;
use crate::outcome::Class;
use crate::report::ChartFile;
use crate::report::compare::{self, ModeFacts};
use crate::report::data::RunData;
use crate::report::fmt;
use crate::runfolder::{EventKind, Ms};

/// Chaos rows listed on the page; the rest stay in events.csv.
const MAX_EVENT_ROWS: usize = 60;

pub fn build(run: &RunData, facts: &[ModeFacts], charts: &[ChartFile]) -> Vec<Block> {
    let mut out = vec![intro(run)];
    out.extend(gate_verdict(run));
    out.push(Block::Heading(
        2,
        capitalised(&run.mode_names().join(" against ")),
    ));
    out.push(Block::Table(comparison(facts, run.retry.as_ref())));
    out.push(Block::Heading(3, "How these numbers are computed".into()));
    let mut defs: Vec<(String, Vec<Span>)> = compare::DEFINITIONS
        .iter()
        .map(|(t, d)| (t.to_string(), rich(d)))
        .collect();
    defs.push((
        "Dropped requests, whole run; p99 latency".into(),
        rich(
            "from the `all` row of each mode in summary.csv; latency is measured from when \
             each request was due, so stalls count.",
        ),
    ));
    out.push(Block::Definitions(defs));
    out.extend(generator(facts, run.late_budget));
    out.push(Block::Heading(2, "Charts".into()));
    let without_histogram: Vec<&str> = run
        .mode_names()
        .into_iter()
        .filter(|m| !run.histograms.contains_key(*m))
        .collect();
    if !without_histogram.is_empty() {
        out.push(Block::Para(vec![Span::Toned(
            Tone::Muted,
            format!(
                "No latency histogram (latency-<mode>.hgrm) for {}: the percentile chart leaves \
                 it out.",
                without_histogram.join(", ")
            ),
        )]));
    }
    out.extend(charts.iter().map(|c| {
        Block::Figure {
            src: c
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            alt: c.title.clone(),
            caption: c.caption.clone(),
            width: c.width,
            height: c.height,
        }
    }));
    out.push(Block::Heading(2, "Requests per step".into()));
    out.push(Block::Table(steps(run)));
    out.extend(invariants(run));
    out.extend(thresholds(run));
    out.extend(events(run));
    out.push(Block::Para(vec![Span::Toned(
        Tone::Muted,
        "Rendered by loadgen from the CSV and .hgrm files in this directory alone; \
             reports/README.md explains every file and column."
            .into(),
    )]));
    out
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn intro(run: &RunData) -> Block {
    let mut spans = vec![text("Modes, in the order they ran: ")];
    for (i, m) in run.modes.iter().enumerate() {
        if i > 0 {
            spans.push(text("; "));
        }
        spans.push(Span::Strong(m.mode.clone()));
        spans.push(text(format!(
            " (started {}, {:.0} s of load, {} users planned)",
            m.started_at,
            m.duration_s,
            fmt::count(m.users_planned)
        )));
    }
    spans.push(text("."));
    Block::Para(spans)
}

fn gate_verdict(run: &RunData) -> Option<Block> {
    let rows = run.thresholds.as_ref()?;
    let failed = rows.iter().filter(|r| !r.pass).count();
    let span = if failed == 0 {
        Span::Toned(
            Tone::Good,
            format!("CI gate: all {} thresholds pass.", rows.len()),
        )
    } else {
        Span::Toned(
            Tone::Bad,
            format!("CI gate: {failed} of {} thresholds FAIL.", rows.len()),
        )
    };
    Some(Block::Para(vec![span]))
}

fn steps(run: &RunData) -> Table {
    let head = [
        "mode",
        "step",
        "requests",
        "ok",
        "dropped",
        "failed",
        "retried",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "throughput",
    ]
    .iter()
    .enumerate()
    .map(|(i, h)| if i < 2 { Cell::text(*h) } else { Cell::num(*h) })
    .collect();
    let ms = |v: Ms| Cell::num(v.get().map_or("-".into(), fmt::ms));
    let rows = run
        .summary
        .iter()
        .map(|s| {
            let step = if s.step == "all" {
                Cell::text("all steps").tone(Tone::Strong)
            } else {
                Cell::text(s.step.clone())
            };
            let c = &s.counts;
            vec![
                Cell::text(s.mode.clone()),
                step,
                Cell::num(fmt::count(c.completed())),
                Cell::num(fmt::count(c.class(Class::Ok))),
                Cell::num(fmt::count(c.dropped())).tone(count_tone(c.dropped())),
                Cell::num(fmt::count(c.failed())).tone(count_tone(c.failed())),
                Cell::num(fmt::count(c.retried)),
                ms(s.p50_ms),
                ms(s.p90_ms),
                ms(s.p99_ms),
                ms(s.p999_ms),
                ms(s.max_ms),
                Cell::num(format!("{:.1}/s", s.throughput_rps)),
            ]
        })
        .collect();
    Table { head, rows }
}

fn invariants(run: &RunData) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Invariants".into())];
    match &run.invariants {
        None => out.push(Block::Para(vec![Span::Toned(
            Tone::Muted,
            "Not checked: this run has no invariants.csv (the target is not the shop server, \
             or its audit view could not be read)."
                .into(),
        )])),
        Some(rows) => out.push(Block::Table(Table {
            head: vec![
                Cell::text("mode"),
                Cell::text("check"),
                Cell::text("compared"),
                Cell::num("items"),
                Cell::num("expected"),
                Cell::num("actual"),
                Cell::text("holds"),
            ],
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::text(r.mode.clone()),
                        Cell::text(r.check.clone()),
                        Cell::text(r.compared.clone()),
                        Cell::num(r.items.map_or("-".into(), fmt::count)),
                        Cell::num(r.expected.clone()),
                        Cell::num(r.actual.clone()),
                        if r.holds {
                            Cell::text("holds").tone(Tone::Good)
                        } else {
                            Cell::text("BROKEN").tone(Tone::Bad)
                        },
                    ]
                })
                .collect(),
        })),
    }
    out.extend(super::stock::hot_products(run));
    out
}

fn thresholds(run: &RunData) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Thresholds".into())];
    match &run.thresholds {
        None => out.push(Block::Para(vec![Span::Toned(
            Tone::Muted,
            "Not checked: the scenario sets no thresholds.".into(),
        )])),
        Some(rows) => out.push(Block::Table(Table {
            head: ["threshold", "actual", "verdict"]
                .into_iter()
                .map(Cell::text)
                .collect(),
            rows: rows
                .iter()
                .map(|r| {
                    let (verdict, tone) = if r.pass {
                        ("pass", Tone::Good)
                    } else {
                        ("FAIL", Tone::Bad)
                    };
                    vec![
                        Cell::text(r.threshold.clone()),
                        Cell::num(r.actual.clone()),
                        Cell::text(verdict).tone(tone),
                    ]
                })
                .collect(),
        })),
    }
    out
}

fn events(run: &RunData) -> Vec<Block> {
    let noise = |k: &EventKind| {
        matches!(
            k,
            EventKind::Known(Kind::WorkerStarted) | EventKind::Known(Kind::WorkerExited)
        )
    };
    let mode_rank = |m: &str| run.modes.iter().position(|r| r.mode == m);
    let mut chaos: Vec<_> = run.events.iter().filter(|e| !noise(&e.kind)).collect();
    chaos.sort_by_key(|e| mode_rank(&e.mode)); // stable: time order within a mode
    let worker_rows = run.events.len() - chaos.len();
    let mut out = vec![Block::Heading(2, "Chaos and restarts".into())];
    if chaos.is_empty() {
        out.push(Block::Para(vec![Span::Toned(
            Tone::Muted,
            "No chaos action or restart was recorded in this run.".into(),
        )]));
    } else {
        out.push(Block::Table(Table {
            head: vec![
                Cell::num("t (s)"),
                Cell::text("mode"),
                Cell::text("event"),
                Cell::num("pid"),
                Cell::text("detail"),
            ],
            rows: chaos
                .iter()
                .take(MAX_EVENT_ROWS)
                .map(|e| {
                    let detail = if e.kind == EventKind::Known(Kind::Downtime) {
                        format!("{} ms down, exit to ready", e.detail)
                    } else {
                        e.detail.clone()
                    };
                    vec![
                        Cell::num(format!("{:.2}", e.t_s)),
                        Cell::text(e.mode.clone()),
                        Cell::text(e.kind.as_str()),
                        Cell::num(e.pid.map_or("-".into(), |p| p.to_string())),
                        Cell::text(detail),
                    ]
                })
                .collect(),
        }));
    }
    let mut note = Vec::new();
    if chaos.len() > MAX_EVENT_ROWS {
        note.push(format!(
            "The first {MAX_EVENT_ROWS} of {} rows are shown.",
            chaos.len()
        ));
    }
    if worker_rows > 0 {
        note.push(format!(
            "{} worker-started and worker-exited rows are in events.csv.",
            fmt::count(worker_rows as u64)
        ));
    }
    if !note.is_empty() {
        out.push(Block::Para(vec![Span::Toned(Tone::Muted, note.join(" "))]));
    }
    out
}
