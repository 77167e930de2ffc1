//! The run folder's files, byte for byte: a fixed set of merged modes (every outcome
//! class, an empty second, an empty mode, a mode without a process watcher, invariants
//! that ran and ones that could not, thresholds that pass, fail and were not measured,
//! event details that need CSV quoting) is written through `runfolder::write_run` and
//! `write_thresholds`, and every file must equal `tests/fixtures/run-written/`. Those
//! files were written by the hand-built writer that the typed rows replaced, so this
//! test holds the format (headers, column order, number formatting, empty cells) still;
//! a change on purpose is re-blessed with `STAMPEDE_BLESS=1` and shows in the diff.

use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::engine::snapshot::{FinalSnapshot, Hist, Message, SecondSnapshot, WorkerCount};
use crate::engine::timeline::{ModeOutcome, Timeline};
use crate::observe::events::{EventSink, Kind};
use crate::observe::watcher::ServerCost;
use crate::outcome::{CLASSES, Counts};
use crate::plan::threshold::Verdict;
use crate::runfolder;
use crate::verdict::invariants::{Check, InvariantReport, ProductLine};

const FILES: [&str; 11] = [
    "modes.csv",
    "summary.csv",
    "timeseries.csv",
    "workers.csv",
    "events.csv",
    "invariants.csv",
    "stock.csv",
    "thresholds.csv",
    "latency-single.hgrm",
    "latency-cluster.hgrm",
    "latency-idle.hgrm",
];

/// Counts in which class `k` (by index) finished `n * (k + 1)` requests.
fn counts(n: u64, sent: u64) -> Counts {
    let mut c = Counts {
        sent,
        ..Counts::default()
    };
    for (i, class) in CLASSES.iter().enumerate() {
        for _ in 0..n * (i as u64 + 1) {
            c.finish(*class, 1 + (i as u32 % 3), i as u32 % 3);
        }
    }
    c
}

fn hist(values_us: impl IntoIterator<Item = u64>) -> Hist {
    let mut h = Hist::new();
    for v in values_us {
        h.record(v);
    }
    h
}

fn second(second: u32, n: u64, latency_us: u64) -> Message {
    Message::Second(SecondSnapshot {
        second,
        steps: vec![counts(n, 3 * n), counts(n / 2, n)],
        hist: hist((0..n * 4).map(|i| latency_us + i * 137)),
        workers: vec![
            WorkerCount {
                pid: 4100 + second,
                version: "v1".into(),
                responses: n * 20,
            },
            WorkerCount {
                pid: 4200,
                version: "v2, canary".into(),
                responses: n,
            },
        ],
        active_users: 40 + u64::from(second),
        open_connections: 38 + u64::from(second),
        send_lateness: hist((0..n * 3).map(|i| 200 + i * 7_919)),
        generator_late: n / 3,
    })
}

fn finished(duration_s: f64, step_latencies_us: [u64; 2]) -> Message {
    Message::Final(FinalSnapshot {
        step_hists: step_latencies_us
            .iter()
            .map(|base| hist((0..500).map(|i| base + i * i * 7)))
            .collect(),
        lateness: hist((0..300).map(|i| 20 + i * 11)),
        send_lateness: hist((0..900).map(|i| 30 + i * 97)),
        generator_late: 12,
        users_planned: 300,
        users_started: 299,
        users_completed: 288,
        users_aborted: 9,
        users_cut: 2,
        users_never_started: 1,
        cpu_s: 1.234_567,
        peak_rss_kb: 20_480,
        duration_s,
        ..FinalSnapshot::default()
    })
}

fn modes() -> Vec<ModeOutcome> {
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_795_614_022 + s);
    let steps = || vec!["browse".to_string(), "checkout".to_string()];

    let mut single = Timeline::new("single", steps(), 1);
    for (s, n) in [(0, 3), (1, 0), (2, 7), (3, 2)] {
        single.push(second(s, n, 1_500 + u64::from(s) * 10_000));
    }
    single.push(finished(4.25, [2_100, 61_000]));
    single.flush();
    single.set_live_workers(&[1, 0, 1]);
    let single = ModeOutcome {
        measured: single,
        deploy_strategy: "stop, then start (naive supervisor)".into(),
        started_at: at(0),
        processes: 1,
        server_cost: Some(ServerCost {
            cpu_seconds: 0.987_654,
            peak_rss_kb: 51_200,
        }),
        invariants: Some(Ok(InvariantReport {
            checks: vec![
                Check {
                    check: "lost_orders",
                    compared: "every confirmed order, looked up again".into(),
                    items: 12,
                    expected: "0".into(),
                    actual: "0".into(),
                    holds: true,
                },
                Check {
                    check: "stock_balance",
                    compared: "per product: initial = stock + sold".into(),
                    items: 2,
                    expected: "100000".into(),
                    actual: "99,998".into(),
                    holds: false,
                },
            ],
            stock: vec![
                ProductLine {
                    product: "1".into(),
                    initial_stock: 300,
                    stock: 0,
                    sold: 300,
                    promised: Some(300),
                },
                ProductLine {
                    product: "2".into(),
                    initial_stock: 99_700,
                    stock: 99_698,
                    sold: 0,
                    promised: None,
                },
            ],
            ..InvariantReport::default()
        })),
    };

    // Two sources: seconds close only once both reported them.
    let mut cluster = Timeline::new("cluster", steps(), 2);
    for s in 0..3 {
        cluster.push(second(s, 5 + u64::from(s), 900));
        cluster.push(second(s, 1, 2_000));
    }
    cluster.push(finished(3.0, [1_000, 40_000]));
    cluster.push(finished(2.5, [1_200, 45_000]));
    cluster.flush();
    let cluster = ModeOutcome {
        measured: cluster,
        deploy_strategy: "rolling restart by the master".into(),
        started_at: at(30),
        processes: 2,
        server_cost: None,
        invariants: Some(Err("audit view answered 500, \"oops\"".into())),
    };

    // Nothing at all happened: empty histograms, zero duration, no rows.
    let mut idle = Timeline::new("idle", vec!["only".to_string()], 1);
    idle.push(Message::Final(FinalSnapshot {
        step_hists: vec![Hist::new()],
        ..FinalSnapshot::default()
    }));
    idle.flush();
    let idle = ModeOutcome {
        measured: idle,
        deploy_strategy: String::new(),
        started_at: at(60),
        processes: 1,
        server_cost: None,
        invariants: None,
    };
    vec![single, cluster, idle]
}

