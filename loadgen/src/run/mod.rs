//! `loadgen run`: for each selected mode, start the target, wait until it is ready,
//! run the users (in this process, or in several `loadgen shard` processes when
//! one process cannot hold their connections), merge what they measured, stop the
//! target, and write the run folder after every mode so a failure later keeps what
//! was measured. Ctrl-C stops the load, writes the folder and reports
//! `interrupted`. Decides nothing about exit codes: `main` maps the result.

pub mod progress;

use crate::engine::shards::{self, ShardSpec, Shards};
use crate::engine::snapshot::Message;
use crate::engine::timeline::ModeData;
use crate::engine::{self, EnginePlan};
use crate::limits;
use crate::observe::chaos::{ChaosRun, ServerControl};
use crate::observe::events::{EventLog, EventSink};
use crate::observe::watcher::Watcher;
use crate::plan::arrivals::{Profile, Shard};
use crate::plan::chaos;
use crate::plan::scenario::{Loaded, Mode};
use crate::plan::threshold::{Threshold, Verdict};
use crate::report;
use crate::run::progress::Progress;
use crate::runfolder;
use crate::sut::Server;
use crate::verdict::gate::{self, RunMetrics};
use crate::verdict::invariants::{self, AuditPaths};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub struct RunOptions {
    pub loaded: Loaded,
    pub out: Option<PathBuf>,
    pub modes: Vec<String>,
    pub quiet: bool,
    pub allow_remote: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad usage or scenario (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The harness could not do its job (exit 3).
    #[error("{0}")]
    Harness(String),
}

pub struct RunResult {
    pub dir: PathBuf,
    pub interrupted: bool,
    pub modes: Vec<ModeData>,
    /// The thresholds' verdicts (empty when the scenario has none).
    pub verdicts: Vec<Verdict>,
    /// The abort-on-fail threshold that stopped the run early, if one did.
    pub aborted_by: Option<String>,
    /// Why the report pages could not be rendered (the CSV files are written).
    pub report_error: Option<String>,
}

pub async fn run(opts: RunOptions) -> Result<RunResult, RunError> {
    let s = &opts.loaded.scenario;
    let modes: Vec<&Mode> = if opts.modes.is_empty() {
        s.target.modes.iter().collect()
    } else {
        let mut v = Vec::new();
        for name in &opts.modes {
            let m = s
                .target
                .modes
                .iter()
                .find(|m| &m.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = s.target.modes.iter().map(|m| m.name.as_str()).collect();
                    RunError::Usage(format!("--mode {name}: the scenario has modes {known:?}"))
                })?;
            v.push(m);
        }
        v
    };
    let dir = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&s.name)
            .join(runfolder::stamp(SystemTime::now()))
    });
    std::fs::create_dir_all(&dir)
        .map_err(|e| RunError::Harness(format!("cannot create {}: {e}", dir.display())))?;
    std::fs::write(dir.join("scenario.toml"), &opts.loaded.source)
        .map_err(|e| RunError::Harness(format!("cannot write {}: {e}", dir.display())))?;
    limits::raise_nofile();

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });
    let nonce = shards::unix_ns(SystemTime::now()) as u64 / 1_000_000;
    let mut done: Vec<ModeData> = Vec::new();
    let mut events = EventSink::default();
    let mut interrupted = false;
    let thresholds = gate::thresholds(s);
    let mut aborted_by = None;
    for mode in modes {
        let mut server = Server::start(mode, &dir, opts.allow_remote)
            .await
            .map_err(|e| {
                if e.is_usage() {
                    RunError::Usage(e.to_string())
                } else {
                    RunError::Harness(e.to_string())
                }
            })?;
        let mut stop = stop_rx.clone();
        let ready = tokio::select! {
            r = server.wait_ready(&s.target.ready_path, s.target.ready_timeout.0) => Some(r),
            _ = engine::stopped(&mut stop) => None,
        };
        match ready {
            None => {
                interrupted = true;
                server
                    .stop(&s.target.stop_signal, s.target.stop_timeout.0)
                    .await;
                break;
            }
            Some(Err(e)) => {
                server
                    .stop(&s.target.stop_signal, s.target.stop_timeout.0)
                    .await;
                write(&dir, &done, &events)?;
                return Err(RunError::Harness(e.to_string()));
            }
            Some(Ok(())) => {}
        }
        let data = run_mode(
            &opts,
            mode,
            &mut server,
            nonce,
            stop_rx.clone(),
            &mut events,
            &thresholds,
        )
        .await;
        let data = match data {
            Ok((data, breached)) => {
                aborted_by = breached;
                data
            }
            Err(e) => {
                server
                    .stop(&s.target.stop_signal, s.target.stop_timeout.0)
                    .await;
                write(&dir, &done, &events)?;
                return Err(e);
            }
        };
        interrupted = *stop_rx.borrow();
        server
            .stop(&s.target.stop_signal, s.target.stop_timeout.0)
            .await;
        done.push(data);
        write(&dir, &done, &events)?;
        if interrupted || aborted_by.is_some() {
            break;
        }
    }
    write(&dir, &done, &events)?;
    let verdicts = if s.thresholds.is_empty() {
        Vec::new()
    } else {
        let metrics = RunMetrics {
            modes: &done,
            events: &events,
        };
        let verdicts = gate::evaluate(&thresholds, &metrics);
        runfolder::write_thresholds(&dir, &verdicts)
            .map_err(|e| RunError::Harness(format!("cannot write {}: {e}", dir.display())))?;
        verdicts
    };
    let report_error = report::render(&dir).err().map(|e| e.to_string());
    Ok(RunResult {
        dir,
        interrupted,
        modes: done,
        verdicts,
        aborted_by,
        report_error,
    })
}

