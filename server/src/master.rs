//! The cluster master's process layer: binds the socket once, prepares the database,
//! writes the pidfile, then runs the loop that feeds the [`Supervisor`] with events
//! (signals, worker reports, timers) and carries out its actions (spawn, SIGTERM,
//! SIGKILL, timers, exit). It never serves HTTP. Decisions live in the supervisor;
//! this file only translates between them and the operating system, and logs.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::cli::ClusterConfig;
use crate::log_event;
use crate::signals::{MasterSignal, MasterSignals};
use crate::store::Store;
use crate::supervisor::{Action, Event, Role, Supervisor, WorkerId};
use crate::sys;
use crate::worker::{self, Report};

const ROLE: &str = "master";

/// A worker's own drain timeout exceeds the master's by this much, so the master's
/// SIGKILL at the drain timeout is what ends a stuck worker, and the worker's own
/// limit is only a backstop.
const WORKER_DRAIN_GRACE: Duration = Duration::from_secs(1);

pub fn run_cluster(cfg: ClusterConfig) -> anyhow::Result<ExitCode> {
    let nofile = sys::raise_nofile_limit().context("raising the open-file limit")?;
    let mut argv = std::env::args_os();
    // The path we were started with, not /proc/self/exe: a deploy swaps the file
    // (or symlink) behind it, and the next worker runs the new code.
    let program = PathBuf::from(argv.next().context("no argv[0]")?);
    let mut worker_args: Vec<OsString> = argv.collect();
    let worker_drain = cfg.drain_timeout + WORKER_DRAIN_GRACE;
    for arg in [
        "--mode".to_owned(),
        "worker".to_owned(),
        "--drain-timeout".to_owned(),
        format!("{}ms", worker_drain.as_millis()),
    ] {
        worker_args.push(arg.into());
    }
    let rt = sys::runtime(1).context("starting the event loop")?;
    let code = rt.block_on(async {
        let signals = MasterSignals::install(cfg.sigterm).context("installing signal handlers")?;
        // Create and seed the database once, before several workers open it.
        drop(
            Store::open(&cfg.serve.db, cfg.serve.seed)
                .with_context(|| format!("opening database {}", cfg.serve.db.display()))?,
        );
        let listener =
            sys::bind(cfg.listen).with_context(|| format!("listening on {}", cfg.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // Kept open (never accepted on) for as long as the master lives.
        let listener = listener.into_std().context("detaching the listener")?;
        let _pidfile = cfg
            .pidfile
            .as_deref()
            .map(sys::Pidfile::create)
            .transpose()
            .context("writing the pidfile")?;
        log_event!(
            ROLE,
            "listening on {addr} (master of {} workers started from {}; version {}, db {}, open-file limit {nofile})",
            cfg.workers,
            program.display(),
            cfg.serve.version_tag,
            cfg.serve.db.display()
        );
        let mut master = Master::new(&cfg, program, worker_args, listener.as_raw_fd());
        Ok::<_, anyhow::Error>(master.run(signals).await)
    })?;
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(code)
}

struct Master {
    program: PathBuf,
    worker_args: Vec<OsString>,
    listener: RawFd,
    boot_timeout: Duration,
    drain_timeout: Duration,
    target: usize,
    pids: HashMap<WorkerId, (u32, Instant)>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    timers_tx: mpsc::UnboundedSender<Event>,
    timers: mpsc::UnboundedReceiver<Event>,
}

impl Master {
    fn new(
        cfg: &ClusterConfig,
        program: PathBuf,
        worker_args: Vec<OsString>,
        listener: RawFd,
    ) -> Master {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (timers_tx, timers) = mpsc::unbounded_channel();
        Master {
            program,
            worker_args,
            listener,
            boot_timeout: cfg.boot_timeout,
            drain_timeout: cfg.drain_timeout,
            target: usize::from(cfg.workers),
            pids: HashMap::new(),
            reports_tx,
            reports,
            timers_tx,
            timers,
        }
    }

    async fn run(&mut self, mut signals: MasterSignals) -> ExitCode {
        let (mut sup, first) = Supervisor::new(self.target);
        let mut actions: VecDeque<Action> = first.into();
        loop {
            while let Some(action) = actions.pop_front() {
                match self.execute(action) {
                    Ok(Some(code)) => return ExitCode::from(code),
                    Ok(None) => {}
                    Err(event) => actions.extend(sup.handle(event, Instant::now())),
                }
            }
            let event = tokio::select! {
                signal = signals.recv() => match signal {
                    MasterSignal::Restart(name) => {
                        log_event!(ROLE, "{name} received: rolling restart");
                        Event::Restart
                    }
                    MasterSignal::Stop(name) => {
                        log_event!(ROLE, "{name} received: graceful stop");
                        Event::Stop
                    }
                },
                Some(report) = self.reports.recv() => {
                    self.log_report(&report, &sup);
                    report.event()
                }
                Some(event) = self.timers.recv() => event,
            };
            actions.extend(sup.handle(event, Instant::now()));
        }
    }

    /// Carries out one action: `Ok(Some(code))` to exit, `Err(event)` when the action
    /// failed in a way the supervisor must hear about (a worker that could not start).
    fn execute(&mut self, action: Action) -> Result<Option<u8>, Event> {
        match action {
            Action::Spawn(id) => {
                let spawned = worker::spawn(
                    id,
                    &self.program,
                    &self.worker_args,
                    self.listener,
                    self.reports_tx.clone(),
                );
                match spawned {
                    Ok(pid) => {
                        log_event!(ROLE, "worker #{id} pid {pid} spawned");
                        self.pids.insert(id, (pid, Instant::now()));
                        self.after(self.boot_timeout, Event::BootTimedOut(id));
                    }
                    Err(error) => {
                        log_event!(
                            ROLE,
                            "worker #{id} could not start {}: {error}",
                            self.program.display()
                        );
                        return Err(Event::Exited { id, clean: false });
                    }
                }
            }
            Action::Drain(id) => {
                if let Some(pid) = self.signal(id, Signal::SIGTERM) {
                    log_event!(ROLE, "worker #{id} pid {pid} draining (SIGTERM)");
                }
                self.after(self.drain_timeout, Event::DrainTimedOut(id));
            }
            Action::Kill(id) => {
                if let Some(pid) = self.signal(id, Signal::SIGKILL) {
                    log_event!(ROLE, "worker #{id} pid {pid} killed (SIGKILL)");
                }
            }
            Action::RespawnAfter(delay) => self.after(delay, Event::RespawnDue),
            Action::Exit(code) => return Ok(Some(code)),
            Action::Log(text) => log_event!(ROLE, "{text}"),
        }
        Ok(None)
    }

    fn signal(&self, id: WorkerId, signal: Signal) -> Option<u32> {
        let &(pid, _) = self.pids.get(&id)?;
        let raw = i32::try_from(pid).ok()?;
        kill(Pid::from_raw(raw), signal).ok()?;
        Some(pid)
    }

    fn after(&self, delay: Duration, event: Event) {
        let timers = self.timers_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = timers.send(event);
        });
    }

    fn log_report(&mut self, report: &Report, sup: &Supervisor) {
        match report {
            Report::Ready(id) => {
                if let Some((pid, spawned)) = self.pids.get(id) {
                    log_event!(
                        ROLE,
                        "worker #{id} pid {pid} ready ({} ms after spawn); {} of {} workers were ready before it ({:?})",
                        spawned.elapsed().as_millis(),
                        sup.ready_count(),
                        sup.worker_count(),
                        sup.phase()
                    );
                }
            }
            Report::Exited(id, status) => {
                let pid = self.pids.remove(id).map_or(0, |(pid, _)| pid);
                let how = match sup.role(*id) {
                    Some(Role::Leaving) => "as told",
                    _ => "unexpectedly",
                };
                log_event!(
                    ROLE,
                    "worker #{id} pid {pid} exited {how}: {}",
                    worker::describe(status)
                );
            }
        }
    }
}
