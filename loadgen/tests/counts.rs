//! loadgen's counts agree with what the server saw, in one process and when the
//! users are split over several `loadgen shard` processes; every file of the run
//! folder is written with the contract's columns.

mod common;

use common::*;
use std::sync::Arc;

const JOURNEY: &str = r#"
[[journey]]
name = "browse"
path = "/products"

[[journey]]
name = "view"
path = "/products/${rand:1..20}"
repeat = 2
think = "0ms..5ms"

[[journey]]
name = "cart"
method = "POST"
path = "/carts"
body = '{"user": ${user}}'
idempotency_key = true
expect = [201]
capture = { cart_id = "cart_id" }

[[journey]]
name = "checkout"
method = "POST"
path = "/checkout"
body = '{"cart_id": ${cart_id}}'
idempotency_key = true
expect = [201, 409]
"#;

fn shop_like() -> Policy {
    Arc::new(|s: &Seen| {
        if s.path == "/carts" {
            Action::Answer(201)
        } else if s.path == "/checkout" {
            Action::Answer(if s.request % 3 == 0 { 409 } else { 201 })
        } else {
            Action::Answer(200)
        }
    })
}

fn check_exact(tag: &str, users_per_process: u64, processes: &str) {
    let server = TestServer::start(shop_like());
    let load = format!(
        "users = 150\ntimeout = \"5s\"\nusers_per_process = {users_per_process}\n[load.arrival]\npeak_rate = 300\n"
    );
    let run = run_scenario(tag, &scenario(&server.url(), &load, JOURNEY), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());

    let answered = server.count(|c| &c.answered);
    // 150 users x (1 browse + 2 views + cart + checkout), all answered.
    assert_eq!(answered, 750, "server answered");
    let all = run.summary("test", "all");
    assert_eq!(
        num(&all, "requests") as u64,
        answered,
        "loadgen requests == server answers"
    );
    assert_eq!(
        num(&all, "ok") as u64,
        answered,
        "409 is expected at checkout, so ok"
    );
    assert_eq!(num(&all, "dropped"), 0.0);
    assert_eq!(num(&all, "attempts") as u64, answered);
    assert_eq!(num(&run.summary("test", "view"), "requests"), 300.0);
    assert_eq!(num(&run.summary("test", "checkout"), "requests"), 150.0);

    let ts = run.csv("timeseries.csv");
    let completed: f64 = ts.iter().map(|r| num(r, "completed")).sum();
    let sent: f64 = ts.iter().map(|r| num(r, "sent")).sum();
    assert_eq!(completed as u64, answered, "timeseries completed");
    assert_eq!(sent as u64, answered, "timeseries sent");
    let seconds: Vec<f64> = ts.iter().map(|r| num(r, "second")).collect();
    assert!(
        seconds.windows(2).all(|w| w[1] == w[0] + 1.0),
        "one row per second: {seconds:?}"
    );

    let workers = run.csv("workers.csv");
    let responses: f64 = workers.iter().map(|r| num(r, "responses")).sum();
    assert_eq!(responses as u64, answered, "workers.csv responses");
    assert!(
        workers
            .iter()
            .all(|r| r["version"] == "test-1" && r["worker_pid"] == std::process::id().to_string())
    );

    let modes = run.csv("modes.csv");
    assert_eq!(modes.len(), 1);
    let m = &modes[0];
    assert_eq!(m["loadgen_processes"], processes);
    assert_eq!(m["users_planned"], "150");
    assert_eq!(m["users_started"], "150");
    assert_eq!(m["users_completed"], "150");
    assert_eq!(m["users_aborted"], "0");
    assert!(num(m, "loadgen_peak_rss_kb") > 0.0);
    assert!(
        num(m, "duration_s") >= 0.5,
        "150 users at 300/s take at least 0.5 s"
    );

    for f in ["scenario.toml", "events.csv", "latency-test.hgrm"] {
        assert!(run.dir.join(f).exists(), "{f} written\n{}", run.describe());
    }
    let hgrm = std::fs::read_to_string(run.dir.join("latency-test.hgrm")).expect("hgrm");
    assert!(hgrm.contains("Total count    =          750]"), "{hgrm}");
    // No chaos: the one event is the first ok answer from the (only) server process.
    let events = run.csv("events.csv");
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str(), e["pid"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("first-ok", std::process::id().to_string().as_str())],
        "{events:?}"
    );
}

#[test]
fn completed_requests_equal_what_the_server_answered() {
    check_exact("exact", 15_000, "1");
}

#[test]
fn users_split_over_worker_processes_merge_to_the_same_counts() {
    check_exact("sharded", 60, "3");
}
