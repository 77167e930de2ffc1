//! `loadgen run`: for each selected mode, start the target, wait until it is ready,
//! run the users (in this process, or in several `loadgen worker` processes when
//! one process cannot hold their connections), merge what they measured, stop the
//! target, and write the run folder after every mode so a failure later keeps what
//! was measured. Ctrl-C stops the load, writes the folder and reports
//! `interrupted`. Decides nothing about exit codes: `main` maps the result.

use crate::arrivals::{Profile, Shard};
use crate::engine::{self, EnginePlan};
use crate::events::EventSink;
use crate::limits;
use crate::output;
use crate::progress::Progress;
use crate::scenario::{Loaded, Mode};
use crate::shard::{self, WorkerSpec, Workers};
use crate::snapshot::Message;
use crate::target::Server;
use crate::timeline::ModeData;
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
            .join(output::stamp(SystemTime::now()))
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
    let nonce = shard::unix_ns(SystemTime::now()) as u64 / 1_000_000;
    let mut done: Vec<ModeData> = Vec::new();
    let events = EventSink::default();
    let mut interrupted = false;
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
        let data = run_mode(&opts, mode, &server, nonce, stop_rx.clone()).await?;
        interrupted = *stop_rx.borrow();
        server
            .stop(&s.target.stop_signal, s.target.stop_timeout.0)
            .await;
        done.push(data);
        write(&dir, &done, &events)?;
        if interrupted {
            break;
        }
    }
    write(&dir, &done, &events)?;
    Ok(RunResult {
        dir,
        interrupted,
        modes: done,
    })
}

fn write(dir: &std::path::Path, modes: &[ModeData], events: &EventSink) -> Result<(), RunError> {
    output::write_run(dir, modes, events)
        .map_err(|e| RunError::Harness(format!("cannot write {}: {e}", dir.display())))
}

async fn run_mode(
    opts: &RunOptions,
    mode: &Mode,
    server: &Server,
    nonce: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<ModeData, RunError> {
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
    let mut workers = None;
    let mut local = None;
    if processes > 1 {
        // Workers need a moment to start and build their schedules.
        let t0_wall = SystemTime::now() + Duration::from_millis(1500);
        data.started_at = t0_wall;
        let spec = WorkerSpec {
            scenario: &opts.loaded.path,
            count: processes,
            addr: server.addr,
            host: &server.host,
            t0_unix_ns: shard::unix_ns(t0_wall),
            nonce,
            threads,
        };
        let w = Workers::spawn(&spec, tx.clone()).map_err(RunError::Harness)?;
        workers = Some(w);
    } else {
        let plan = EnginePlan::new(s, Shard::WHOLE, server.addr, server.host.clone(), nonce)
            .map_err(RunError::Usage)?;
        let t0 = Instant::now() + Duration::from_millis(50);
        data.started_at = SystemTime::now() + Duration::from_millis(50);
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
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => {
                    data.push(m);
                    progress.update(&data);
                    if data.all_finals_in() { break; }
                }
                None => break,
            },
            _ = engine::stopped(&mut stop), if !stopping => {
                stopping = true;
                progress.message("stopping: writing what was measured");
                let _ = local_stop_tx.send(true);
                if let Some(w) = workers.as_mut() { w.stop(); }
            }
        }
    }
    data.flush();
    progress.finish();
    if let Some(l) = local {
        let _ = l.await;
    }
    if let Some(w) = workers {
        let failed = w.wait().await;
        if failed > 0 && !stopping {
            return Err(RunError::Harness(format!(
                "{failed} loadgen worker process(es) failed"
            )));
        }
    }
    let (cpu1, rss) = limits::self_usage();
    // The parent's own cost counts too: it merges and, in-process, generates.
    data.fin.cpu_s += cpu1 - cpu0;
    data.fin.peak_rss_kb += rss;
    Ok(data)
}
