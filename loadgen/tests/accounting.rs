//! Every request accounted for, and the generator's faults kept apart from the
//! server's: a server that stalls past `max_duration` cannot pass a `dropped` gate
//! (its requests in flight are `cut`, and conservation still holds); loadgen whose own
//! file limit cannot hold its users refuses to start instead of blaming the server;
//! loadgen kept from running is caught as late (exit 3), not counted against the
//! server; a chaos action that cannot be applied (a stale pidfile) fails the run
//! instead of passing it with no chaos done; and, for random scenarios against a
//! randomly misbehaving server, every request sent ends in exactly one class and every
//! planned user is accounted for.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

type Row = HashMap<String, String>;

const TWO_GETS: &str = r#"
[[journey]]
name = "home"
path = "/"
think = "50ms"

[[journey]]
name = "item"
path = "/items/${rand:1..9}"
repeat = 2
think = "20ms..80ms"
"#;

/// Every step's `sent` equals its `requests` and the sum of its classes; every
/// planned user completed, aborted, was cut or never started.
fn assert_conserved(run: &Run, mode: &str) -> (Row, Row) {
    let classes = [
        "ok",
        "status_4xx",
        "status_503",
        "status_5xx",
        "refused",
        "closed",
        "timeout",
        "cut",
        "generator_error",
    ];
    for row in run.csv("summary.csv").iter().filter(|r| r["mode"] == mode) {
        let sum: f64 = classes.iter().map(|c| num(row, c)).sum();
        assert_eq!(num(row, "sent"), num(row, "requests"), "{row:?}");
        assert_eq!(num(row, "requests"), sum, "{row:?}");
    }
    let modes = run.csv("modes.csv");
    let m = modes
        .iter()
        .find(|r| r["mode"] == mode)
        .unwrap_or_else(|| panic!("no modes.csv row\n{}", run.describe()))
        .clone();
    let ended = [
        "users_completed",
        "users_aborted",
        "users_cut",
        "users_never_started",
    ]
    .iter()
    .map(|c| num(&m, c))
    .sum::<f64>();
    assert_eq!(num(&m, "users_planned"), ended, "{m:?}\n{}", run.describe());
    (run.summary(mode, "all"), m)
}

#[test]
fn a_server_that_stalls_past_max_duration_fails_the_gate_with_its_requests_cut() {
    // Answers the first 150 requests, then never again.
    let server = TestServer::start(Arc::new(|s: &Seen| match s.request {
        ..=150 => Action::Answer(200),
        _ => Action::Hang,
    }));
    let load =
        "users = 200\ntimeout = \"30s\"\nmax_duration = \"4s\"\n[load.arrival]\npeak_rate = 100";
    let text = format!(
        "thresholds = [\"test.dropped == 0\", \"test.failed == 0\"]\n{}",
        scenario(&server.url(), load, TWO_GETS)
    );
    let run = run_scenario("stall", &text, &[]);
    assert_eq!(
        run.code(),
        1,
        "a stalled server fails the gate\n{}",
        run.describe()
    );
    let (all, _) = assert_conserved(&run, "test");
    let cut = num(&all, "cut");
    assert!(
        cut > 0.0,
        "requests in flight at the cut-off are cut\n{all:?}"
    );
    assert_eq!(
        num(&all, "dropped"),
        0.0,
        "nothing timed out: they were cut"
    );
    assert_eq!(num(&all, "failed"), cut, "cut requests count as failed");
    // Every request the server received is one loadgen counted (no retries here).
    assert_eq!(
        num(&all, "requests") as u64,
        server.count(|c| &c.requests),
        "{all:?}"
    );
    let verdicts = run.csv("thresholds.csv");
    let dropped = verdicts
        .iter()
        .find(|v| v["threshold"] == "test.dropped == 0")
        .expect("dropped verdict");
    assert_eq!(dropped["verdict"], "FAIL", "{verdicts:?}");
    assert!(
        dropped["actual"].contains("not fully measured"),
        "{verdicts:?}"
    );
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert!(stderr.contains("was cut off"), "{stderr}");
}

#[test]
fn an_open_file_limit_too_small_for_the_users_is_loadgen_s_fault_not_the_server_s() {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    let load = "users = 1000\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 500";
    let tmp = temp_dir("nofile");
    let path = tmp.path().join("s.toml");
    std::fs::write(&path, scenario(&server.url(), load, TWO_GETS)).expect("write");
    let mut cmd = loadgen();
    cmd.arg("run")
        .arg(&path)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--quiet");
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 256, 256)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().expect("run loadgen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("open-file limit is 256"), "{stderr}");
    assert!(
        stderr.contains("users_per_process"),
        "says how to fix it: {stderr}"
    );
    assert_eq!(
        server.count(|c| &c.requests),
        0,
        "no load was sent, so nothing was refused"
    );
}

