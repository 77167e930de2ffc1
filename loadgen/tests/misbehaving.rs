//! Honest numbers against servers that misbehave on purpose: connections closed
//! without an answer, a stall, requests that never get an answer, 503s. Every
//! assertion compares loadgen's counts with the server's own, or checks a lower
//! bound on latency; none depends on the machine's speed.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;

const TWO_GETS: &str = r#"
[[journey]]
name = "list"
path = "/products"

[[journey]]
name = "view"
path = "/products/${rand:1..5}"
"#;

fn close_every_10th() -> Policy {
    Arc::new(|s: &Seen| {
        if s.first_on_connection && s.connection % 10 == 0 {
            Action::Close
        } else {
            Action::Answer(200)
        }
    })
}

#[test]
fn closed_connections_are_retried_to_zero_dropped() {
    let server = TestServer::start(close_every_10th());
    let load = "users = 200\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 400\n[load.retry]\ncount = 3\nbackoff = \"10ms\"\n";
    let run = run_scenario("retry", &scenario(&server.url(), load, TWO_GETS), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let closed = server.count(|c| &c.closed);
    assert!(
        closed >= 20,
        "at least 200 connections were opened, so >= 20 closed: {closed}"
    );
    let all = run.summary("test", "all");
    assert_eq!(
        num(&all, "attempt_failures") as u64,
        closed,
        "every closed connection is one failed attempt"
    );
    assert_eq!(
        num(&all, "dropped"),
        0.0,
        "every closed request was retried\n{}",
        run.describe()
    );
    assert_eq!(num(&all, "requests"), 400.0);
    assert_eq!(num(&all, "ok"), 400.0);
    assert_eq!(num(&all, "attempts") as u64, 400 + closed);
    assert_eq!(server.count(|c| &c.answered), 400);
    assert!(num(&all, "retried") >= 1.0);
}

#[test]
fn without_retries_exactly_the_closed_requests_are_dropped() {
    let server = TestServer::start(close_every_10th());
    let load =
        "users = 200\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 400\n[load.retry]\ncount = 0\n";
    let run = run_scenario("noretry", &scenario(&server.url(), load, TWO_GETS), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let closed = server.count(|c| &c.closed);
    // 200 users, one connection each: connections 10, 20, ... 200 are closed.
    assert_eq!(closed, 20);
    let all = run.summary("test", "all");
    assert_eq!(num(&all, "dropped") as u64, closed);
    assert_eq!(num(&all, "closed") as u64, closed);
    assert_eq!(num(&all, "attempt_failures") as u64, closed);
    assert_eq!(num(&all, "retried"), 0.0);
    // A user whose first request was dropped stops: 20 fewer second steps.
    assert_eq!(num(&run.summary("test", "view"), "requests"), 180.0);
    assert_eq!(num(&all, "requests") as u64, server.count(|c| &c.requests));
    let modes = run.csv("modes.csv");
    assert_eq!(modes[0]["users_aborted"], "20");
    assert_eq!(modes[0]["users_completed"], "180");
}

#[test]
fn a_stall_shows_in_the_latency_of_every_request_due_during_it() {
    // One request at a time, normally: 100 users/s, one quick GET each. Request 100
    // triggers a 1.2 s stall; every user due meanwhile waits for it.
    let policy: Policy = Arc::new(|_s: &Seen| Action::Answer(200));
    let server = TestServer::start_with_stall(policy, Some((100, Duration::from_millis(1200))));
    let load = "users = 300\ntimeout = \"10s\"\n[load.arrival]\npeak_rate = 100\n";
    let journey = "[[journey]]\nname = \"get\"\npath = \"/products\"\n";
    let run = run_scenario("stall", &scenario(&server.url(), load, journey), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let all = run.summary("test", "all");
    assert_eq!(num(&all, "requests"), 300.0);
    assert!(
        num(&all, "max_ms") >= 1200.0,
        "the stalled request waited 1.2 s: {all:?}"
    );
    assert!(
        num(&all, "p99_ms") >= 1000.0,
        "the 1% slowest waited about a second: {all:?}"
    );
    // ~120 users were due during the stall: far more than 10% of requests are slow.
    assert!(
        num(&all, "p90_ms") >= 500.0,
        "requests due during the stall all count: {all:?}"
    );
    let ts = run.csv("timeseries.csv");
    assert!(
        ts.iter()
            .any(|r| num(r, "max_ms") >= 1200.0 && num(r, "p99_ms") >= 1000.0)
    );
}

#[test]
fn timeouts_are_dropped_and_503_is_not() {
    let policy: Policy = Arc::new(|s: &Seen| match s.request {
        n if n % 5 == 0 => Action::Hang,
        n if n % 7 == 0 => Action::Answer(503),
        _ => Action::Answer(200),
    });
    let server = TestServer::start(policy);
    let load = "users = 100\ntimeout = \"300ms\"\n[load.arrival]\npeak_rate = 200\n[load.retry]\ncount = 0\n";
    let journey = "[[journey]]\nname = \"get\"\npath = \"/products\"\n";
    let run = run_scenario("timeouts", &scenario(&server.url(), load, journey), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let all = run.summary("test", "all");
    let hung = server.count(|c| &c.hung);
    assert_eq!(hung, 20);
    assert_eq!(num(&all, "timeout") as u64, hung);
    assert_eq!(num(&all, "dropped") as u64, hung, "timeouts are dropped");
    assert_eq!(num(&all, "status_503") as u64, server.status_count(503));
    assert_eq!(server.status_count(503), 12);
    assert_eq!(
        num(&all, "failed") as u64,
        hung + 12,
        "failed = dropped + 503"
    );
    assert_eq!(num(&all, "ok") as u64, server.status_count(200));
    assert!(
        num(&all, "max_ms") >= 300.0,
        "a timeout takes the full timeout"
    );
}

#[test]
fn a_timeout_late_in_a_journey_waits_the_full_timeout() {
    // Two quick answers, then a request that never gets one: the per-user timer
    // armed for the first request must not cut the third one short.
    let policy: Policy = Arc::new(|s: &Seen| {
        if s.path == "/hang" {
            Action::Hang
        } else {
            Action::Answer(200)
        }
    });
    let server = TestServer::start(policy);
    let load = "users = 20\ntimeout = \"400ms\"\n[load.arrival]\npeak_rate = 100\n[load.retry]\ncount = 1\nbackoff = \"10ms\"\n";
    let journey = r#"
[[journey]]
name = "a"
path = "/a"
think = "150ms"

[[journey]]
name = "b"
path = "/b"
think = "150ms"

[[journey]]
name = "hang"
path = "/hang"
"#;
    let run = run_scenario("late-timeout", &scenario(&server.url(), load, journey), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let hang = run.summary("test", "hang");
    assert_eq!(num(&hang, "timeout"), 20.0, "{hang:?}");
    assert_eq!(num(&hang, "attempts"), 40.0, "one retry each: {hang:?}");
    assert_eq!(server.count(|c| &c.hung), 40);
    // Two attempts of 400 ms each, plus the back-off, from the request's due instant.
    assert!(
        num(&hang, "p50_ms") >= 810.0,
        "every timeout took the full timeout twice: {hang:?}"
    );
    assert_eq!(num(&run.summary("test", "a"), "ok"), 20.0);
}
