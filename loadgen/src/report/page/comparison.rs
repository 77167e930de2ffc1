//! The at-a-glance part of the report: the comparison table of the seed article
//! (one column per mode, numbers from [`compare`]) and the generator's health (its
//! CPU, its lateness against the schedule, every planned user accounted for).

use super::{Block, Cell, Span, Table, Tone, text};
use crate::report::attribution::{self, Cause};
use crate::report::compare::{self, ModeFacts};
use crate::report::fmt;
use crate::runfolder::Ms;

pub fn count_tone(n: u64) -> Tone {
    if n == 0 { Tone::Good } else { Tone::Bad }
}

/// Dropped (and 5xx) requests charged to one kind of chaos action: from its start to
/// its end (a deploy by command lasts; a signal is an instant) and the window after.
fn cause_cell(c: &Cause, what: &str, none: &str) -> Cell {
    if c.events == 0 {
        return Cell::text(none).tone(Tone::Muted);
    }
    let mut s = format!(
        "{} dropped, of {} requests completing during {} and the {} s after",
        fmt::count(c.dropped),
        fmt::count(c.completed),
        if c.events == 1 {
            format!("the {what}")
        } else {
            format!("{} {what}s", c.events)
        },
        attribution::WINDOW_S,
    );
    if c.status_5xx > 0 {
        s.push_str(&format!("; {} answered 5xx", fmt::count(c.status_5xx)));
    }
    Cell::text(s).tone(count_tone(c.dropped + c.status_5xx))
}

pub fn comparison(facts: &[ModeFacts], retry: Option<&(u32, String)>) -> Table {
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
            cause_cell(&f.drops.deploy, "deploy", "no deploy in this run")
        }),
        row("Requests dropped after a kill", &|f| {
            cause_cell(&f.drops.kill, "kill", "no kill in this run")
        }),
        row("Requests dropped after a pause", &|f| {
            cause_cell(&f.drops.pause, "pause", "no pause in this run")
        }),
        row("Requests dropped away from any chaos", &|f| {
            Cell::text(fmt::count(f.drops.elsewhere)).tone(count_tone(f.drops.elsewhere))
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
        row("Retry budget (the same for every mode)", &|_| {
            Cell::text(match retry {
                Some((0, _)) | None => "no retries".to_string(),
                Some((n, backoff)) => format!(
                    "{n} retries of a request that got no answer, {backoff} apart and doubling"
                ),
            })
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
        row("Shoppers who failed", &|f| {
            let u = f.users;
            let failed = u.aborted + u.cut;
            let share = if u.planned > 0 {
                format!(" ({})", fmt::percent(failed as f64 / u.planned as f64))
            } else {
                String::new()
            };
            Cell::text(format!(
                "{} of {}{share} stopped before the end of their journey",
                fmt::count(failed),
                fmt::count(u.planned)
            ))
            .tone(count_tone(failed))
        }),
        row("p99 latency, whole run", &|f| match f.p99_ms {
            Some(p99) => Cell::text(fmt::ms(p99)),
            None => Cell::text("no request completed").tone(Tone::Muted),
        }),
    ];
    Table { head, rows }
}

pub fn generator(facts: &[ModeFacts], late_budget: f64) -> Vec<Block> {
    let head = [
        "mode",
        "loadgen CPU",
        "share of all CPU used",
        "processes",
        "peak RSS",
        "start lateness p50 / p99 / max",
        "send lateness p50 / p99 / max",
        "late requests",
        "connection setup p50 / p99 / max",
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
            let verdict = match compare::generator_verdict(f, late_budget) {
                compare::Pace::Late => {
                    Cell::text("LATE: the generator set the pace").tone(Tone::Bad)
                }
                compare::Pace::OnTime => Cell::text("kept to the schedule").tone(Tone::Good),
                compare::Pace::Unknown => Cell::text("lateness not measured").tone(Tone::Muted),
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
                Cell::num(format!(
                    "{} / {} / {}",
                    opt_ms(f.row.send_lateness_p50_ms),
                    opt_ms(f.row.send_lateness_p99_ms),
                    opt_ms(f.row.send_lateness_max_ms)
                )),
                Cell::num(fmt::count(f.row.generator_late)),
                // Connect (and TLS handshake), apart from request latency; none in a
                // folder written before it was measured.
                Cell::num(match f.row.connections {
                    0 => "-".to_string(),
                    n => format!(
                        "{} / {} / {} ({} connections)",
                        opt_ms(f.row.connect_p50_ms),
                        opt_ms(f.row.connect_p99_ms),
                        opt_ms(f.row.connect_max_ms),
                        fmt::count(n)
                    ),
                }),
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
                ": {} planned = {} completed + {} aborted + {} cut off + {} never started.",
                fmt::count(u.planned),
                fmt::count(u.completed),
                fmt::count(u.aborted),
                fmt::count(u.cut),
                fmt::count(u.never_started),
            )));
            spans
        })
        .collect();
    vec![
        Block::Heading(2, "Was the generator the bottleneck?".into()),
        Block::Para(vec![text(format!(
            "Start lateness is how late users began their journey against the schedule; send \
             lateness is how late loadgen wrote each request against the instant it was due. \
             When more than {}% of requests (the scenario's `late_budget`, 1% by default) \
             were written late (past its `late_after`, 50 ms by default), or, in older run \
             folders, start lateness p99 is above {} ms, the generator could not keep up and \
             set the pace, and the run itself exits 3. Users who abort stop at the first step that fails; users cut off \
             were still walking when the run was cut off.",
            late_budget * 100.0,
            compare::LATENESS_P99_LIMIT_MS
        ))]),
        Block::Table(Table { head, rows }),
        Block::Bullets(users),
    ]
}