#[test]
fn a_generator_kept_from_running_is_caught_as_late_and_not_blamed_on_the_server() {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    // Written here rather than with `scenario()`: this test wants the default
    // lateness bound (50 ms), which the helper relaxes for functional tests.
    let text = format!(
        r#"name = "late"
[target]
ready_timeout = "10s"
[[target.modes]]
name = "test"
url = "{}"
[load]
users = 150
timeout = "10s"
[load.arrival]
peak_rate = 50
{TWO_GETS}"#,
        server.url()
    );
    let tmp = temp_dir("late");
    let path = tmp.path().join("s.toml");
    std::fs::write(&path, text).expect("write");
    let dir = tmp.path().join("out");
    let child = loadgen()
        .arg("--threads")
        .arg("1")
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&dir)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    // Freeze loadgen for 200 ms out of every 300 while it runs: its users wake late.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let done = Arc::new(AtomicBool::new(false));
    let freezer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP);
                std::thread::sleep(Duration::from_millis(200));
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            }
        })
    };
    let out = child.wait_with_output();
    done.store(true, Ordering::SeqCst);
    let _ = freezer.join();
    let out = out.expect("wait for loadgen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the generator set the pace"), "{stderr}");
    let modes = read_csv(&dir.join("modes.csv"));
    assert!(num(&modes[0], "generator_late") > 0.0, "{modes:?}");
    assert!(num(&modes[0], "send_lateness_max_ms") >= 50.0, "{modes:?}");
    let all = read_csv(&dir.join("summary.csv"))
        .into_iter()
        .find(|r| r["step"] == "all")
        .expect("all row");
    assert_eq!(num(&all, "dropped"), 0.0, "the server answered everything");
}

#[test]
fn for_random_scenarios_every_request_and_user_is_accounted_for() {
    for seed in 1..=5u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (close, hang) = (rng.random_range(0..15u64), rng.random_range(0..10u64));
        // Out of every 100 requests: `close` closed without an answer, `hang` never
        // answered, the rest answered.
        let server = TestServer::start(Arc::new(move |s: &Seen| match s.request % 100 {
            n if n < close => Action::Close,
            n if n < close + hang => Action::Hang,
            _ => Action::Answer(200),
        }));
        let users = rng.random_range(20..150u64);
        let rate = rng.random_range(20..120u64);
        let arrivals = users as f64 / rate as f64;
        let cut = arrivals + rng.random_range(0.2..2.5);
        let timeout = rng.random_range(200..2000u64);
        let think = rng.random_range(0..60u64);
        let journey = format!(
            "[[journey]]\nname = \"a\"\npath = \"/\"\nthink = \"{think}ms\"\n\n\
             [[journey]]\nname = \"b\"\npath = \"/b\"\nrepeat = 3\nthink = \"0ms..{think}ms\"\n"
        );
        let load = format!(
            "users = {users}\ntimeout = \"{timeout}ms\"\nmax_duration = \"{cut:.2}s\"\n\
             [load.arrival]\npeak_rate = {rate}"
        );
        let run = run_scenario(
            &format!("random-{seed}"),
            &scenario(&server.url(), &load, &journey),
            &[],
        );
        let described = format!(
            "seed {seed}: users {users} at {rate}/s, cut at {cut:.2}s, timeout {timeout} ms, \
             think {think} ms, close {close}%, hang {hang}%\n{}",
            run.describe()
        );
        assert_eq!(run.code(), 0, "{described}");
        let (all, _) = assert_conserved(&run, "test");
        assert_eq!(
            num(&all, "attempts") as u64,
            server.count(|c| &c.requests),
            "every attempt is one request the server received\n{described}"
        );
    }
}

/// A pidfile naming a process that is gone: the kill cannot be applied, and the run
/// says so instead of reporting "no drops" with no chaos done.
fn stale_pidfile_run(tag: &str, optional: bool) -> (Run, Vec<Row>) {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    let dir = temp_dir(tag);
    let pidfile = dir.path().join("app.pid");
    let mut gone = std::process::Command::new("true").spawn().expect("spawn");
    let dead = gone.id();
    gone.wait().expect("reap");
    std::fs::write(&pidfile, format!("{dead}\n")).expect("write pidfile");
    let text = scenario(
        &server.url(),
        "users = 40\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 20",
        &format!(
            "[[journey]]\nname = \"home\"\npath = \"/\"\nrepeat = 3\nthink = \"200ms\"\n\n\
             [[chaos]]\naction = \"kill\"\nat = \"1s\"\noptional = {optional}\n"
        ),
    )
    .replace(
        "url = \"http",
        &format!("pidfile = \"{}\"\nurl = \"http", pidfile.display()),
    );
    let run = run_scenario(tag, &text, &[]);
    let events = run.csv("events.csv");
    (run, events)
}

#[test]
fn a_kill_that_cannot_be_applied_fails_the_run_with_an_event_saying_why() {
    let (run, events) = stale_pidfile_run("stale", false);
    assert_eq!(run.code(), 3, "{}", run.describe());
    let of_kind = |kind: &str| -> Vec<Row> {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect()
    };
    let skipped = of_kind("chaos-skipped");
    assert_eq!(skipped.len(), 1, "{events:?}");
    assert!(
        skipped[0]["detail"].contains("kill due at 1.00s")
            && skipped[0]["detail"].contains("stale pidfile"),
        "{skipped:?}"
    );
    assert!(of_kind("kill").is_empty(), "{events:?}");
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert!(stderr.contains("chaos could not be applied"), "{stderr}");

    // The same rule marked optional: logged, and the run goes on to pass.
    let (run, events) = stale_pidfile_run("stale-optional", true);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let skipped = events
        .iter()
        .filter(|e| e["kind"] == "chaos-skipped")
        .count();
    assert_eq!(skipped, 1, "{events:?}");
}
