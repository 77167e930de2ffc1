//! The CI gate: thresholds are judged against what the run measured, printed as a
//! table, written to thresholds.csv, and turned into the exit status. A server that
//! drops requests on a deploy fails the gate by name; a threshold the scenario cannot
//! evaluate is refused before any load runs.

mod common;

use common::*;

fn gate_scenario(thresholds: &str) -> String {
    let bin = shop_server();
    format!(
        r#"name = "gate"
seed = 3
thresholds = [{thresholds}]

[target]
ready_timeout = "30s"

[[target.modes]]
name = "single"
command = ["{bin}", "--mode", "single", "--listen", "127.0.0.1:{{port}}", "--db", "{{db}}", "--products", "20", "--stock", "100000", "--checkout-io", "5ms"]
workers = "itself"
supervise = true
restart_delay = "300ms"

[load]
# A functional test on a busy machine (debug build, tests in parallel): the
# generator-lateness check has a test of its own.
late_after = "1s"
users = 300
timeout = "10s"
[load.arrival]
peak_rate = 100

[[chaos]]
action = "deploy"
at = "1.5s"
{SHOP_JOURNEY}"#,
        bin = bin.display()
    )
}

#[test]
fn a_server_that_drops_requests_on_a_deploy_fails_the_gate_by_name() {
    let thresholds = r#""dropped == 0", "lost_orders == 0", "single.p50 < 10s""#;
    let run = run_scenario("gate-fails", &gate_scenario(thresholds), &[]);
    assert_eq!(
        run.code(),
        1,
        "a breached threshold exits 1\n{}",
        run.describe()
    );
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("single.dropped == 0"))
        .unwrap_or_else(|| {
            panic!(
                "no table row for the breached threshold\n{}",
                run.describe()
            )
        });
    assert!(line.ends_with("FAIL"), "{line}");
    assert!(
        stderr.contains("thresholds breached: single.dropped == 0"),
        "stderr names the breach: {stderr}"
    );

    let rows = run.csv("thresholds.csv");
    let verdicts: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["threshold"].as_str(), r["verdict"].as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("single.dropped == 0", "FAIL"),
            ("single.lost_orders == 0", "pass"),
            ("single.p50 < 10s", "pass"),
        ],
        "{}",
        run.describe()
    );
    // The table's actual value is the run's own count.
    let dropped = num(&run.summary("single", "all"), "dropped");
    assert!(dropped > 0.0);
    assert_eq!(rows[0]["actual"], format!("{dropped}"));
}

#[test]
fn an_abort_on_fail_threshold_stops_the_run_early() {
    let thresholds = r#"{ check = "single.dropped == 0", abort_on_fail = true }"#;
    let run = run_scenario("gate-aborts", &gate_scenario(thresholds), &[]);
    assert_eq!(run.code(), 1, "{}", run.describe());
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert!(
        stderr.contains("stopped early: threshold `single.dropped == 0`"),
        "{stderr}"
    );
    let modes = run.csv("modes.csv");
    let started = num(&modes[0], "users_started");
    assert!(started < 300.0, "the run went on to the end: {modes:?}");
}

#[test]
fn validate_refuses_a_threshold_on_an_unknown_metric_or_mode() {
    let tmp = temp_dir("gate-validate");
    for (threshold, culprit) in [
        (
            "\"single.dropped_requests == 0\"",
            "unknown metric `dropped_requests`",
        ),
        ("\"canary.dropped == 0\"", "unknown mode `canary`"),
    ] {
        let path = tmp.path().join("bad.toml");
        std::fs::write(&path, gate_scenario(threshold)).expect("write scenario");
        let out = loadgen()
            .arg("validate")
            .arg(&path)
            .output()
            .expect("run loadgen");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(culprit), "{stderr}");
        assert!(
            stderr.contains("bad.toml:3: key `thresholds[0]`"),
            "{stderr}"
        );
    }
}
