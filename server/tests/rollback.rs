//! Last known good and rollbacks against the real binary, with an independent
//! retrying client (`keep_alive_load`) running throughout each test: a broken deploy
//! aborted and then a SIGKILLed old worker replaced from the old binary, not the
//! broken one; a build that dies one second after it is ready (a wrapper script
//! adding the hidden `--crash-after-ready 1s`), caught within the settle time, and
//! caught after its first worker settled, where old code must be started again.
//! Each ends with the old version serving on N workers and 0 failed requests. And a
//! good deploy whose new worker is SIGKILLed from outside still goes through.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use support::*;

/// A cluster of 2 started through `<dir>/current` -> the real binary, version v1,
/// with a running independent client. Fields drop in order: the server (and its
/// workers) is killed before its folder is removed.
struct Deployed {
    server: Server,
    stop: Arc<AtomicBool>,
    load: tokio::task::JoinHandle<LoadStats>,
    current: PathBuf,
    dir: TempDir,
}

impl Deployed {
    async fn start(name: &str, settle: &str) -> Deployed {
        let dir = temp_dir(name);
        let current = dir.path().join("current");
        swap_link(&dir, &current, Path::new(BIN));
        let server = start_cluster(
            &current,
            &dir,
            &[
                "--workers",
                "2",
                "--version-tag",
                "v1",
                "--settle",
                settle,
                "--products",
                "20",
                "--stock",
                "1000000",
                "--checkout-io",
                "5ms",
            ],
        )
        .await;
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(keep_alive_load(
            server.addr,
            8,
            Arc::clone(&stop),
            Duration::from_secs(90),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        Deployed {
            server,
            stop,
            load,
            current,
            dir,
        }
    }

    /// Points the start path at `target` and asks for a rolling restart.
    fn deploy(&self, target: &Path) {
        swap_link(&self.dir, &self.current, target);
        self.server.signal(Signal::SIGTERM);
    }

    /// A build: `exec`s the real binary with `extra` flags appended.
    fn build(&self, name: &str, extra: &str) -> PathBuf {
        script(&self.dir, name, &format!("exec {BIN} \"$@\" {extra}"))
    }

    /// Stops the client; asserts it saw no failed request; returns its stats.
    async fn client_saw_no_failure(self) -> (Server, LoadStats) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop.store(true, Ordering::Relaxed);
        let stats = self.load.await.expect("load task");
        eprintln!(
            "client: {} requests, {} attempts, statuses {:?}",
            stats.requests, stats.attempts, stats.statuses
        );
        assert!(
            stats.requests > 50,
            "too little load to mean anything: {stats:?}"
        );
        assert_eq!(stats.failed, 0, "failed requests: {:?}", stats.errors);
        assert_eq!(stats.server_errors, 0, "5xx answers: {:?}", stats.errors);
        (self.server, stats)
    }
}

/// Asserts that every one of `pids` runs the real binary and answers as `version`.
fn serving(server: &Server, pids: &BTreeSet<u32>, version: &str) {
    let bin = std::fs::canonicalize(BIN).expect("canonical binary path");
    for &pid in pids {
        assert_eq!(exe_of(pid), bin, "worker {pid} runs another executable");
    }
    let answers = versions_of(server, pids);
    let wrong: Vec<&(u32, String)> = answers.iter().filter(|(_, v)| v != version).collect();
    assert!(
        wrong.is_empty(),
        "expected every worker to answer {version}, got {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broken_deploy_a_crashed_worker_comes_back_on_the_old_binary() {
    let run = Deployed::start("rollback-broken", "3s").await;
    let old = wait_workers(&run.server, 2).await;
    let broken = script(&run.dir, "broken.sh", "echo 'broken build' >&2; exit 3");
    run.deploy(&broken);
    let aborted = run.server.log.wait_for("rollout aborted", WAIT).await;
    assert!(
        aborted.contains(&format!("of generation 2 (script {})", broken.display()))
            && aborted.contains("exited before it was ready"),
        "the abort names the generation, the build and why: {aborted}"
    );
    assert_eq!(
        wait_workers(&run.server, 2).await,
        old,
        "the old workers serve on"
    );

    let victim = *old.iter().next().expect("a worker");
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill worker");
    run.server.log.wait_for("after the crash", WAIT).await;
    let now = wait_workers(&run.server, 2).await;
    let replacement: BTreeSet<u32> = now.difference(&old).copied().collect();
    assert_eq!(replacement.len(), 1, "before {old:?}, after {now:?}");
    serving(&run.server, &now, "v1");
    let (server, _) = run.client_saw_no_failure().await;
    // Every worker started after the abort: exactly the one crash replacement, from
    // generation 1 (the binary), not a crash loop on the broken build.
    let lines = server.log.lines();
    let after_abort: Vec<&String> = lines
        .iter()
        .skip_while(|l| !l.contains("rollout aborted"))
        .filter(|l| l.contains(" spawned (generation "))
        .collect();
    assert!(
        after_abort.len() == 1
            && after_abort[0].contains(&format!("spawned (generation 1: {BIN})")),
        "expected one worker started after the abort, from generation 1: {after_abort:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_dies_within_the_settle_time_is_rolled_back() {
    let run = Deployed::start("rollback-settle", "3s").await;
    let old = wait_workers(&run.server, 2).await;
    let v2 = run.build("v2.sh", "--version-tag v2 --crash-after-ready 1s");
    run.deploy(&v2);
    let aborted = run.server.log.wait_for("rollout aborted", WAIT).await;
    assert!(
        aborted.contains(&format!(
            "worker #3 of generation 2 (script {}) died",
            v2.display()
        )) && aborted.contains("after it was ready, within the settle time"),
        "the abort names the worker, the generation, the build and why: {aborted}"
    );
    let rolled_back = run
        .server
        .log
        .wait_for("rolled back: no worker of generation 2 left", WAIT)
        .await;
    assert!(
        rolled_back.contains(&format!("generation 1 ({}) keeps serving", BIN)),
        "{rolled_back}"
    );
    assert_eq!(
        wait_workers(&run.server, 2).await,
        old,
        "the old workers never stopped serving"
    );
    serving(&run.server, &old, "v1");
    let (server, _) = run.client_saw_no_failure().await;
    assert_eq!(
        server.log.count("is last known good"),
        0,
        "v2 was never promoted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_dies_after_settling_is_rolled_back_with_old_code_started_again() {
    // 600 ms of settle time per worker: the first v2 worker settles (its old worker
    // drains), then dies 1 s after it was ready, while the second one settles (its
    // old worker still serving, so it covers the dead one's place until replaced).
    let run = Deployed::start("rollback-restart", "600ms").await;
    let v2 = run.build("v2.sh", "--version-tag v2 --crash-after-ready 1s");
    run.deploy(&v2);
    let aborted = run.server.log.wait_for("rollout aborted", WAIT).await;
    assert!(
        aborted.contains("worker #3 of generation 2") && aborted.contains("died after settling"),
        "{aborted}"
    );
    let rolling_back = run.server.log.wait_for("rolling back: ", WAIT).await;
    assert!(
        rolling_back.contains(&format!(
            "1 workers of generation 2 replaced by generation 1 ({BIN})"
        )),
        "{rolling_back}"
    );
    let restarted = run
        .server
        .log
        .wait_for("rollback: worker #5 of generation 1", WAIT)
        .await;
    assert!(
        restarted.contains(&format!("({BIN}) starting to replace worker #4")),
        "old code is started again in place of the second v2 worker: {restarted}"
    );
    let finished = run.server.log.wait_for("rollback finished", WAIT).await;
    assert!(
        finished.contains(&format!("1 of 1 workers back on generation 1 ({BIN})")),
        "{finished}"
    );
    let now = wait_workers(&run.server, 2).await;
    serving(&run.server, &now, "v1");
    let (server, _) = run.client_saw_no_failure().await;
    let lines = server.log.lines();
    assert_eq!(
        server.log.count("is last known good"),
        0,
        "v2 was never promoted"
    );
    let min_ready = min_ready_in_log(&lines);
    assert!(
        min_ready >= 2,
        "the master's log shows {min_ready} ready workers at some point"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_killed_from_outside_does_not_roll_a_good_deploy_back() {
    let run = Deployed::start("rollback-sigkill", "500ms").await;
    let v2 = run.build("v2.sh", "--version-tag v2");
    run.deploy(&v2);
    let settling = run
        .server
        .log
        .wait_for("rollout: worker #3 ready; it must stay up", WAIT)
        .await;
    let spawned = run.server.log.wait_for("worker #3 pid ", WAIT).await;
    let pid: i32 = spawned
        .split("worker #3 pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {spawned:?} ({settling})"));
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill the settling v2 worker");
    let forgiven = run
        .server
        .log
        .wait_for("killed by a SIGKILL the master did not send", WAIT)
        .await;
    assert!(forgiven.contains("worker #3 of generation 2"), "{forgiven}");
    let promoted = run.server.log.wait_for("is last known good", WAIT).await;
    assert!(
        promoted.contains(&format!(
            "generation 2 (script {}) is last known good",
            v2.display()
        )),
        "{promoted}"
    );
    let now = wait_workers(&run.server, 2).await;
    serving(&run.server, &now, "v2");
    let (server, _) = run.client_saw_no_failure().await;
    assert_eq!(server.log.count("rollout aborted"), 0);
}
