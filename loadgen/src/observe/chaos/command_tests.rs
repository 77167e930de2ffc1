//! Deploys by command against real processes: a command that succeeds, one that fails
//! (the run must fail unless the rule is optional), one that overruns its limit (killed
//! by its process group), and a kill due while a long command runs (it must fire on
//! time, not after the command).

use std::time::Duration;

use nix::sys::signal::Signal;

use super::tests::{Proc, at};
use super::*;
use crate::observe::events::{EventLog, Kind};
use crate::observe::watcher::WorkerSet;
use crate::plan::chaos::{ActionKind, DeployBy, DeployCommand};

fn deploy_by(argv: &[&str], timeout_ms: u64) -> ActionKind {
    ActionKind::Deploy {
        by: DeployBy::Command(DeployCommand {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            timeout: Duration::from_millis(timeout_ms),
        }),
        release: Default::default(),
    }
}

/// Runs `timetable` against a lone `sleep`; the log and the report.
async fn run(timetable: &[PlannedAction]) -> (EventLog, ChaosReport) {
    let mut server = Proc::spawn(vec!["sleep", "30"], WorkerSet::Itself, false);
    let events = EventLog::new(Instant::now(), "test");
    let chaos = ChaosRun {
        timetable,
        events: &events,
        watcher: None,
        seed: 1,
        restart_delay: Duration::ZERO,
    };
    let report = chaos
        .run(&mut server, std::future::pending())
        .await
        .expect("chaos run");
    (events, report)
}

#[tokio::test]
async fn a_command_deploy_logs_its_start_and_end_and_a_kill_during_it_fires_on_time() {
    let timetable = [
        at(10, deploy_by(&["sh", "-c", "sleep 1"], 5_000)),
        at(
            200,
            ActionKind::Kill {
                signal: Signal::SIGKILL,
            },
        ),
    ];
    let (events, report) = run(&timetable).await;
    let log = events.snapshot();
    let kinds: Vec<Kind> = log.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [Kind::Deploy, Kind::Kill, Kind::DeployEnded],
        "{log:?}"
    );
    assert!(report.unapplied.is_empty(), "{:?}", report.unapplied);
    assert_eq!(
        log[0].pid, log[2].pid,
        "start and end name the command's PID"
    );
    assert!(log[0].detail.contains("sh -c sleep 1"), "{}", log[0].detail);
    assert!(
        log[2].detail.starts_with("exit code 0 after 1."),
        "{}",
        log[2].detail
    );
    assert!(
        log[1].t < Duration::from_millis(900),
        "the kill waited for the command: {log:?}"
    );
    assert!(log[2].t >= Duration::from_millis(1000), "{log:?}");
}

#[tokio::test]
async fn a_failing_command_fails_the_run_unless_optional() {
    let failing = deploy_by(&["sh", "-c", "echo no such app >&2; exit 3"], 5_000);
    let (events, report) = run(&[at(0, failing.clone())]).await;
    assert_eq!(report.unapplied.len(), 1, "{events:?}");
    assert!(
        report.unapplied[0].contains("code 3") && report.unapplied[0].contains("no such app"),
        "{:?}",
        report.unapplied
    );
    let ended = events.snapshot();
    assert_eq!(ended.last().map(|e| e.kind), Some(Kind::DeployEnded));

    let mut optional = at(0, failing);
    optional.optional = true;
    let (_, report) = run(&[optional]).await;
    assert!(report.unapplied.is_empty(), "{:?}", report.unapplied);

    let missing = deploy_by(&["/nonexistent/deployer"], 5_000);
    let (events, report) = run(&[at(0, missing)]).await;
    assert_eq!(report.unapplied.len(), 1, "{:?}", events.snapshot());
    assert!(
        report.unapplied[0].contains("cannot start"),
        "{:?}",
        report.unapplied
    );
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_with_its_group_and_fails() {
    // The shell's own child (a sleep) must die with it: the group is killed.
    let (events, report) = run(&[at(0, deploy_by(&["sh", "-c", "sleep 30 & wait"], 300))]).await;
    assert_eq!(report.unapplied.len(), 1, "{:?}", events.snapshot());
    let log = events.snapshot();
    let ended = log
        .iter()
        .find(|e| e.kind == Kind::DeployEnded)
        .expect("end");
    assert!(ended.detail.contains("timeout of 0.3s"), "{}", ended.detail);
    assert!(ended.t < Duration::from_secs(5), "{log:?}");
    // Nothing is left running in the command's process group (a zombie waiting for
    // whoever adopted it is dead).
    let group = ended.pid.to_string();
    let running = || -> Vec<String> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                let fields: Vec<&str> = after.split_whitespace().collect();
                fields.get(2) == Some(&group.as_str()) && fields.first() != Some(&"Z")
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !running().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        running().is_empty(),
        "left in group {group}: {:?}",
        running()
    );
}