fn write(dir: &std::path::Path, modes: &[ModeData], events: &EventSink) -> Result<(), RunError> {
    runfolder::write_run(dir, modes, events)
        .map_err(|e| RunError::Harness(format!("cannot write {}: {e}", dir.display())))
}

async fn run_mode(
    opts: &RunOptions,
    mode: &Mode,
    server: &mut Server,
    nonce: u64,
    mut stop: watch::Receiver<bool>,
    sink: &mut EventSink,
    thresholds: &[Threshold],
) -> Result<(ModeData, Option<String>), RunError> {
    let s = &opts.loaded.scenario;
    let processes = s.load.users.div_ceil(s.load.users_per_process) as u32;
    let planned = Profile::from_scenario(&s.load.arrival)
        .schedule(s.load.users)
        .last()
        .copied()
        .unwrap_or_default();
    let progress = Progress::new(opts.quiet, &mode.name, planned, s.load.users);
    let steps: Vec<String> = s.journey.iter().map(|st| st.name.clone()).collect();
    // Every runtime thread of every process is one source of snapshots.
    let threads = engine::thread_count();
    let sources = processes as usize * threads;
    let mut data = ModeData::new(&mode.name, &mode.deploy_strategy, steps, sources);
    data.processes = processes;
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let (cpu0, _) = limits::self_usage();
    let (local_stop_tx, local_stop_rx) = watch::channel(false);
    let mut shard_procs = None;
    let mut local = None;
    // Second 0 of this mode, for the engines and for the event log alike.
    let lead = if processes > 1 {
        // Shards need a moment to start and build their schedules.
        Duration::from_millis(1500)
    } else {
        Duration::from_millis(50)
    };
    let t0 = Instant::now() + lead;
    let events = EventLog::new(t0.into_std(), &mode.name);
    let watcher = server
        .root_pid()
        .map(|pid| Watcher::start(pid, server.worker_set(), events.clone(), WATCH_EVERY));
    if processes > 1 {
        let t0_wall = SystemTime::now() + lead;
        data.started_at = t0_wall;
        let spec = ShardSpec {
            scenario: &opts.loaded.path,
            count: processes,
            addr: server.addr,
            host: &server.host,
            t0_unix_ns: shards::unix_ns(t0_wall),
            nonce,
            threads,
        };
        let w = Shards::spawn(&spec, tx.clone()).map_err(RunError::Harness)?;
        shard_procs = Some(w);
    } else {
        let plan = EnginePlan::new(s, Shard::WHOLE, server.addr, server.host.clone(), nonce)
            .map_err(RunError::Usage)?;
        data.started_at = SystemTime::now() + lead;
        local = Some(tokio::spawn(engine::run_threads(
            plan,
            threads,
            t0,
            local_stop_rx,
            tx.clone(),
        )));
    }
    drop(tx);
    let mut stopping = false;
    let mut breached: Option<String> = None;
    let timetable = chaos::plan(
        &chaos::rules_of(s),
        s.seed,
        &mode.name,
        s.load.max_duration.0,
    );
    let (chaos_stop_tx, mut chaos_stop_rx) = watch::channel(false);
    let chaos_result = {
        let chaos = ChaosRun {
            timetable: &timetable,
            events: &events,
            watcher: watcher.as_ref(),
            seed: s.seed,
            restart_delay: mode.restart_delay.0,
        };
        let chaos_stop = async move {
            let _ = chaos_stop_rx.wait_for(|v| *v).await;
        };
        let chaos_run = chaos.run(server, chaos_stop);
        tokio::pin!(chaos_run);
        let mut chaos_result = None;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => {
                        data.push(m);
                        let next = timetable.iter().find(|a| t0 + a.at > Instant::now());
                        progress.update(&data, events.last().as_ref(), next);
                        if data.all_finals_in() { break; }
                        if breached.is_none() && !stopping {
                            if let Some(t) = gate::breached_early(thresholds, &data, sink) {
                                breached = Some(t.text.clone());
                                stopping = true;
                                progress.message(&format!("threshold breached, stopping: {}", t.text));
                                let _ = local_stop_tx.send(true);
                                if let Some(w) = shard_procs.as_mut() { w.stop(); }
                            }
                        }
                    }
                    None => break,
                },
                r = &mut chaos_run, if chaos_result.is_none() => chaos_result = Some(r),
                _ = engine::stopped(&mut stop), if !stopping => {
                    stopping = true;
                    progress.message("stopping: writing what was measured");
                    let _ = local_stop_tx.send(true);
                    if let Some(w) = shard_procs.as_mut() { w.stop(); }
                }
            }
        }
        // The load is over: chaos stops too, resuming whatever it paused and finishing
        // a restart it began.
        let _ = chaos_stop_tx.send(true);
        match chaos_result {
            Some(r) => r,
            None => chaos_run.await,
        }
    };
    data.flush();
    progress.finish();
    if let Some(l) = local {
        let _ = l.await;
    }
    if let Some(w) = shard_procs {
        let failed = w.wait().await;
        if failed > 0 && !stopping {
            return Err(RunError::Harness(format!(
                "{failed} loadgen shard process(es) failed"
            )));
        }
    }
    let (cpu1, rss) = limits::self_usage();
    // The parent's own cost counts too: it merges and, in-process, generates.
    data.fin.cpu_s += cpu1 - cpu0;
    data.fin.peak_rss_kb += rss;
    if let Some(watcher) = &watcher {
        data.server_cost = Some(watcher.stop());
        data.set_live_workers(&watcher.live_per_second());
    }
    sink.extend(&events);
    chaos_result.map_err(|e| RunError::Harness(format!("mode {}: chaos: {e}", mode.name)))?;
    let interrupted = stopping && breached.is_none();
    if let (Some(paths), false) = (&s.invariants, interrupted) {
        let paths = AuditPaths {
            audit: paths.audit.clone(),
            order: paths.order.clone(),
            cart: paths.cart.clone(),
        };
        let base = format!("http://{}", server.host);
        let checked = invariants::check(&base, &paths, &data.fin.ledger).await;
        data.invariants = Some(checked.map_err(|e| e.to_string()));
    }
    Ok((data, breached))
}

/// How often the watcher looks at the server's processes.
const WATCH_EVERY: Duration = Duration::from_millis(20);
