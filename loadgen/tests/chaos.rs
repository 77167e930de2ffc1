//! Chaos mid-run against real servers: the shop in cluster mode survives a deploy,
//! kills and a pause with nothing dropped or lost; the shop as a single process under
//! the naive supervisor drops requests on a deploy and the downtime is measured; a
//! pre-forking server the harness did not start (found by its pidfile) has its
//! workers killed, and every action is logged with the PID it hit. (Chaos that cannot
//! be applied is in `accounting.rs`.)

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Row = HashMap<String, String>;

fn shop_scenario(mode: &str, extra_mode_keys: &str, load: &str, chaos: &str) -> String {
    let bin = shop_server();
    let workers = if mode == "cluster" {
        // A short settle, so a two-worker rollout fits in these short runs.
        r#""--workers", "2", "--settle", "200ms", "#
    } else {
        ""
    };
    format!(
        r#"name = "chaos-{mode}"
seed = 11

[target]
ready_timeout = "30s"
stop_signal = "SIGINT"

[[target.modes]]
name = "{mode}"
command = ["{bin}", "--mode", "{mode}", {workers}"--listen", "127.0.0.1:{{port}}", "--db", "{{db}}", "--products", "20", "--stock", "100000", "--checkout-io", "5ms", "--drain-timeout", "5s"]
{extra_mode_keys}

[load]
# A functional test on a busy machine (debug build, tests in parallel): the
# generator-lateness check has a test of its own.
late_after = "1s"
{load}

{chaos}
{SHOP_JOURNEY}"#,
        bin = bin.display()
    )
}

fn events(run: &Run) -> Vec<Row> {
    run.csv("events.csv")
}

fn of_kind<'a>(events: &'a [Row], kind: &str) -> Vec<&'a Row> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

fn t(e: &Row) -> f64 {
    num(e, "t_s")
}

fn assert_invariants_hold(run: &Run, mode: &str) {
    let rows: Vec<Row> = run
        .csv("invariants.csv")
        .into_iter()
        .filter(|r| r["mode"] == mode)
        .collect();
    let checks: Vec<&str> = rows.iter().map(|r| r["check"].as_str()).collect();
    assert_eq!(
        checks,
        [
            "lost_orders",
            "duplicate_orders",
            "phantom_orders",
            "oversold",
            "stock_balance",
            "vanished_carts"
        ],
        "{}",
        run.describe()
    );
    for r in &rows {
        assert_eq!(
            r["holds"],
            "true",
            "invariant broken: {r:?}\n{}",
            run.describe()
        );
    }
}

