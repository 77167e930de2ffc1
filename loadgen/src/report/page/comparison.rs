//! The at-a-glance part of the report: the comparison table of the seed article
//! (one column per mode, numbers from [`compare`]) and the generator's health (its
//! CPU, its lateness against the schedule, every planned user accounted for).

use super::{Block, Cell, Span, Table, Tone, text};
use crate::report::compare::{self, ModeFacts};
use crate::report::fmt;
use crate::runfolder::Ms;

pub fn count_tone(n: u64) -> Tone {
    if n == 0 { Tone::Good } else { Tone::Bad }
}

pub fn comparison(facts: &[ModeFacts]) -> Table {
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
            if !r.observable {
                return Cell::text(format!(
                    "{} kills; restarts not observed (no worker-started, server-restarted or \
                     downtime rows)",
                    r.kills
                ))
                .tone(Tone::Muted);
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

pub fn generator(facts: &[ModeFacts]) -> Vec<Block> {
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
    let opt_ms = |v: Ms| v.get().map_or("-".to_string(), fmt::ms);
    let rows = facts
        .iter()
        .map(|f| {
            let late = f.row.start_lateness_p99_ms;
            let verdict = match late.get() {
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
