//! The cluster master's process layer: binds the socket once, prepares the database
//! (and starts the WAL checkpointer, [`crate::checkpoint`], for all workers), writes
//! the pidfile, opens the executable of the first generation, then runs the loop
//! that feeds the [`Supervisor`] with events (signals, worker reports, timers,
//! generations opened) and carries out its actions (open or close a generation's
//! executable, spawn, SIGTERM, SIGKILL, timers, exit). It never serves HTTP.
//! Decisions live in the supervisor; this file only translates between them and the
//! operating system, and logs.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::checkpoint;
use crate::cli::ClusterConfig;
use crate::exe::{self, Executable};
use crate::log_event;
use crate::signals::{MasterSignal, MasterSignals};
use crate::store::Store;
use crate::supervisor::{self, Action, Event, Generation, Role, Supervisor, WorkerId};
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
    let argv0 = argv.next().context("no argv[0]")?;
    // The path we were started with, not /proc/self/exe: a deploy swaps the file
    // (or symlink, or wrapper script) behind it, and the next generation runs the
    // new code. A bare name was found through PATH: look it up the same way.
    let start_path = exe::start_path(&argv0).unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
    let first = Executable::open(&start_path)
        .or_else(|_| Executable::open(Path::new("/proc/self/exe")))
        .context("opening the executable of the first generation")?;
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
        // Create and seed the database once, before several workers open it; then
        // keep the connection to checkpoint the WAL for them.
        let store = Store::open(&cfg.serve.db, cfg.serve.seed)
            .with_context(|| format!("opening database {}", cfg.serve.db.display()))?;
        checkpoint::spawn(store, &cfg.serve.db, cfg.wal_checkpoint)
            .context("starting the WAL checkpointer")?;
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
            "listening on {addr} (master of {} workers; start path {}, generation 1: {}; version {}, db {}, open-file limit {nofile})",
            cfg.workers,
            start_path.display(),
            first.describe(),
            cfg.serve.version_tag,
            cfg.serve.db.display()
        );
        let mut master = Master::new(&cfg, start_path, worker_args, listener.as_raw_fd());
        Ok::<_, anyhow::Error>(master.run(signals, first).await)
    })?;
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(code)
}

/// A worker process the master started.
struct Spawned {
    pid: u32,
    at: Instant,
    generation: Generation,
    binary: Rc<str>,
}

/// An open generation: its executable and how log lines name it.
struct Loaded {
    exe: Executable,
    binary: Rc<str>,
}

struct Master {
    start_path: PathBuf,
    worker_args: Vec<OsString>,
    listener: RawFd,
    /// A new worker's boot timer: `--boot-time` plus `--boot-timeout`.
    boot_limit: Duration,
    drain_timeout: Duration,
    config: supervisor::Config,
    generations: HashMap<Generation, Loaded>,
    pids: HashMap<WorkerId, Spawned>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    timers_tx: mpsc::UnboundedSender<Event>,
    timers: mpsc::UnboundedReceiver<Event>,
}

impl Master {
    fn new(
        cfg: &ClusterConfig,
        start_path: PathBuf,
        worker_args: Vec<OsString>,
        listener: RawFd,
    ) -> Master {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (timers_tx, timers) = mpsc::unbounded_channel();
        Master {
            start_path,
            worker_args,
            listener,
            boot_limit: cfg.serve.boot_time + cfg.boot_timeout,
            drain_timeout: cfg.drain_timeout,
            config: supervisor::Config {
                target: usize::from(cfg.workers),
                settle: cfg.settle,
            },
            generations: HashMap::new(),
            pids: HashMap::new(),
            reports_tx,
            reports,
            timers_tx,
            timers,
        }
    }

