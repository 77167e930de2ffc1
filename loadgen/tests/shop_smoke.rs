//! `loadgen run scenarios/smoke.toml` against the real shop-server, built from this
//! workspace next to the loadgen binary under test (the scenario starts
//! `{bin_dir}/shop-server`): both modes complete every journey and every file of
//! the run folder is written with the contract's columns.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn build_shop_server(bin_dir: &Path) {
    let target_dir = bin_dir.parent().expect("target dir above the profile dir");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", "shop-server", "--bin", "shop-server"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if bin_dir.ends_with("release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo build -p shop-server");
    assert!(
        out.status.success(),
        "cargo build -p shop-server failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bin_dir.join("shop-server").exists(),
        "shop-server next to loadgen in {}",
        bin_dir.display()
    );
}

#[test]
fn smoke_scenario_against_shop_server_completes_and_writes_every_file() {
    let loadgen_bin = Path::new(env!("CARGO_BIN_EXE_loadgen"));
    build_shop_server(loadgen_bin.parent().expect("bin dir"));
    let tmp = temp_dir("smoke");
    let dir = tmp.path().join("run");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let output = loadgen()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&dir)
        .arg("--quiet")
        .output()
        .expect("run loadgen");
    let run = Run { output, dir, tmp };
    assert_eq!(run.code(), 0, "{}", run.describe());

    for f in [
        "scenario.toml",
        "modes.csv",
        "summary.csv",
        "timeseries.csv",
        "workers.csv",
        "events.csv",
        "latency-single.hgrm",
        "latency-cluster.hgrm",
    ] {
        assert!(run.dir.join(f).exists(), "{f} missing\n{}", run.describe());
    }
    let copy = std::fs::read_to_string(run.dir.join("scenario.toml")).expect("scenario copy");
    assert_eq!(copy, std::fs::read_to_string(&scenario).expect("scenario"));

    for mode in ["single", "cluster"] {
        let all = run.summary(mode, "all");
        // 300 users x (browse, 2 views, cart, add, checkout), 409 at checkout is ok.
        assert_eq!(num(&all, "requests"), 1800.0, "{mode}: {all:?}");
        assert_eq!(num(&all, "ok"), 1800.0, "{mode}: {all:?}");
        assert_eq!(num(&all, "dropped"), 0.0, "{mode}: {all:?}");
        assert_eq!(num(&run.summary(mode, "checkout"), "requests"), 300.0);
        let m = run
            .csv("modes.csv")
            .into_iter()
            .find(|r| r["mode"] == mode)
            .unwrap_or_else(|| panic!("modes.csv row {mode}"));
        assert_eq!(m["users_completed"], "300", "{m:?}");
        let ts: f64 = run
            .csv("timeseries.csv")
            .iter()
            .filter(|r| r["mode"] == mode)
            .map(|r| num(r, "completed"))
            .sum();
        assert_eq!(ts, 1800.0, "{mode}: timeseries completed");
        let workers: Vec<_> = run
            .csv("workers.csv")
            .into_iter()
            .filter(|r| r["mode"] == mode)
            .collect();
        let answers: f64 = workers.iter().map(|r| num(r, "responses")).sum();
        assert_eq!(answers, 1800.0, "{mode}: every answer named its worker");
        assert!(
            workers
                .iter()
                .all(|r| r["worker_pid"] != "0" && r["version"] != "unknown"),
            "{workers:?}"
        );
    }
}
