//! Cluster mode against the real binary: a master that never serves and spreads
//! connections over its workers, a stuck worker killed at the drain timeout, a broken
//! deploy aborted, crash-loop back-off, clean stops (SIGINT, `--sigterm shutdown`) and
//! unclean ones (SIGKILL of the master). Behaviour under load is in `cluster_load.rs`,
//! last known good and rollbacks in `rollback.rs`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use support::*;

#[tokio::test]
async fn a_master_and_two_workers_that_alone_serve() {
    let dir = temp_dir("cluster-basic");
    let server = start_cluster(Path::new(BIN), &dir, &["--workers", "2"]).await;
    let pidfile = std::fs::read_to_string(dir.path().join("master.pid")).expect("pidfile");
    assert_eq!(
        pidfile.trim(),
        server.pid.to_string(),
        "pidfile holds the master's PID"
    );
    let kids = workers(&server);
    assert_eq!(kids.len(), 2, "expected 2 workers, found children {kids:?}");

    let mut seen = BTreeSet::new();
    let mut sequence = Vec::new();
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
        sequence.push(pid);
    }
    eprintln!("40 connections in a row went to {sequence:?}");
    assert_eq!(
        seen, kids,
        "40 connections one after another reach both workers"
    );

    // Bursts of keep-alive connections are shared, not taken by one worker (how
    // evenly depends on the scheduler of a busy machine: three bursts are summed).
    let mut per_worker = std::collections::BTreeMap::<u32, usize>::new();
    for _ in 0..3 {
        let conns: Vec<KeepAlive> = (0..32)
            .map(|_| KeepAlive::connect(server.addr).expect("connect"))
            .collect();
        for mut conn in conns {
            let answer = conn.get("/healthz").expect("answer");
            *per_worker.entry(answer.pid).or_default() += 1;
        }
    }
    eprintln!("3 bursts of 32 simultaneous connections, per worker: {per_worker:?}");
    assert!(
        per_worker.len() == 2 && per_worker.values().all(|&n| n >= 10),
        "expected both workers to hold at least 10 of 96 burst connections, got {per_worker:?}"
    );
}

#[tokio::test]
async fn a_stuck_worker_is_killed_at_the_drain_timeout() {
    let dir = temp_dir("cluster-stuck");
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
    let dir = temp_dir("cluster-deploy");
    let current = dir.path().join("current");
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
    let dir = temp_dir("cluster-crashloop");
    let current = dir.path().join("current");
    // A build that runs until something around it breaks (here: a flag file), so
    // that the last known good generation itself starts failing.
    let broken_flag = dir.path().join("broken");
    let fragile = script(
        &dir,
        "fragile.sh",
        &format!(
            "[ -e {} ] && exit 3\nexec {BIN} \"$@\"",
            broken_flag.display()
        ),
    );
    swap_link(&dir, &current, Path::new(BIN));
    let server = start_cluster(&current, &dir, &["--workers", "2", "--settle", "100ms"]).await;
    swap_link(&dir, &current, &fragile);
    server.signal(Signal::SIGTERM);
    server.log.wait_for("is last known good", WAIT).await;
    std::fs::write(&broken_flag, "").expect("write flag");

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

    // The other worker kept serving throughout; a repaired environment ends the loop.
    assert_eq!(get(&client(), &server, "/healthz").await.status, 200);
    std::fs::remove_file(&broken_flag).expect("remove flag");
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
    let dir = temp_dir("cluster-stop");
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
        !dir.path().join("master.pid").exists(),
        "pidfile removed on a clean stop"
    );

    // --sigterm shutdown: SIGTERM is a graceful stop, for orchestrators.
    let dir3 = temp_dir("cluster-sigterm-shutdown");
    let mut server = start_cluster(
        Path::new(BIN),
        &dir3,
        &["--workers", "2", "--sigterm", "shutdown"],
    )
    .await;
    let kids = workers(&server);
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(WAIT).await;
    assert_eq!(
        status.code(),
        Some(0),
        "master exit after SIGTERM with --sigterm shutdown"
    );
    assert_eq!(server.log.count("rollout started"), 0);
    let left: Vec<u32> = kids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "workers left: {left:?}");

    let dir2 = temp_dir("cluster-kill-master");
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

#[tokio::test]
async fn a_replacement_that_never_gets_ready_aborts_at_the_boot_timeout() {
    let dir = temp_dir("cluster-boot-timeout");
    let current = dir.path().join("current");
    swap_link(&dir, &current, Path::new(BIN));
    let server = start_cluster(&current, &dir, &["--workers", "2", "--boot-timeout", "1s"]).await;
    let first = workers(&server);
    // A build that starts but never reports ready (no listening socket use at all).
    let hangs = script(&dir, "hangs.sh", "exec sleep 60");
    swap_link(&dir, &current, &hangs);
    server.signal(Signal::SIGTERM);
    server
        .log
        .wait_for("not ready within the boot timeout: killing it", WAIT)
        .await;
    server.log.wait_for("rollout aborted", WAIT).await;
    let deadline = Instant::now() + WAIT;
    while workers(&server) != first && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        workers(&server),
        first,
        "the hung replacement is gone, the old workers stay"
    );
    let answer = get(&client(), &server, "/healthz").await;
    assert_eq!(answer.status, 200);
}