    async fn run(&mut self, mut signals: MasterSignals, first: Executable) -> ExitCode {
        let binary: Rc<str> = first.describe().into();
        let (mut sup, start) = Supervisor::new(self.config, binary.to_string());
        self.generations.insert(1, Loaded { exe: first, binary });
        let mut actions: VecDeque<Action> = start.into();
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

    /// Carries out one action: `Ok(Some(code))` to exit, `Err(event)` when the
    /// supervisor must hear the outcome at once (a generation opened or not, a worker
    /// that could not start).
    fn execute(&mut self, action: Action) -> Result<Option<u8>, Event> {
        match action {
            Action::Load(generation) => return Err(self.load(generation)),
            Action::Unload(generation) => {
                if let Some(loaded) = self.generations.remove(&generation) {
                    log_event!(
                        ROLE,
                        "generation {generation} closed ({}): no worker starts from it again",
                        loaded.binary
                    );
                }
            }
            Action::Spawn { id, generation } => self.spawn(id, generation)?,
            Action::Drain(id) => {
                if let Some(w) = self.signal(id, Signal::SIGTERM) {
                    log_event!(
                        ROLE,
                        "worker #{id} pid {} draining (SIGTERM), generation {}: {}",
                        w.pid,
                        w.generation,
                        w.binary
                    );
                }
                self.after(self.drain_timeout, Event::DrainTimedOut(id));
            }
            Action::Kill(id) => {
                if let Some(w) = self.signal(id, Signal::SIGKILL) {
                    log_event!(
                        ROLE,
                        "worker #{id} pid {} killed (SIGKILL), generation {}: {}",
                        w.pid,
                        w.generation,
                        w.binary
                    );
                }
            }
            Action::RespawnAfter(delay) => self.after(delay, Event::RespawnDue),
            Action::SettleAfter(id, delay) => self.after(delay, Event::Settled(id)),
            Action::Exit(code) => return Ok(Some(code)),
            Action::Log(text) => log_event!(ROLE, "{text}"),
        }
        Ok(None)
    }

    /// Opens what the start path points at now as `generation`.
    fn load(&mut self, generation: Generation) -> Event {
        match Executable::open(&self.start_path) {
            Ok(exe) => {
                let binary: Rc<str> = exe.describe().into();
                log_event!(
                    ROLE,
                    "generation {generation} opened: {} (start path {})",
                    binary,
                    self.start_path.display()
                );
                self.generations.insert(
                    generation,
                    Loaded {
                        exe,
                        binary: Rc::clone(&binary),
                    },
                );
                Event::Loaded {
                    generation,
                    binary: binary.to_string(),
                }
            }
            Err(error) => Event::LoadFailed {
                generation,
                error: error.to_string(),
            },
        }
    }

    fn spawn(&mut self, id: WorkerId, generation: Generation) -> Result<(), Event> {
        let failed = Event::Exited {
            id,
            clean: false,
            sigkill: false,
        };
        let Some(loaded) = self.generations.get(&generation) else {
            log_event!(
                ROLE,
                "worker #{id} could not start: generation {generation} is not open"
            );
            return Err(failed);
        };
        let spawned = worker::spawn(
            id,
            &loaded.exe,
            self.start_path.as_os_str(),
            &self.worker_args,
            self.listener,
            self.reports_tx.clone(),
        );
        match spawned {
            Ok(pid) => {
                log_event!(
                    ROLE,
                    "worker #{id} pid {pid} spawned (generation {generation}: {})",
                    loaded.binary
                );
                let binary = Rc::clone(&loaded.binary);
                self.pids.insert(
                    id,
                    Spawned {
                        pid,
                        at: Instant::now(),
                        generation,
                        binary,
                    },
                );
                self.after(self.boot_limit, Event::BootTimedOut(id));
                Ok(())
            }
            Err(error) => {
                log_event!(
                    ROLE,
                    "worker #{id} could not start generation {generation} ({}): {error}",
                    loaded.binary
                );
                Err(failed)
            }
        }
    }

    /// Signals worker `id`; returns what is known of it when the signal was sent.
    fn signal(&self, id: WorkerId, signal: Signal) -> Option<&Spawned> {
        let spawned = self.pids.get(&id)?;
        let raw = i32::try_from(spawned.pid).ok()?;
        kill(Pid::from_raw(raw), signal).ok()?;
        Some(spawned)
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
                if let Some(w) = self.pids.get(id) {
                    log_event!(
                        ROLE,
                        "worker #{id} pid {} ready (generation {}: {}, {} ms after spawn); {} of {} workers were ready before it ({:?})",
                        w.pid,
                        w.generation,
                        w.binary,
                        w.at.elapsed().as_millis(),
                        sup.ready_count(),
                        sup.worker_count(),
                        sup.phase()
                    );
                }
            }
            Report::Exited(id, status) => {
                let how = match sup.role(*id) {
                    Some(Role::Leaving) => "as told",
                    _ => "unexpectedly",
                };
                match self.pids.remove(id) {
                    Some(w) => log_event!(
                        ROLE,
                        "worker #{id} pid {} exited {how}: {} (generation {}: {})",
                        w.pid,
                        worker::describe(status),
                        w.generation,
                        w.binary
                    ),
                    None => log_event!(
                        ROLE,
                        "worker #{id} exited {how}: {}",
                        worker::describe(status)
                    ),
                }
            }
        }
    }
}
