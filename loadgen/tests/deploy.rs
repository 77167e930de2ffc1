//! Deploys that change the release, against the real clustered shop: a deploy that
//! writes a new version shows v1 giving way to v2 in workers.csv with nothing
//! dropped; a deploy of a broken build (the start link pointed at a program that
//! exits at once) is rolled back by the master, a later crash is replaced from the
//! last known good build, and nothing is dropped.

mod common;

use common::*;

fn cluster_scenario(tag: &str, chaos: &str) -> String {
    let bin = shop_server();
    format!(
        r#"name = "{tag}"
seed = 3

[target]
ready_timeout = "30s"
stop_signal = "SIGINT"

[[target.modes]]
name = "cluster"
command = ["{{start}}", "--mode", "cluster", "--workers", "2", "--listen", "127.0.0.1:{{port}}", "--db", "{{db}}", "--products", "20", "--stock", "100000", "--checkout-io", "5ms", "--settle", "500ms", "--version-file", "{{version_file}}"]
start_link = "{bin}"
version = "v1"

[load]
# A functional test on a busy machine (debug build, tests in parallel).
late_after = "1s"
users = 400
timeout = "10s"
[load.arrival]
peak_rate = 100
[load.retry]
count = 4
backoff = "50ms"

{chaos}
{SHOP_JOURNEY}"#,
        bin = bin.display()
    )
}

fn versions(run: &Run) -> Vec<String> {
    let mut v: Vec<String> = run
        .csv("workers.csv")
        .into_iter()
        .map(|r| r["version"].clone())
        .collect();
    v.dedup();
    v
}

#[test]
fn a_deploy_that_writes_a_new_version_hands_over_from_v1_to_v2() {
    let chaos = "[[chaos]]\naction = \"deploy\"\nat = \"1.5s\"\nversion = \"v2\"\n";
    let run = run_scenario("deploy-v2", &cluster_scenario("deploy-v2", chaos), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let all = run.summary("cluster", "all");
    assert_eq!(num(&all, "dropped"), 0.0, "{all:?}");
    let seen = versions(&run);
    assert_eq!(
        (
            seen.first().map(String::as_str),
            seen.last().map(String::as_str)
        ),
        (Some("v1"), Some("v2")),
        "answers by version, in time order: {seen:?}"
    );
    let deploy = run
        .csv("events.csv")
        .into_iter()
        .find(|e| e["kind"] == "deploy")
        .expect("a deploy event");
    assert_eq!(deploy["detail"], "SIGTERM, version v2", "{deploy:?}");
}

#[test]
fn a_broken_build_is_rolled_back_and_a_later_crash_is_replaced_from_the_good_one() {
    let chaos = "[[chaos]]\naction = \"deploy\"\nat = \"1.5s\"\nstart_link = \"/bin/false\"\n\n\
                 [[chaos]]\naction = \"kill\"\nat = \"3s\"\n";
    let run = run_scenario(
        "deploy-broken",
        &cluster_scenario("deploy-broken", chaos),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    let all = run.summary("cluster", "all");
    assert_eq!(num(&all, "dropped"), 0.0, "nothing dropped: {all:?}");
    let log = std::fs::read_to_string(run.dir.join("server-cluster.log")).expect("server log");
    assert!(log.contains("rollout aborted"), "{log}");
    assert!(log.contains("rolled back"), "{log}");
    let replaced = log
        .lines()
        .find(|l| l.contains("died unexpectedly: replacing it now from generation 1"));
    assert!(
        replaced.is_some(),
        "the crash replacement runs the good build:\n{log}"
    );
    // Every answer still came from the good build's version.
    assert_eq!(versions(&run), vec!["v1".to_string()]);
    let events = run.csv("events.csv");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "first-ok" && num(e, "t_s") > 3.0),
        "the replacement answered after the kill: {events:?}"
    );
}