fn events() -> EventSink {
    let mut sink = EventSink::default();
    let ms = Duration::from_millis;
    sink.push(ms(1_500), "single", Kind::Deploy, 4100, "SIGTERM");
    sink.push(
        ms(1_502),
        "single",
        Kind::WorkerExited,
        4100,
        "signal 15 (SIGTERM)",
    );
    sink.push(ms(2_750), "single", Kind::Downtime, 4101, "1248");
    sink.push(ms(2_750), "single", Kind::ServerRestarted, 4101, "");
    sink.push(ms(1_234), "cluster", Kind::Kill, 4200, "SIGKILL");
    sink.push(
        ms(1_455),
        "cluster",
        Kind::WorkerStarted,
        4300,
        "ready, \"v2\"",
    );
    sink.push(ms(2_000), "cluster", Kind::Pause, 4300, "for 500ms");
    sink.push(ms(2_500), "cluster", Kind::Resume, 4300, "");
    sink
}

fn verdicts() -> Vec<Verdict> {
    vec![
        Verdict {
            threshold: "cluster.dropped == 0".into(),
            actual: Some(0.0),
            unit: "",
            pass: true,
            incomplete: None,
            ..Verdict::default()
        },
        Verdict {
            threshold: "cluster.p99 < 1s".into(),
            actual: Some(1_260.456_7),
            unit: "ms",
            pass: false,
            incomplete: None,
            ..Verdict::default()
        },
        Verdict {
            threshold: "single.server_cpu < 2".into(),
            actual: None,
            unit: "",
            pass: false,
            incomplete: None,
            ..Verdict::default()
        },
    ]
}

fn write_sample(dir: &Path) {
    runfolder::write_run(dir, &modes(), &events()).expect("write_run");
    runfolder::write_thresholds(dir, &verdicts()).expect("write_thresholds");
}

#[test]
fn written_files_match_the_format_byte_for_byte() {
    let dir = tempfile::Builder::new()
        .prefix("stampede-runfolder-bytes-")
        .tempdir()
        .expect("temp dir");
    write_sample(dir.path());
    let expected = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-written");
    let mut written: Vec<String> = fs::read_dir(dir.path())
        .expect("list written files")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut want: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(written, want, "the run folder holds exactly these files");
    for name in FILES {
        let got = fs::read_to_string(dir.path().join(name)).expect("read written file");
        // A change of format on purpose: `STAMPEDE_BLESS=1 cargo test` rewrites the
        // expected files, and the diff shows in review.
        if std::env::var_os("STAMPEDE_BLESS").is_some() {
            fs::write(expected.join(name), &got).expect("bless expected file");
        }
        let want = fs::read_to_string(expected.join(name))
            .unwrap_or_else(|e| panic!("read expected {name}: {e}"));
        assert!(
            got == want,
            "{name} differs from tests/fixtures/run-written/{name}\n--- written\n{got}\n--- expected\n{want}"
        );
    }
}

#[test]
fn the_written_folder_reads_back_and_renders() {
    let dir = tempfile::Builder::new()
        .prefix("stampede-runfolder-render-")
        .tempdir()
        .expect("temp dir");
    write_sample(dir.path());
    let rendered = crate::report::render(dir.path()).expect("the written folder renders");
    let md = fs::read_to_string(&rendered.markdown).expect("report.md");
    let broken = md
        .lines()
        .find(|l| l.starts_with("| single | stock_balance |"))
        .unwrap_or_else(|| panic!("no stock_balance row for single:\n{md}"));
    assert!(
        broken.contains("99,998") && broken.contains("BROKEN"),
        "a broken invariant is shown as broken: {broken}"
    );
    assert!(
        md.contains("CI gate: 2 of 3 thresholds FAIL."),
        "the gate verdict counts the FAIL rows:\n{md}"
    );
}
