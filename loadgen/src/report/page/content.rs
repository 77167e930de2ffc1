//! What the report says, in order: the verdict, the comparison table and how its
//! numbers are computed, the generator's health, the charts, the per-step summary,
//! the invariants, the thresholds and the chaos events. Built once as [`Block`]s and
//! rendered by both pages.

use super::{Block, Cell, Span, Table, Tone, rich};
use crate::report::ChartFile;
use crate::report::compare::{self, ModeFacts};
use crate::report::data::{EventKind, RunData};
use crate::report::fmt;

/// Chaos rows listed on the page; the rest stay in events.csv.
const MAX_EVENT_ROWS: usize = 60;

pub fn build(run: &RunData, facts: &[ModeFacts], charts: &[ChartFile]) -> Vec<Block> {
    let mut out = vec![intro(run)];
    out.extend(gate_verdict(run));
    out.push(Block::Heading(2, "Single against cluster".into()));
    out.push(Block::Table(comparison(facts)));
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
    out.extend(generator(facts));
    out.push(Block::Heading(2, "Charts".into()));
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

fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
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
    let failed = rows.iter().filter(|r| !r.passed()).count();
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

fn count_tone(n: u64) -> Tone {
    if n == 0 { Tone::Good } else { Tone::Bad }
}

fn comparison(facts: &[ModeFacts]) -> Table {
    let mut head = vec![Cell::text("")];
    head.extend(facts.iter().map(|f| Cell::text(f.mode.clone())));
    let row = |name: &str, cell: &dyn Fn(&ModeFacts) -> Cell| {
        let mut r = vec![Cell::text(name)];
        r.extend(facts.iter().map(cell));
        r
    };
    let rows = vec![
        row(
            "CPU use of the server processes",
            &|f| match (f.server_cores, f.row.server_cpu_s) {
                (Some(cores), Some(cpu)) => Cell::text(format!(
                    "{cores:.2} cores on average ({cpu:.1} CPU-s in {:.0} s)",
                    f.row.duration_s
                )),
                _ => Cell::text("not measured").tone(Tone::Muted),
            },
        ),
        row("Requests dropped on deploy", &|f| {
            let d = &f.deploy;
            if d.deploys == 0 {
                return Cell::text("no deploy in this run").tone(Tone::Muted);
            }
            let mut s = format!(
                "{} dropped, of {} requests completing within 10 s of {}",
                fmt::count(d.dropped),
                fmt::count(d.completed),
                if d.deploys == 1 {
                    "the deploy".to_string()
                } else {
                    format!("{} deploys", d.deploys)
                }
            );
            if d.status_5xx > 0 {
                s.push_str(&format!("; {} answered 5xx", fmt::count(d.status_5xx)));
            }
            Cell::text(s).tone(count_tone(d.dropped + d.status_5xx))
        }),
        row("Crash recovery time", &|f| {
            let r = &f.recovery;
            if r.kills == 0 {
                return Cell::text("no kill in this run").tone(Tone::Muted);
            }
            let mut s = match (r.median_s(), r.worst_s()) {
                (Some(median), Some(worst)) => format!(
                    "median {}, worst {} over {} kill{}",
                    fmt::secs(median),
                    fmt::secs(worst),
                    r.kills,
                    if r.kills == 1 { "" } else { "s" }
                ),
                _ => format!("{} kills", r.kills),
            };
            let tone = if r.unrecovered() > 0 {
                s.push_str(&format!("; {} never recovered", r.unrecovered()));
                Tone::Bad
            } else {
                Tone::Plain
            };
            Cell::text(s).tone(tone)
        }),
        row("Throughput under the spike", &|f| match f.spike {
            Some(s) => Cell::text(format!(
                "{} ok/s ({}-{} s)",
                fmt::count(s.ok_per_s.round() as u64),
                s.from_s,
                s.to_s
            )),
            None => Cell::text("no data").tone(Tone::Muted),
        }),
        row("Deploy strategy", &|f| {
            Cell::text(f.row.deploy_strategy.clone())
        }),
        row("Dropped requests, whole run", &|f| {
            let share = if f.requests > 0 {
                format!(" ({})", fmt::percent(f.dropped as f64 / f.requests as f64))
            } else {
                String::new()
            };
            Cell::text(format!(
                "{} of {}{share}",
                fmt::count(f.dropped),
                fmt::count(f.requests)
            ))
            .tone(count_tone(f.dropped))
        }),
        row("p99 latency, whole run", &|f| match f.p99_ms {
            Some(p99) => Cell::text(fmt::ms(p99)),
            None => Cell::text("no request completed").tone(Tone::Muted),
        }),
    ];
    Table { head, rows }
}

fn generator(facts: &[ModeFacts]) -> Vec<Block> {
    let head = [
        "mode",
        "loadgen CPU",
        "share of all CPU used",
        "processes",
        "peak RSS",
        "start lateness p50 / p99 / max",
        "verdict",
    ]
    .into_iter()
    .map(Cell::text)
    .collect();
    let opt_ms = |v: Option<f64>| v.map_or("-".to_string(), fmt::ms);
    let rows = facts
        .iter()
        .map(|f| {
            let late = f.row.start_lateness_p99_ms;
            let verdict = match late {
                Some(p99) if p99 > compare::LATENESS_P99_LIMIT_MS => {
                    Cell::text("LATE: the generator may have set the pace").tone(Tone::Bad)
                }
                Some(_) => Cell::text("kept to the schedule").tone(Tone::Good),
                None => Cell::text("lateness not measured").tone(Tone::Muted),
            };
            vec![
                Cell::text(f.mode.clone()),
                Cell::num(format!(
                    "{:.2} cores ({:.1} CPU-s)",
                    f.loadgen_cores, f.row.loadgen_cpu_s
                )),
                Cell::num(f.loadgen_share.map_or("-".into(), fmt::percent)),
                Cell::num(f.row.loadgen_processes.to_string()),
                Cell::num(
                    f.row
                        .loadgen_peak_rss_kb
                        .map_or("-".into(), |kb| format!("{} MB", fmt::count(kb / 1024))),
                ),
                Cell::num(format!(
                    "{} / {} / {}",
                    opt_ms(f.row.start_lateness_p50_ms),
                    opt_ms(late),
                    opt_ms(f.row.start_lateness_max_ms)
                )),
                verdict,
            ]
        })
        .collect();
    let users = facts
        .iter()
        .map(|f| {
            let u = f.users;
            let mut spans = vec![Span::Strong(f.mode.clone()), text(": ")];
            if u.all_accounted() {
                spans.push(Span::Toned(
                    Tone::Good,
                    format!(
                        "every one of the {} planned users is accounted for",
                        fmt::count(u.planned)
                    ),
                ));
            } else {
                spans.push(Span::Toned(
                    Tone::Bad,
                    "users are missing from the count".into(),
                ));
            }
            spans.push(text(format!(
                ": {} planned, {} started = {} completed + {} aborted{}.",
                fmt::count(u.planned),
                fmt::count(u.started),
                fmt::count(u.completed),
                fmt::count(u.aborted),
                match (
                    u.planned.checked_sub(u.started),
                    (u.completed + u.aborted).checked_sub(u.started)
                ) {
                    (Some(0), Some(0)) => String::new(),
                    _ => format!(
                        " ({} never started, {} started but neither completed nor aborted)",
                        fmt::count(u.planned.saturating_sub(u.started)),
                        fmt::count(u.started.saturating_sub(u.completed + u.aborted))
                    ),
                }
            )));
            spans
        })
        .collect();
    vec![
        Block::Heading(2, "Was the generator the bottleneck?".into()),
        Block::Para(vec![text(format!(
            "Start lateness is how late users began their journey against the schedule; a p99 \
             above {} ms means the generator could not keep up and the server was not the only \
             limit. Users who abort stop at the first step that fails.",
            compare::LATENESS_P99_LIMIT_MS
        ))]),
        Block::Table(Table { head, rows }),
        Block::Bullets(users),
    ]
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
    let ms = |v: Option<f64>| Cell::num(v.map_or("-".into(), fmt::ms));
    let rows = run
        .summary
        .iter()
        .map(|s| {
            let step = if s.step == "all" {
                Cell::text("all steps")
            } else {
                Cell::text(s.step.clone())
            };
            vec![
                Cell::text(s.mode.clone()),
                step,
                Cell::num(fmt::count(s.requests)),
                Cell::num(fmt::count(s.ok)),
                Cell::num(fmt::count(s.dropped)).tone(count_tone(s.dropped)),
                Cell::num(fmt::count(s.failed)).tone(count_tone(s.failed)),
                Cell::num(fmt::count(s.retried)),
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
            head: ["mode", "check", "expected", "actual", "holds"]
                .into_iter()
                .map(Cell::text)
                .collect(),
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::text(r.mode.clone()),
                        Cell::text(r.check.clone()),
                        Cell::num(r.expected.clone()),
                        Cell::num(r.actual.clone()),
                        if r.holds() {
                            Cell::text("holds").tone(Tone::Good)
                        } else {
                            Cell::text("BROKEN").tone(Tone::Bad)
                        },
                    ]
                })
                .collect(),
        })),
    }
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
                    let tone = if r.passed() { Tone::Good } else { Tone::Bad };
                    vec![
                        Cell::text(r.threshold.clone()),
                        Cell::num(r.actual.clone()),
                        Cell::text(r.verdict.clone()).tone(tone),
                    ]
                })
                .collect(),
        })),
    }
    out
}

fn events(run: &RunData) -> Vec<Block> {
    let noise = |k: &EventKind| matches!(k, EventKind::WorkerStarted | EventKind::WorkerExited);
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
                    let detail = if e.kind == EventKind::Downtime {
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
