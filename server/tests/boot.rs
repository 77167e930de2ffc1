//! `--boot-time` against the real binary: the single process does its boot work
//! before it listens (nobody is accepted meanwhile); a cluster worker does it before
//! it reports ready, the boot timeout counts on top of it, and a rolling restart
//! keeps the old workers serving while the new ones boot.

mod support;

use std::path::Path;

use nix::sys::signal::Signal;

use support::*;

/// Milliseconds since midnight of a log line's timestamp (`2026-11-25T13:45:01.123Z`).
fn millis_of(line: &str) -> u64 {
    let time = line.split('T').nth(1).unwrap_or_default();
    let mut parts = time
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .split([':', '.']);
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.get(..3.min(p.len())))
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (h, m, s, ms) = (next(), next(), next(), next());
    ((h * 60 + m) * 60 + s) * 1000 + ms
}

#[tokio::test]
async fn single_mode_boots_before_it_listens() {
    let dir = temp_dir("boot-single");
    let db = dir.path().join("shop.db");
    let server = Server::start(&[
        "--mode",
        "single",
        "--db",
        db.to_str().expect("utf-8 path"),
        "--boot-time",
        "500ms",
    ])
    .await;
    let booting = server
        .log
        .wait_for("booting: 500 ms of start-up work", WAIT)
        .await;
    let listening = server.log.wait_for("listening on", WAIT).await;
    let lines = server.log.lines();
    let order = (
        lines.iter().position(|l| l == &booting),
        lines.iter().position(|l| l == &listening),
    );
    assert!(
        matches!(order, (Some(b), Some(l)) if b < l),
        "boot work must come before listening: {lines:#?}"
    );
    let waited = millis_of(&listening).saturating_sub(millis_of(&booting));
    assert!(
        waited >= 500,
        "listening {waited} ms after the boot work began, expected at least 500: {lines:#?}"
    );
    assert_eq!(get(&client(), &server, "/healthz").await.status, 200);
}

#[tokio::test]
async fn cluster_workers_boot_before_ready_and_the_boot_timeout_counts_on_top() {
    let dir = temp_dir("boot-cluster");
    // A boot timeout shorter than the boot work: it counts from the end of it.
    let server = start_cluster(
        Path::new(BIN),
        &dir,
        &[
            "--workers",
            "2",
            "--boot-time",
            "1200ms",
            "--boot-timeout",
            "1s",
            "--settle",
            "100ms",
        ],
    )
    .await;
    let ready: Vec<u64> = server
        .log
        .lines()
        .iter()
        .filter(|l| l.contains(" master: ") && l.contains(" ms after spawn)"))
        .filter_map(|l| {
            l.split(" ms after spawn)")
                .next()
                .and_then(|head| head.rsplit(' ').next())
                .and_then(|ms| ms.parse().ok())
        })
        .collect();
    assert!(
        ready.len() == 2 && ready.iter().all(|&ms| ms >= 1200),
        "expected 2 workers ready at least 1200 ms after spawn, got {ready:?}"
    );
    assert_eq!(
        server.log.count("boot timeout"),
        0,
        "no worker killed at boot"
    );

    server.signal(Signal::SIGTERM);
    server.log.wait_for("is last known good", WAIT).await;
    let min_ready = min_ready_in_log(&server.log.lines());
    assert!(
        min_ready >= 2,
        "the old workers serve while the new ones boot: the log shows {min_ready} ready"
    );
    assert_eq!(get(&client(), &server, "/healthz").await.status, 200);
}
