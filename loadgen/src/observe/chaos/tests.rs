//! Chaos against real processes: a shell "master" with sleeping children stands in for a
//! clustered server, a lone `sleep` for a single process the harness supervises.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

use super::*;
use crate::observe::events::{EventLog, Kind};
use crate::observe::procs;
use crate::observe::watcher::WorkerSet;
use crate::plan::chaos::ActionKind;

pub(super) struct Proc {
    child: Option<Child>,
    set: WorkerSet,
    supervised: bool,
    command: Vec<&'static str>,
}

impl Proc {
    pub(super) fn spawn(command: Vec<&'static str>, set: WorkerSet, supervised: bool) -> Proc {
        let child = spawn(&command);
        Proc {
            child: Some(child),
            set,
            supervised,
            command,
        }
    }
}

fn spawn(command: &[&str]) -> Child {
    Command::new(command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn test process")
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(pid) = self.root_pid() {
            for kid in procs::children(pid).unwrap_or_default() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(kid), Signal::SIGKILL);
            }
        }
    }
}

impl ServerControl for Proc {
    fn root_pid(&self) -> Result<i32, String> {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .map(|p| p as i32)
            .ok_or_else(|| "down".to_string())
    }
    fn worker_set(&self) -> WorkerSet {
        self.set.clone()
    }
    fn install(&mut self, _release: &crate::plan::chaos::Release) -> Result<String, String> {
        Err("a test process has no release to install".into())
    }
    fn supervised(&self) -> bool {
        self.supervised
    }
    async fn wait_exit(&mut self) -> Result<String, ChaosError> {
        let child = self.child.as_mut().ok_or(ChaosError::Wait {
            pid: 0,
            reason: "no process".into(),
        })?;
        let status = child.wait().await.map_err(|e| ChaosError::Wait {
            pid: 0,
            reason: e.to_string(),
        })?;
        Ok(format!("{status}"))
    }
    async fn restart(&mut self) -> Result<i32, ChaosError> {
        let child = spawn(&self.command);
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        self.child = Some(child);
        Ok(pid)
    }
}

/// Runs `timetable` against `server` until it is done or `stop` resolves; the log.
pub(super) async fn run_chaos(
    server: &mut Proc,
    timetable: &[PlannedAction],
    seed: u64,
    restart_delay: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> EventLog {
    let events = EventLog::new(Instant::now(), "test");
    let chaos = ChaosRun {
        timetable,
        events: &events,
        watcher: None,
        seed,
        restart_delay,
    };
    chaos.run(server, stop).await.expect("chaos run");
    events
}

pub(super) fn at(ms: u64, kind: ActionKind) -> PlannedAction {
    PlannedAction {
        at: Duration::from_millis(ms),
        kind,
        optional: false,
    }
}

#[tokio::test]
async fn kills_and_pauses_hit_live_workers_and_paused_ones_are_resumed() {
    let mut server = Proc::spawn(
        vec!["sh", "-c", "sleep 30 & sleep 30 & sleep 30 & wait"],
        WorkerSet::ALL_CHILDREN,
        false,
    );
    let root = server.root_pid().expect("root pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while procs::children(root).map(|k| k.len()).unwrap_or(0) < 3 {
        assert!(
            Instant::now() < deadline,
            "the shell never forked its children"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let workers = procs::children(root).expect("children");
    let timetable = [
        at(
            50,
            ActionKind::Kill {
                signal: Signal::SIGKILL,
            },
        ),
        at(
            100,
            ActionKind::Pause {
                duration: Duration::from_millis(200),
            },
        ),
    ];
    let events = run_chaos(
        &mut server,
        &timetable,
        9,
        Duration::ZERO,
        std::future::pending(),
    )
    .await;

    let log = events.snapshot();
    let kinds: Vec<Kind> = log.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Kind::Kill, Kind::Pause, Kind::Resume], "{log:?}");
    assert!(
        workers.contains(&(log[0].pid as i32)),
        "killed {} is no worker of {workers:?}",
        log[0].pid
    );
    assert_eq!(
        log[1].pid, log[2].pid,
        "resumed another process than the paused one"
    );
    assert!(log[2].t >= log[1].t + Duration::from_millis(200), "{log:?}");
    let paused = procs::read_stat(log[1].pid as i32)
        .expect("stat")
        .expect("paused worker lives");
    assert_ne!(paused.state, 'T', "the paused worker was left stopped");
}

#[tokio::test]
async fn a_stop_mid_pause_still_resumes_the_worker() {
    let mut server = Proc::spawn(vec!["sleep", "30"], WorkerSet::Itself, false);
    let timetable = [at(
        10,
        ActionKind::Pause {
            duration: Duration::from_secs(60),
        },
    )];
    let events = run_chaos(
        &mut server,
        &timetable,
        1,
        Duration::ZERO,
        tokio::time::sleep(Duration::from_millis(200)),
    )
    .await;
    let pid = server.root_pid().expect("pid");
    let stat = procs::read_stat(pid).expect("stat").expect("process lives");
    assert_ne!(stat.state, 'T', "left stopped: {:?}", events.snapshot());
    assert_eq!(events.last().map(|e| e.kind), Some(Kind::Resume));
}

#[tokio::test]
async fn the_naive_supervisor_restarts_a_single_process_and_logs_the_downtime() {
    let mut server = Proc::spawn(vec!["sleep", "30"], WorkerSet::Itself, true);
    let first = server.root_pid().expect("pid");
    let timetable = [
        at(
            20,
            ActionKind::Deploy {
                release: Default::default(),
                by: crate::plan::chaos::DeployBy::Signal(Signal::SIGTERM),
            },
        ),
        at(
            40,
            ActionKind::Kill {
                signal: Signal::SIGKILL,
            },
        ),
    ];
    let events = run_chaos(
        &mut server,
        &timetable,
        1,
        Duration::from_millis(30),
        std::future::pending(),
    )
    .await;
    let log = events.snapshot();
    let kinds: Vec<Kind> = log.iter().map(|e| e.kind).collect();
    use Kind::*;
    assert_eq!(
        kinds,
        [
            Deploy,
            ServerRestarted,
            Downtime,
            Kill,
            ServerRestarted,
            Downtime
        ],
        "{log:?}"
    );
    assert_eq!(log[0].pid as i32, first);
    assert_eq!(
        log[3].pid, log[1].pid,
        "the kill must hit the restarted process"
    );
    assert_ne!(server.root_pid(), Ok(first));
    for downtime in log.iter().filter(|e| e.kind == Downtime) {
        let ms: u64 = downtime.detail.parse().expect("downtime in ms");
        assert!(
            ms >= 30,
            "downtime {ms} ms is shorter than the restart delay"
        );
    }
}
