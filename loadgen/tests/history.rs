//! The run history and baselines, with real processes and the real shop: two
//! `loadgen run` processes appending to one history at once lose nothing; a slower
//! build of the shop (a much larger `--checkout-cpu`) run after a normal one fails
//! `p99 < baseline * 1.25` by name, and a normal build after that passes against the
//! last passing run; a relative threshold with no history reads "no baseline".

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use common::*;

fn run_with_history(scenario: &Path, out: &Path, history: &Path, extra: &[&str]) -> Command {
    let mut cmd = loadgen();
    cmd.env_remove("LOADGEN_NO_HISTORY")
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .arg("--history")
        .arg(history)
        .args(extra);
    cmd
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Rows of a table of the history, read with SQLite itself.
fn count(history: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(history).expect("open the history");
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[test]
fn two_concurrent_runs_append_to_one_history_without_loss() {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    let tmp = temp_dir("history-concurrent");
    let history = tmp.path().join("reports/history.sqlite");
    let load = "users = 60\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 60\n";
    let journey = "[[journey]]\nname = \"browse\"\npath = \"/products\"\n";
    let path = tmp.path().join("c.toml");
    std::fs::write(&path, scenario(&server.url(), load, journey)).expect("write");
    // Two at once, racing also to create the file and migrate it; then two more into
    // the existing file, started together.
    for round in 0..2 {
        let children: Vec<_> = (0..2)
            .map(|i| {
                run_with_history(
                    &path,
                    &tmp.path().join(format!("out-{round}-{i}")),
                    &history,
                    &[],
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start loadgen")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("loadgen ends");
            assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        }
    }
    assert_eq!(count(&history, "SELECT COUNT(*) FROM runs"), 4);
    assert_eq!(
        count(&history, "SELECT COUNT(DISTINCT id) FROM runs"),
        4,
        "four distinct run ids"
    );
    // Every run's figures: 60 requests in the `all` row of each.
    assert_eq!(
        count(
            &history,
            "SELECT COUNT(*) FROM figures WHERE step = 'all' AND name = 'requests' AND value = 60"
        ),
        4
    );
    assert_eq!(count(&history, "PRAGMA user_version"), 1);
    assert_eq!(
        count(
            &history,
            "SELECT COUNT(*) FROM runs WHERE git_commit IS NOT NULL"
        ),
        4,
        "the tests run inside the project's git repository"
    );
}

/// The shop in cluster mode with a checkout that waits `io` and computes `cpu`; the
/// journey's checkout dominates p99 (it is the one slow step).
fn shop_scenario(cpu: &str) -> String {
    let bin = shop_server();
    format!(
        r#"name = "baseline-shop"
seed = 5
thresholds = ["cluster.p99 < baseline * 1.25", "cluster.dropped == 0"]

[target]
ready_timeout = "30s"

[[target.modes]]
name = "cluster"
command = ["{bin}", "--mode", "cluster", "--workers", "2", "--listen", "127.0.0.1:{{port}}", "--db", "{{db}}", "--products", "20", "--stock", "100000", "--checkout-io", "400ms", "--checkout-cpu", "{cpu}"]

[load]
late_after = "1s"
users = 12
timeout = "20s"
[load.arrival]
peak_rate = 6
{SHOP_JOURNEY}"#,
        bin = bin.display()
    )
}

#[test]
fn a_slower_shop_fails_p99_against_the_baseline_and_a_normal_one_passes() {
    let tmp = temp_dir("baseline-shop");
    let history = tmp.path().join("history.sqlite");
    let normal = tmp.path().join("normal.toml");
    let slow = tmp.path().join("slow.toml");
    // Normal: p99 is a checkout, ~400 ms of I/O wait and 1 ms of CPU. Slow: 600 ms of
    // CPU more per checkout, so its p99 is at least 1 s: 2.5 times the normal one,
    // twice the 1.25 margin, which a noisy machine's jitter does not cross.
    std::fs::write(&normal, shop_scenario("1ms")).expect("write");
    // The same scenario name, so the history matches them; only the build differs.
    std::fs::write(&slow, shop_scenario("600ms")).expect("write");

    let first = run_with_history(&normal, &tmp.path().join("1"), &history, &[])
        .output()
        .expect("run 1");
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("cluster.p99 < baseline * 1.25") && l.ends_with("no baseline")),
        "the first run has no baseline: {stdout}"
    );

    let second = run_with_history(&slow, &tmp.path().join("2"), &history, &[])
        .output()
        .expect("run 2");
    assert_eq!(second.status.code(), Some(1), "{}", describe(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("thresholds breached: cluster.p99 < baseline * 1.25"),
        "the breach is named: {}",
        describe(&second)
    );
    let row = read_csv(&tmp.path().join("2/thresholds.csv"))
        .into_iter()
        .find(|r| r["threshold"] == "cluster.p99 < baseline * 1.25")
        .expect("the relative threshold's row");
    assert_eq!(row["verdict"], "FAIL");
    assert!(row["actual"].contains("baseline"), "{row:?}");

    // A normal build again: judged against run 1 (run 2 did not pass).
    let third = run_with_history(&normal, &tmp.path().join("3"), &history, &[])
        .output()
        .expect("run 3");
    assert_eq!(third.status.code(), Some(0), "{}", describe(&third));
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("3/summary.json")).expect("summary.json"),
    )
    .expect("json");
    let first_id: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("1/summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(
        doc["baseline"].as_str(),
        Some(format!("run {}", first_id["run_id"].as_str().expect("id")).as_str()),
        "the baseline is the last passing run"
    );
    assert_eq!(doc["thresholds"][0]["verdict"], "pass");

    // A --baseline that is neither a run folder nor a run id is a usage error, before
    // any load.
    let named = run_with_history(
        &normal,
        &tmp.path().join("4"),
        &history,
        &["--baseline", "no-such-run"],
    )
    .output()
    .expect("run 4");
    assert_eq!(named.status.code(), Some(2), "{}", describe(&named));
}

#[test]
fn a_required_baseline_that_is_missing_fails_and_an_optional_one_does_not() {
    let server = TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)));
    let tmp = temp_dir("baseline-required");
    let load = "users = 10\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 50\n";
    let journey = "[[journey]]\nname = \"browse\"\npath = \"/products\"\n";
    for (required, code) in [(false, 0), (true, 1)] {
        let text = format!(
            "thresholds = [\"test.requests >= baseline\"]\n{}\n[baseline]\nrequired = {required}\nruns = 3\n",
            scenario(&server.url(), load, journey)
        );
        let path = tmp.path().join(format!("r-{required}.toml"));
        std::fs::write(&path, text).expect("write");
        let out = run_with_history(
            &path,
            &tmp.path().join(format!("out-{required}")),
            &tmp.path().join(format!("h-{required}.sqlite")),
            &[],
        )
        .output()
        .expect("run");
        assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
    }
    // Named with --baseline (a run folder), the required baseline exists: it passes.
    let out = run_with_history(
        &tmp.path().join("r-true.toml"),
        &tmp.path().join("out-named"),
        &tmp.path().join("h-true.sqlite"),
        &[
            "--baseline",
            &tmp.path().join("out-false").display().to_string(),
        ],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out-named/summary.json")).expect("summary"),
    )
    .expect("json");
    assert!(
        doc["baseline"]
            .as_str()
            .is_some_and(|b| b.contains("(folder ")),
        "{}",
        doc["baseline"]
    );
    assert_eq!(doc["thresholds"][0]["baseline"].as_f64(), Some(10.0));

    // A baseline on something the summary does not hold is refused by key.
    let text = format!(
        "thresholds = [\"lost_orders <= baseline\"]\n{}",
        scenario(&server.url(), load, journey)
    );
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, text).expect("write");
    let out = loadgen()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("validate");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:1: key `thresholds[0]`") && stderr.contains("baseline"),
        "{stderr}"
    );
}