#[test]
fn a_cluster_survives_a_deploy_kills_and_a_pause_with_nothing_dropped_or_lost() {
    let load = "users = 500\ntimeout = \"10s\"\n[load.arrival]\npeak_rate = 100\n\
                [load.retry]\ncount = 4\nbackoff = \"50ms\"\n";
    let chaos = r#"
[[chaos]]
action = "deploy"
at = "1s"

[[chaos]]
action = "kill"
at = ["2s", "3s", "4s"]

[[chaos]]
action = "pause"
at = "2.5s"
duration = "400ms"
"#;
    let scenario = shop_scenario("cluster", "", load, chaos);
    let run = run_scenario("chaos-cluster", &scenario, &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let events = events(&run);
    let described = format!("events: {events:#?}\n{}", run.describe());

    let deploys = of_kind(&events, "deploy");
    assert_eq!(deploys.len(), 1, "{described}");
    let deploy_t = t(deploys[0]);
    let started = of_kind(&events, "worker-started");
    let exited = of_kind(&events, "worker-exited");
    let exited_after =
        |pid: &str, after: f64| exited.iter().any(|e| e["pid"] == pid && t(e) >= after);

    // The deploy replaced every worker that was serving when it fired.
    let before: Vec<&str> = started
        .iter()
        .filter(|e| t(e) < deploy_t)
        .map(|e| e["pid"].as_str())
        .collect();
    assert_eq!(
        before.len(),
        2,
        "two workers before the deploy: {described}"
    );
    for pid in &before {
        assert!(
            exited_after(pid, deploy_t),
            "worker {pid} outlived the deploy: {described}"
        );
    }
    assert!(
        started.iter().filter(|e| t(e) > deploy_t).count() >= 2 + 3,
        "two replacements for the deploy and one per kill: {described}"
    );

    // Each kill hit a live worker of the master, which then exited.
    let worker_pids: HashSet<&str> = started.iter().map(|e| e["pid"].as_str()).collect();
    let kills = of_kind(&events, "kill");
    assert_eq!(kills.len(), 3, "{described}");
    for kill in &kills {
        let pid = kill["pid"].as_str();
        assert!(
            worker_pids.contains(pid),
            "kill hit {pid}, no worker: {described}"
        );
        assert!(
            exited_after(pid, t(kill) - 0.001),
            "killed {pid} never exited: {described}"
        );
    }

    // The pause stopped one worker and resumed the same one.
    let pauses = of_kind(&events, "pause");
    let resumes = of_kind(&events, "resume");
    assert_eq!((pauses.len(), resumes.len()), (1, 1), "{described}");
    assert_eq!(pauses[0]["pid"], resumes[0]["pid"], "{described}");
    assert!(t(resumes[0]) >= t(pauses[0]) + 0.4, "{described}");

    let all = run.summary("cluster", "all");
    assert_eq!(
        num(&all, "dropped"),
        0.0,
        "cluster dropped requests: {all:?}\n{described}"
    );
    assert_eq!(num(&all, "status_5xx"), 0.0, "{all:?}");
    assert!(num(&all, "ok") > 0.0, "{all:?}");
    assert_invariants_hold(&run, "cluster");

    let timeseries = run.csv("timeseries.csv");
    assert!(
        timeseries.iter().all(|r| !r["live_workers"].is_empty()),
        "live_workers is filled every second: {timeseries:?}"
    );
    let modes = run.csv("modes.csv");
    assert!(num(&modes[0], "server_cpu_s") > 0.0, "{modes:?}");
    assert!(num(&modes[0], "server_peak_rss_kb") > 0.0, "{modes:?}");
}

#[test]
fn a_single_process_drops_requests_on_a_deploy_and_the_downtime_is_measured() {
    // A client that does not retry, as most browsers do not for a POST.
    let load = "users = 300\ntimeout = \"10s\"\n[load.arrival]\npeak_rate = 100\n";
    let chaos = "[[chaos]]\naction = \"deploy\"\nat = \"1.5s\"\n";
    let mode_keys = "workers = \"itself\"\nsupervise = true\nrestart_delay = \"300ms\"";
    let scenario = shop_scenario("single", mode_keys, load, chaos);
    let run = run_scenario("chaos-single", &scenario, &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let events = events(&run);
    let described = format!("events: {events:#?}\n{}", run.describe());

    let deploy = of_kind(&events, "deploy");
    let restarted = of_kind(&events, "server-restarted");
    let downtime = of_kind(&events, "downtime");
    assert_eq!(
        (deploy.len(), restarted.len(), downtime.len()),
        (1, 1, 1),
        "{described}"
    );
    let first_pid = &of_kind(&events, "worker-started")[0]["pid"];
    assert_eq!(
        &deploy[0]["pid"], first_pid,
        "the deploy signals the running process"
    );
    assert_ne!(
        &restarted[0]["pid"], first_pid,
        "a new process serves after the restart"
    );
    let down_ms: f64 = downtime[0]["detail"]
        .parse()
        .expect("downtime detail is ms");
    assert!(
        down_ms >= 300.0,
        "downtime {down_ms} ms includes the restart delay"
    );

    let all = run.summary("single", "all");
    assert!(
        num(&all, "dropped") > 0.0,
        "nothing dropped: {all:?}\n{described}"
    );
    // Whatever was dropped, the shop lost nothing it had confirmed.
    assert_invariants_hold(&run, "single");
}

/// The pre-forking test server, stopped in `Drop`.
struct Prefork {
    child: Child,
    _dir: TempDir,
    port: u16,
    pidfile: std::path::PathBuf,
}

impl Prefork {
    fn start(workers: u32) -> Prefork {
        let dir = temp_dir("prefork");
        let portfile = dir.path().join("port");
        let pidfile = dir.path().join("server.pid");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/prefork_server.py"
        );
        let child = Command::new("python3")
            .arg(script)
            .arg(&portfile)
            .arg(&pidfile)
            .arg(workers.to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("start python3 prefork_server.py");
        let mut server = Prefork {
            child,
            _dir: dir,
            port: 0,
            pidfile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.port == 0 {
            assert!(
                Instant::now() < deadline,
                "the prefork server never wrote its port"
            );
            if let Ok(text) = std::fs::read_to_string(&portfile) {
                server.port = text.trim().parse().unwrap_or(0);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Prefork {
    fn drop(&mut self) {
        // SIGTERM lets the master take its workers down; SIGKILL if it does not.
        stop_child(
            &mut self.child,
            nix::sys::signal::Signal::SIGTERM,
            Duration::from_secs(5),
        );
    }
}

#[test]
fn an_external_server_found_by_its_pidfile_has_its_workers_killed_and_logged() {
    let server = Prefork::start(2);
    let scenario = format!(
        r#"name = "external"
seed = 5

[target]
ready_path = "/"

[[target.modes]]
name = "prefork"
url = "http://127.0.0.1:{port}"
pidfile = "{pidfile}"

[load]
# A functional test on a busy machine (debug build, tests in parallel): the
# generator-lateness check has a test of its own.
late_after = "1s"
users = 60
timeout = "5s"
[load.arrival]
peak_rate = 20
[load.retry]
count = 3
backoff = "50ms"

[[chaos]]
action = "kill"
at = ["1s", "2s"]

[[journey]]
name = "home"
path = "/"
repeat = 5
think = "20ms..60ms"
"#,
        port = server.port,
        pidfile = server.pidfile.display()
    );
    let run = run_scenario("external", &scenario, &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let events = events(&run);
    let described = format!("events: {events:#?}\n{}", run.describe());

    let master = std::fs::read_to_string(&server.pidfile).expect("pidfile");
    let started = of_kind(&events, "worker-started");
    for e in &started {
        assert_eq!(
            e["detail"],
            format!("ppid {}", master.trim()),
            "{described}"
        );
    }
    let kills = of_kind(&events, "kill");
    assert_eq!(kills.len(), 2, "{described}");
    for kill in &kills {
        let pid = &kill["pid"];
        assert!(
            started.iter().any(|e| &e["pid"] == pid),
            "kill hit {pid}: {described}"
        );
        assert!(
            of_kind(&events, "worker-exited")
                .iter()
                .any(|e| &e["pid"] == pid),
            "no exit seen for killed {pid}: {described}"
        );
    }
    // The server's own supervisor replaced both: four workers seen in all.
    assert!(started.len() >= 4, "{described}");
}
