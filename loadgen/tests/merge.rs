//! Execution segments on one machine: three `loadgen run --shard I/3` processes
//! against one clustered shop-server, released together by a start file, one of them
//! with a clock 200 ms ahead (faked with LOADGEN_TEST_CLOCK_SKEW_MS), merged by
//! `loadgen merge` into the single run: every planned user accounted for once, the
//! counters and each second's rows the sums of the segments', chaos (one kill) done
//! once, by segment 0 only, the skew measured and its seconds still lined up, the
//! `.hlog` files readable. Then the merge refuses, by name, a missing segment and one
//! that did not finish (exit 3).

mod common;

use std::path::PathBuf;
use std::process::Child;

use common::segments::{self, ShopCluster};
use common::temp_dir;

/// Segment processes, killed on drop if a failed assertion leaves them running.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

#[test]
fn three_segments_merge_into_the_single_run() {
    let tmp = temp_dir("segments");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let server = ShopCluster::start(addr, tmp.path());
    let users = 90;
    let scenario = tmp.path().join("segments.toml");
    std::fs::write(&scenario, segments::scenario(addr, &server.pidfile, users)).expect("write");
    let start = tmp.path().join("START");
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("seg-{i}")))
        .collect();
    let mut running = Running(Vec::new());
    for (i, dir) in dirs.iter().enumerate() {
        let mut cmd = segments::segment_command(&[], &scenario, i as u32, 3, &start, dir);
        if i == 1 {
            cmd.env("LOADGEN_TEST_CLOCK_SKEW_MS", "200");
        }
        running.0.push(cmd.spawn().expect("start a segment"));
    }
    segments::release(&start, 3);
    for (i, child) in running.0.iter_mut().enumerate() {
        let status = child.wait().expect("wait for a segment");
        assert!(
            status.success(),
            "segment {i}/3 failed ({status}); its folder: {}\n{}",
            dirs[i].display(),
            segments::segment_log(&dirs[i])
        );
    }

    let out = tmp.path().join("merged");
    let junit = tmp.path().join("junit.xml");
    let junit_arg = junit.to_str().expect("utf-8 path");
    let merged = segments::merge(&out, &dirs, &["--junit", junit_arg]);
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}",
        segments::describe(&merged)
    );

    // Every planned user once: the segments own 30 each, the merged run all 90.
    let modes = segments::rows(&out, "modes.csv");
    assert_eq!(modes.len(), 1);
    let m = &modes[0];
    let ended: f64 = [
        "users_completed",
        "users_aborted",
        "users_cut",
        "users_never_started",
    ]
    .iter()
    .map(|c| common::num(m, c))
    .sum();
    assert_eq!(common::num(m, "users_planned"), users as f64, "{m:?}");
    assert_eq!(ended, users as f64, "{m:?}");
    for dir in &dirs {
        let seg = &segments::rows(dir, "modes.csv")[0];
        assert_eq!(common::num(seg, "users_planned"), 30.0, "{seg:?}");
    }

    // Each segment's own cost (CPU, peak RSS) adds up in the merged row.
    for col in ["loadgen_cpu_s", "loadgen_peak_rss_kb", "loadgen_processes"] {
        let sum: f64 = dirs
            .iter()
            .map(|d| common::num(&segments::rows(d, "modes.csv")[0], col))
            .sum();
        assert!(sum > 0.0, "{col}");
        assert!((common::num(m, col) - sum).abs() < 0.01, "{col}: {m:?}");
    }

    // Counters summed, per run and per second.
    for col in ["requests", "ok", "dropped", "retried"] {
        let sum: f64 = dirs.iter().map(|d| segments::total(d, col)).sum();
        assert_eq!(segments::total(&out, col), sum, "summary column {col}");
    }
    assert!(segments::total(&out, "requests") >= users as f64 * 4.0);
    let mut expected = std::collections::BTreeMap::new();
    for dir in &dirs {
        for (s, n) in segments::per_second(dir, "sent") {
            *expected.entry(s).or_insert(0.0) += n;
        }
    }
    assert_eq!(
        segments::per_second(&out, "sent"),
        expected,
        "the merged seconds are not the segments' seconds added up"
    );

    // Chaos ran once: one kill, by segment 0; the others did not touch the server.
    let kills = |dir: &std::path::Path| {
        segments::rows(dir, "events.csv")
            .into_iter()
            .filter(|r| r["kind"] == "kill")
            .count()
    };
    assert_eq!(kills(&dirs[0]), 1);
    assert_eq!(kills(&dirs[1]) + kills(&dirs[2]), 0);
    assert_eq!(kills(&out), 1);

    // The skewed clock was measured (200 ms plus the delay in seeing the release, which
    // only adds), and taken out: on the reference clock every segment's second 0 is the
    // agreed instant, so no second moved.
    let records: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("segments.json")).expect("segments.json"),
    )
    .expect("segments.json is JSON");
    let field = |i: usize, key: &str| records[i][key].as_i64().unwrap_or(i64::MIN);
    let seen_late = |i: usize| field(i, "clock_offset_ms") - if i == 1 { 200 } else { 0 };
    for i in 0..3 {
        assert!(
            (0..1000).contains(&seen_late(i)),
            "segment {i}'s clock offset: {records}"
        );
        assert!(field(i, "start_offset_ms").abs() < 100, "{records}");
    }
    // Seen on its own clock, segment 1 started about 200 ms after segment 0.
    let at = |i: usize| field(i, "clock_at_start_unix_ms");
    let apart = at(1) - at(0) - (seen_late(1) - seen_late(0));
    assert!((150..250).contains(&apart), "{records}");

    // The invariant checks ran once, on the merged ledger, and hold; so do thresholds.
    let inv = segments::rows(&out, "invariants.csv");
    assert!(
        !inv.is_empty() && inv.iter().all(|r| r["holds"] == "true"),
        "{inv:?}"
    );
    assert!(segments::rows(&dirs[0], "invariants.csv").is_empty());
    let th = segments::rows(&out, "thresholds.csv");
    assert_eq!(th.len(), 3, "{th:?}");
    // The merged run is the run CI reads: summary.json and the JUnit file are its.
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("merged summary.json"),
    )
    .expect("summary.json is JSON");
    assert_eq!(summary["verdict"], "pass", "{summary}");
    assert_eq!(
        summary["modes"][0]["users_planned"],
        m["users_planned"].parse::<u64>().expect("a count"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(&junit).expect("the merge wrote the JUnit file");
    assert_eq!(
        junit.matches("<testcase ").count(),
        1 + th.len() + inv.len(),
        "{junit}"
    );

    // Interval logs in every folder, in the standard format.
    for dir in dirs.iter().chain([&out]) {
        let text = std::fs::read_to_string(dir.join("latency-cluster.hlog")).expect("hlog");
        assert!(
            text.contains("#[StartTime: ") && text.contains("Tag=all,0.000,1.000,"),
            "{text}"
        );
        assert!(text.contains("Tag=step:checkout,0.000,"), "{text}");
    }

    // A missing segment: exit 3, named.
    let partial = segments::merge(&tmp.path().join("m2"), &dirs[..2], &["--no-checks"]);
    assert_eq!(
        partial.status.code(),
        Some(3),
        "{}",
        segments::describe(&partial)
    );
    assert!(
        String::from_utf8_lossy(&partial.stderr).contains("segment 2/3 is missing"),
        "{}",
        segments::describe(&partial)
    );
    // A segment that did not finish: exit 3, named with its folder.
    let record = dirs[2].join("segment.json");
    let text = std::fs::read_to_string(&record).expect("record");
    std::fs::write(
        &record,
        text.replace("\"finished\": true", "\"finished\": false"),
    )
    .expect("rewrite record");
    let unfinished = segments::merge(&tmp.path().join("m3"), &dirs, &["--no-checks"]);
    assert_eq!(
        unfinished.status.code(),
        Some(3),
        "{}",
        segments::describe(&unfinished)
    );
    let err = String::from_utf8_lossy(&unfinished.stderr);
    assert!(
        err.contains("segment 2/3 (") && err.contains("did not finish"),
        "{err}"
    );
    drop(server);
}
