//! The run plan is what runs: every threshold the scenario file lists reaches the gate
//! (none dropped between validation and the run), and `--threads N` is the number of
//! threads that run users in every loadgen process, shard processes included.

mod common;

use common::*;
use loadgen::plan::{PlanOptions, RunPlan};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const THRESHOLDS: &[&str] = &[
    "test.dropped == 0",
    "failed == 0",
    "test.get.p99 < 5s",
    "test.requests > 0",
    "lost_orders == 0",
];

fn gated_scenario(url: &str) -> String {
    // `thresholds` is a top-level key, so it goes before the scenario's first table.
    let mut text = String::from("thresholds = [\n");
    for (i, t) in THRESHOLDS.iter().enumerate() {
        if i == 1 {
            text.push_str(&format!("  {{ check = \"{t}\", abort_on_fail = true }},\n"));
        } else {
            text.push_str(&format!("  \"{t}\",\n"));
        }
    }
    text.push_str("]\n");
    text.push_str(&scenario(
        url,
        "users = 20\ntimeout = \"2s\"\n[load.arrival]\npeak_rate = 100",
        "[[journey]]\nname = \"get\"\npath = \"/\"\n",
    ));
    text
}

#[test]
fn every_threshold_of_the_file_is_in_the_plan_and_in_the_verdicts() {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    let text = gated_scenario(&server.url());
    let plan = RunPlan::from_source("gated.toml", &text, &PlanOptions::default())
        .unwrap_or_else(|e| panic!("the scenario should build: {e}\n{text}"));
    let texts: Vec<&str> = plan.thresholds.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts, THRESHOLDS, "the plan's thresholds are the file's");
    let aborts: Vec<bool> = plan.thresholds.iter().map(|t| t.abort_on_fail).collect();
    assert_eq!(aborts, [false, true, false, false, false]);

    // And at run time: one verdict per threshold (this scenario has one mode), in order.
    let run = run_scenario("gated", &text, &[]);
    let verdicts = run.csv("thresholds.csv");
    let judged: Vec<String> = verdicts.iter().map(|r| r["threshold"].clone()).collect();
    let expected: Vec<String> = THRESHOLDS
        .iter()
        .map(|t| match t.starts_with("test.") {
            true => t.to_string(),
            false => format!("test.{t}"),
        })
        .collect();
    assert_eq!(judged, expected, "{}", run.describe());
    // No invariants section: lost_orders was not measured, and unmeasured never passes.
    assert_eq!(run.code(), 1, "{}", run.describe());
}

#[test]
fn an_unknown_mode_on_the_command_line_is_bad_usage() {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    let text = scenario(
        &server.url(),
        "users = 1\n[load.arrival]\npeak_rate = 10",
        "[[journey]]\nname = \"get\"\npath = \"/\"\n",
    );
    let run = run_scenario("badmode", &text, &["--mode", "nope"]);
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(
        String::from_utf8_lossy(&run.output.stderr).contains("--mode nope"),
        "{}",
        run.describe()
    );
}

/// Threads named `loadgen-users-*` of `pid` (the engine names each one it starts).
fn user_threads(pid: u32) -> Option<usize> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(
        tasks
            .filter_map(|t| t.ok())
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .filter(|comm| comm.starts_with("loadgen-users"))
            .count(),
    )
}

/// Direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Runs a scenario whose users walk for ~3 s with `--threads threads`, split over
/// `processes` loadgen processes, and returns the most user threads seen in each
/// process that generated load (the parent when it runs users itself, else each shard).
fn user_threads_per_generator(threads: u16, processes: u64) -> Vec<usize> {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    let users = 40;
    let text = scenario(
        &server.url(),
        &format!(
            "users = {users}\nusers_per_process = {}\ntimeout = \"2s\"\n[load.arrival]\npeak_rate = 200",
            users / processes
        ),
        "[[journey]]\nname = \"get\"\npath = \"/\"\nrepeat = 6\nthink = \"500ms\"\n",
    );
    let tmp = temp_dir(&format!("threads-{threads}-{processes}"));
    let path = tmp.path().join("threads.toml");
    std::fs::write(&path, text).expect("write scenario");
    let mut child = loadgen()
        .arg("--threads")
        .arg(threads.to_string())
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start loadgen");
    let root = child.id();
    // pid -> most user threads seen in it.
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        let mut generators = vec![root];
        generators.extend(children(root));
        for pid in generators {
            if let Some(n) = user_threads(pid) {
                let best = seen.entry(pid).or_default();
                *best = (*best).max(n);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait for loadgen");
    assert!(status.success(), "loadgen exited with {status}");
    seen.into_values().filter(|n| *n > 0).collect()
}

#[test]
fn threads_sets_the_user_threads_of_one_process() {
    assert_eq!(user_threads_per_generator(1, 1), vec![1]);
    assert_eq!(user_threads_per_generator(3, 1), vec![3]);
}

#[test]
fn threads_sets_the_user_threads_of_every_shard_process() {
    // Two shard processes, each with exactly the threads asked for; the parent merges
    // and runs no users of its own.
    assert_eq!(user_threads_per_generator(1, 2), vec![1, 1]);
    assert_eq!(user_threads_per_generator(2, 2), vec![2, 2]);
}

#[test]
fn a_release_that_could_not_reach_the_server_is_refused_by_name() {
    let base = |command: &str, mode_keys: &str, deploy: &str| {
        format!(
            "name = \"r\"\n[target]\n[[target.modes]]\nname = \"m\"\ncommand = [{command}]\n{mode_keys}\n\
             [load]\nusers = 1\n[load.arrival]\npeak_rate = 1\n\
             [[journey]]\nname = \"get\"\npath = \"/\"\n\
             [[chaos]]\naction = \"deploy\"\nat = \"0.5s\"\n{deploy}\n"
        )
    };
    let build = |text: String| RunPlan::from_source("r.toml", &text, &PlanOptions::default());
    let plain = r#""srv", "{port}""#;
    // A new version for a server that never reads `{version_file}` would change nothing.
    let err = build(base(plain, "", "version = \"v2\""))
        .expect_err("version without {version_file}")
        .to_string();
    assert!(
        err.contains("key `chaos[0].version`") && err.contains("{version_file}"),
        "{err}"
    );
    let err = build(base(plain, "", "start_link = \"/bin/false\""))
        .expect_err("start_link without {start}")
        .to_string();
    assert!(err.contains("key `chaos[0].start_link`"), "{err}");
    // `{start}` must say what it points at first.
    let err = build(base(r#""{start}", "{port}""#, "", ""))
        .expect_err("{start} without start_link")
        .to_string();
    assert!(err.contains("key `target.modes[0].start_link`"), "{err}");
    // And all of it given: the plan builds.
    let ok = base(
        r#""{start}", "{port}", "{version_file}""#,
        "start_link = \"/bin/true\"\nversion = \"v1\"",
        "version = \"v2\"\nstart_link = \"/bin/false\"",
    );
    build(ok).unwrap_or_else(|e| panic!("a full release builds: {e}"));
}
