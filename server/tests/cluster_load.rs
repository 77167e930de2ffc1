//! Cluster mode under keep-alive load, against the real binary: five rolling
//! restarts in a row with zero failed requests and never fewer than 2 ready workers,
//! a SIGKILLed worker replaced quickly while the other worker's connection never
//! notices, and a draining worker closing its idle connections progressively.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use support::*;

fn workers(server: &Server) -> BTreeSet<u32> {
    server.children().into_iter().collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_rolling_restarts_under_load_fail_nothing() {
    let dir = temp_dir("cluster-rollout");
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
    let dir = temp_dir("cluster-kill");
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

/// At a rollout the clients of a worker with thousands of idle keep-alive connections
/// must not all see their connection close in the same millisecond (they would race
/// it with their next request and retry): the draining worker closes them one slot
/// (1 ms) apart in accept order, each cleanly (EOF, no reset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_worker_closes_idle_connections_progressively() {
    const CONNECTIONS: usize = 400;
    let dir = temp_dir("cluster-idle-close");
    let server = start_cluster(Path::new(BIN), &dir, &["--workers", "1"]).await;
    let old = workers(&server);
    let conns: Vec<KeepAlive> = (0..CONNECTIONS)
        .map(|_| {
            let mut conn = KeepAlive::connect(server.addr).expect("connect");
            let answer = conn.get("/healthz").expect("healthz");
            assert!(answer.status == 200 && old.contains(&answer.pid) && !answer.close);
            conn
        })
        .collect();
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM); // rolling restart: the one old worker drains
    let watchers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            std::thread::spawn(move || conn.wait_closed().map(|()| signalled.elapsed()))
        })
        .collect();
    let closed: Vec<Duration> = watchers
        .into_iter()
        .map(|w| w.join().expect("watcher").expect("a clean close"))
        .collect();
    let first = closed.iter().min().copied().unwrap_or_default();
    let last = closed.iter().max().copied().unwrap_or_default();
    eprintln!("{CONNECTIONS} idle connections closed from {first:?} to {last:?} after SIGTERM");
    // Slots 0..400 of 1 ms: about 400 ms from first to last (all at once before).
    assert!(
        last - first >= Duration::from_millis(250),
        "idle connections closed within {:?} of each other",
        last - first
    );
    server.log.wait_for("rollout finished", WAIT).await;
}
