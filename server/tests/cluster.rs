//! Cluster mode against the real binary: a master that never serves, rolling
//! restarts under keep-alive load with zero failed requests, crash recovery, a stuck
//! worker killed at the drain timeout, a broken deploy aborted, crash-loop back-off,
//! and clean stops (SIGINT) and unclean ones (SIGKILL of the master).

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use support::*;

fn workers(server: &Server) -> BTreeSet<u32> {
    server.children().into_iter().collect()
}

/// Points `link` at `target` atomically (a deploy).
fn swap_link(dir: &TempDir, link: &Path, target: &Path) {
    let tmp = dir.file("link.tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).expect("symlink");
    std::fs::rename(&tmp, link).expect("swap symlink");
}

fn script(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.file(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Samples the number of the master's children every few ms until stopped.
fn sample_children(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut min = usize::MAX;
        while !stop.load(Ordering::Relaxed) {
            min = min.min(children_of(pid).len());
            std::thread::sleep(Duration::from_millis(2));
        }
        min
    })
}

#[tokio::test]
async fn a_master_and_two_workers_that_alone_serve() {
    let dir = TempDir::new("cluster-basic");
    let server = start_cluster(Path::new(BIN), &dir, &["--workers", "2"]).await;
    let pidfile = std::fs::read_to_string(dir.file("master.pid")).expect("pidfile");
    assert_eq!(
        pidfile.trim(),
        server.pid.to_string(),
        "pidfile holds the master's PID"
    );
    let kids = workers(&server);
    assert_eq!(kids.len(), 2, "expected 2 workers, found children {kids:?}");

    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        // A fresh connection each time, so both workers get a chance.
        let c = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let answer = get(&c, &server, "/healthz").await;
        let pid: u32 = answer.header("x-worker-pid").parse().expect("pid header");
        assert!(
            kids.contains(&pid),
            "answer from {pid}, workers are {kids:?}"
        );
        assert_ne!(pid, server.pid, "the master must never serve");
        seen.insert(pid);
    }
    eprintln!("workers that answered 40 fresh connections: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_rolling_restarts_under_load_fail_nothing() {
    let dir = TempDir::new("cluster-rollout");
    let server = start_cluster(
        Path::new(BIN),
        &dir,
        &[
            "--workers",
            "2",
            "--products",
            "20",
            "--stock",
            "1000000",
            "--checkout-io",
            "20ms",
        ],
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_children(server.pid, Arc::clone(&stop));
    let load = tokio::spawn(keep_alive_load(
        server.addr,
        16,
        Arc::clone(&stop),
        Duration::from_secs(120),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut generations = vec![workers(&server)];
    for round in 1..=5 {
        server.signal(Signal::SIGTERM);
        server
            .log
            .wait_for_count("rollout finished", round, Duration::from_secs(60))
            .await;
        // Exited workers disappear from /proc as the master reaps them.
        let deadline = Instant::now() + WAIT;
        while workers(&server).len() != 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let now = workers(&server);
        let before = generations.last().expect("previous generation");
        assert_eq!(now.len(), 2, "after rollout {round}: workers {now:?}");
        assert!(
            now.is_disjoint(before),
            "rollout {round} must replace every worker: before {before:?}, after {now:?}"
        );
        generations.push(now);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let stats = load.await.expect("load task");
    let min_children = sampler.join().expect("sampler");

    eprintln!(
        "load: {} requests, {} attempts, statuses {:?}, {} orders; worker generations {generations:?}",
        stats.requests,
        stats.attempts,
        stats.statuses,
        stats.confirmed_orders.len()
    );
    assert!(
        stats.requests > 200,
        "too little load to mean anything: {stats:?}"
    );
    assert_eq!(stats.failed, 0, "failed requests: {:?}", stats.errors);
    assert_eq!(stats.server_errors, 0, "5xx answers: {:?}", stats.errors);
    assert_eq!(server.log.count("rollout aborted"), 0);
    assert!(
        min_children >= 2,
        "fewer than 2 worker processes seen: {min_children}"
    );
    let min_ready = min_ready_in_log(&server.log.lines());
    assert!(
        min_ready >= 2,
        "the master's log shows {min_ready} ready workers at some point"
    );

    // Every confirmed order is there, once.
    let c = client();
    let audit = audit_holds(&c, &server).await;
    assert_eq!(
        audit["orders"].as_u64(),
        Some(stats.confirmed_orders.len() as u64),
        "orders confirmed to clients vs stored: {audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_replaced_and_the_other_is_untouched() {
    let dir = TempDir::new("cluster-kill");
    let server = start_cluster(
        Path::new(BIN),
        &dir,
        &[
            "--workers",
            "2",
            "--products",
            "20",
            "--stock",
            "1000000",
            "--checkout-io",
            "5ms",
        ],
    )
    .await;
    let before = workers(&server);
    let victim = *before.iter().next().expect("a worker");
    let survivor = *before.iter().nth(1).expect("two workers");

    // A keep-alive connection known to be on the survivor, used throughout.
    let mut pinned = None;
    for _ in 0..200 {
        let mut conn = KeepAlive::connect(server.addr).expect("connect");
        if conn.get("/healthz").expect("healthz").pid == survivor {
            pinned = Some(conn);
            break;
        }
    }
    let mut pinned = pinned.expect("no connection landed on the surviving worker in 200 tries");
    let pinned_stop = Arc::new(AtomicBool::new(false));
    let pinned_task = {
        let stop = Arc::clone(&pinned_stop);
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                answers.push(pinned.get("/products/1").map_err(|e| e.to_string()));
                std::thread::sleep(Duration::from_millis(2));
            }
            answers
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(keep_alive_load(
        server.addr,
        16,
        Arc::clone(&stop),
        Duration::from_secs(60),
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;

    let killed_at = Instant::now();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill worker");
    // Poll with fresh connections until a new worker answers.
    let replacement = loop {
        if let Ok(answer) = KeepAlive::connect(server.addr).and_then(|mut c| c.get("/healthz")) {
            if answer.pid != victim && answer.pid != survivor && answer.status == 200 {
                break answer.pid;
            }
        }
        assert!(killed_at.elapsed() < WAIT, "no replacement answered");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let served_after = killed_at.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    pinned_stop.store(true, Ordering::Relaxed);
    let stats = load.await.expect("load");
    let pinned_answers = pinned_task.join().expect("pinned client");
    eprintln!(
        "replacement {replacement} served {served_after:?} after the kill; load statuses {:?}, \
         {} attempts for {} requests; pinned connection: {} requests",
        stats.statuses,
        stats.attempts,
        stats.requests,
        pinned_answers.len()
    );
    assert!(
        served_after < Duration::from_secs(1),
        "the replacement must serve within 1 s of the kill, took {served_after:?}"
    );
    server.log.wait_for("after the crash", WAIT).await;
    assert_eq!(stats.failed, 0, "failed: {:?}", stats.errors);
    assert_eq!(stats.server_errors, 0, "5xx: {:?}", stats.errors);
    // The connection on the other worker never noticed.
    let bad: Vec<_> = pinned_answers
        .iter()
        .filter(|a| !matches!(a, Ok(r) if r.status == 200 && r.pid == survivor && !r.close))
        .collect();
    assert!(
        pinned_answers.len() > 10 && bad.is_empty(),
        "the surviving worker's connection must be untouched: {} answers, unexpected {bad:?}",
        pinned_answers.len()
    );
}

#[tokio::test]
async fn a_stuck_worker_is_killed_at_the_drain_timeout() {
    let dir = TempDir::new("cluster-stuck");
    let server = start_cluster(
        Path::new(BIN),
        &dir,
        &[
            "--workers",
            "2",
            "--checkout-io",
            "60s",
            "--drain-timeout",
            "1s",
        ],
    )
    .await;
    let c = client();
    let cart_id = cart_with(&c, &server, 1, 1).await;
    let stuck = tokio::spawn(
        c.post(server.url("/checkout"))
            .header("Idempotency-Key", "stuck")
            .json(&json!({"cart_id": cart_id}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = workers(&server);
    server.signal(Signal::SIGTERM);
    server.log.wait_for("rollout finished", WAIT).await;
    server
        .log
        .wait_for("still running at the drain timeout: killing it", WAIT)
        .await;
    assert_eq!(
        server.log.count("killed (SIGKILL)"),
        1,
        "exactly the stuck worker"
    );
    let outcome = stuck.await.expect("join");
    assert!(
        outcome.is_err(),
        "the stuck request was cut off: {outcome:?}"
    );
    let after = workers(&server);
    assert!(
        after.is_disjoint(&before),
        "before {before:?}, after {after:?}"
    );
    let health = get(&c, &server, "/healthz").await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn a_broken_deploy_is_aborted_and_a_good_one_rolls_out() {
    let dir = TempDir::new("cluster-deploy");
    let current = dir.file("current");
    let broken = script(&dir, "broken.sh", "echo 'broken build' >&2; exit 3");
    let v2 = script(
        &dir,
        "v2.sh",
        &format!("exec {BIN} \"$@\" --version-tag v2"),
    );
    // Started through the symlink: workers are started through it too.
    swap_link(&dir, &current, Path::new(BIN));
    let server = start_cluster(&current, &dir, &["--workers", "2", "--version-tag", "v1"]).await;
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    assert_eq!(
        get(&c, &server, "/healthz")
            .await
            .header("x-server-version"),
        "v1"
    );
    let first = workers(&server);

    swap_link(&dir, &current, &broken);
    server.signal(Signal::SIGTERM);
    server.log.wait_for("rollout aborted", WAIT).await;
    assert!(alive(server.pid), "the master must survive a broken deploy");
    assert_eq!(workers(&server), first, "the old workers keep serving");
    for _ in 0..5 {
        let answer = get(&c, &server, "/healthz").await;
        assert_eq!(
            (answer.status, answer.header("x-server-version").as_str()),
            (200, "v1")
        );
    }

    swap_link(&dir, &current, &v2);
    server.signal(Signal::SIGTERM);
    server.log.wait_for("rollout finished", WAIT).await;
    for _ in 0..5 {
        let answer = get(&c, &server, "/healthz").await;
        assert_eq!(answer.header("x-server-version"), "v2", "{answer:?}");
    }
}

#[tokio::test]
async fn a_crash_loop_backs_off_instead_of_spinning() {
    let dir = TempDir::new("cluster-crashloop");
    let current = dir.file("current");
    swap_link(&dir, &current, Path::new(BIN));
    let server = start_cluster(&current, &dir, &["--workers", "2"]).await;
    let broken = script(&dir, "broken.sh", "exit 3");
    swap_link(&dir, &current, &broken);

    let cpu_before = cpu_ticks(server.pid);
    let started = Instant::now();
    let victim = *workers(&server).iter().next().expect("worker");
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill");
    // 100 + 200 + 400 + 800 ms of back-off: at least 4 delayed respawns.
    server.log.wait_for("respawning in 800 ms", WAIT).await;
    let elapsed = started.elapsed();
    let cpu = cpu_ticks(server.pid) - cpu_before;
    let ticks_per_sec = 100; // Linux USER_HZ
    let cpu_share = cpu as f64 / ticks_per_sec as f64 / elapsed.as_secs_f64();
    let delays: Vec<String> = server
        .log
        .lines()
        .into_iter()
        .filter(|l| l.contains("respawning in"))
        .collect();
    eprintln!("master CPU {cpu_share:.3} of a core over {elapsed:?}; {delays:#?}");
    assert!(
        delays.len() <= 5,
        "expected a handful of delayed respawns in {elapsed:?}, got {}",
        delays.len()
    );
    assert!(
        cpu_share < 0.5,
        "the master spins: {cpu_share:.2} of a core"
    );

    // The other worker kept serving throughout; a fixed binary ends the loop.
    assert_eq!(get(&client(), &server, "/healthz").await.status, 200);
    swap_link(&dir, &current, Path::new(BIN));
    server
        .log
        .wait_for("after the crash", Duration::from_secs(30))
        .await;
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the ")": state is field 0, utime field 11, stime field 12.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

#[tokio::test]
async fn sigint_stops_everything_and_sigkill_of_the_master_takes_the_workers() {
    let dir = TempDir::new("cluster-stop");
    let mut server = start_cluster(Path::new(BIN), &dir, &["--workers", "2"]).await;
    let kids = workers(&server);
    server.signal(Signal::SIGINT);
    let status = server.wait_exit(WAIT).await;
    assert_eq!(
        status.code(),
        Some(0),
        "master exit after SIGINT: {status:?}"
    );
    let left: Vec<u32> = kids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "workers left after SIGINT: {left:?}");
    assert!(
        !dir.file("master.pid").exists(),
        "pidfile removed on a clean stop"
    );

    let dir2 = TempDir::new("cluster-kill-master");
    let mut server = start_cluster(Path::new(BIN), &dir2, &["--workers", "2"]).await;
    let kids = workers(&server);
    assert_eq!(kids.len(), 2);
    server.signal(Signal::SIGKILL);
    let killed_at = Instant::now();
    server.wait_exit(WAIT).await;
    let alive_count = Arc::new(AtomicUsize::new(kids.len()));
    while killed_at.elapsed() < WAIT {
        let n = kids.iter().filter(|&&p| alive(p)).count();
        alive_count.store(n, Ordering::Relaxed);
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gone_after = killed_at.elapsed();
    assert_eq!(
        alive_count.load(Ordering::Relaxed),
        0,
        "orphaned workers: {kids:?}"
    );
    assert!(
        gone_after < Duration::from_secs(1),
        "workers must be gone within 1 s of the master's SIGKILL, took {gone_after:?}"
    );
}
