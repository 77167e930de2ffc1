//! Running users in several loadgen processes. The parent starts `loadgen shard`
//! children, each taking shard i/n of the users with a shared wall-clock start, and
//! reads their JSON-line snapshots (counters plus V2-serialized histograms) into the
//! same channel the in-process engine uses. A shard stops on SIGINT or when its
//! stdin closes (the parent went away). The same protocol serves shards run on
//! other machines.

use crate::engine::snapshot::Message;
use crate::engine::{self, EnginePlan, Target};
use crate::limits;
use crate::plan::arrivals::Shard;
use crate::plan::{PlanOptions, RunPlan};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Arguments of the hidden `loadgen shard` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ShardArgs {
    #[arg(long)]
    pub scenario: PathBuf,
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long)]
    pub host: String,
    /// The target URL's path, put before every request's path.
    #[arg(long, default_value = "")]
    pub base_path: String,
    /// The target is `https://`.
    #[arg(long)]
    pub tls: bool,
    /// i/n: this shard runs users with index mod n == i.
    #[arg(long)]
    pub shard: String,
    /// Wall-clock start of the mode, nanoseconds since the Unix epoch.
    #[arg(long)]
    pub t0_unix_ns: u128,
    #[arg(long)]
    pub nonce: u64,
    /// The execution segment (I/N) whose users this shard splits with its siblings.
    #[arg(long)]
    pub segment: Option<String>,
}

pub fn unix_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// The local `Instant` of a wall-clock time given in Unix nanoseconds.
pub fn instant_of(t_unix_ns: u128) -> Instant {
    let now_i = Instant::now();
    let now_ns = unix_ns(SystemTime::now());
    if t_unix_ns >= now_ns {
        now_i + Duration::from_nanos((t_unix_ns - now_ns).min(u128::from(u64::MAX)) as u64)
    } else {
        now_i
            .checked_sub(Duration::from_nanos(
                (now_ns - t_unix_ns).min(u128::from(u64::MAX)) as u64,
            ))
            .unwrap_or(now_i)
    }
}

/// Body of `loadgen shard`: runs one shard and streams snapshots on stdout.
///
/// The plan is rebuilt from the scenario file with the same function and options as
/// the parent's, so both see the same schedule and journey.
pub async fn shard_main(args: ShardArgs, opts: &PlanOptions) -> Result<(), String> {
    let mut opts = opts.clone();
    if let Some(segment) = &args.segment {
        opts.segment = Some(crate::segment::Segment::parse(segment)?);
    }
    let run_plan = RunPlan::load(&args.scenario, &opts).map_err(|e| e.to_string())?;
    let shard = Shard::parse(&args.shard)?;
    limits::check_files(run_plan.load.users.div_ceil(u64::from(shard.count)))?;
    let threads = run_plan.load.threads;
    let target = Target {
        addr: args.addr,
        host: args.host.clone(),
        base_path: args.base_path.clone(),
        tls: args.tls,
    };
    let plan = EnginePlan::new(&run_plan, shard, target, args.nonce);
    let t0 = instant_of(args.t0_unix_ns);
    let (stop_tx, stop_rx) = watch::channel(false);
    // The parent closing our stdin (or going away) means stop, like SIGINT.
    let stdin_stop = stop_tx.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = stdin_stop.send(true);
    });
    tokio::spawn(async move {
        if let Ok(mut sigint) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        {
            sigint.recv().await;
            let _ = stop_tx.send(true);
        }
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = tokio::spawn(engine::run_threads(plan, threads, t0, stop_rx, tx));
    let mut out = std::io::stdout().lock();
    let mut finals = 0;
    while let Some(msg) = rx.recv().await {
        let msg = match msg {
            Message::Final(mut f) => {
                // Every runtime thread sends a final; the process's own CPU time and
                // peak RSS go with the last one only, so the parent counts them once.
                finals += 1;
                if finals == threads {
                    let (cpu, rss) = limits::self_usage();
                    f.cpu_s = cpu;
                    f.peak_rss_kb = rss;
                }
                Message::Final(f)
            }
            m => m,
        };
        let line = serde_json::to_string(&msg).map_err(|e| e.to_string())?;
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())?;
    }
    let _ = run.await;
    Ok(())
}

/// What every shard process of one mode is told.
#[derive(Debug, Clone, Copy)]
pub struct ShardSpec<'a> {
    pub scenario: &'a Path,
    pub count: u32,
    pub addr: SocketAddr,
    pub host: &'a str,
    pub base_path: &'a str,
    pub tls: bool,
    pub t0_unix_ns: u128,
    pub nonce: u64,
    /// Runtime threads per shard process; the parent counts processes x threads sources.
    pub threads: usize,
    /// The execution segment the shards share (whole run: `Segment::WHOLE`).
    pub segment: crate::segment::Segment,
}

/// Shard processes of one mode, as the parent sees them.
pub struct Shards {
    children: Vec<(Child, Option<ChildStdin>)>,
}

impl Shards {
    /// Starts `spec.count` shard processes; their messages arrive on `tx`.
    pub fn spawn(
        spec: &ShardSpec<'_>,
        tx: mpsc::UnboundedSender<Message>,
    ) -> Result<Shards, String> {
        let ShardSpec {
            scenario,
            count,
            addr,
            host,
            base_path,
            tls,
            t0_unix_ns,
            nonce,
            threads,
            segment,
        } = *spec;
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the loadgen executable: {e}"))?;
        let scenario = std::fs::canonicalize(scenario).unwrap_or_else(|_| scenario.to_path_buf());
        let mut children = Vec::new();
        for i in 0..count {
            let mut command = Command::new(&exe);
            command
                .arg("--threads")
                .arg(threads.to_string())
                .arg("shard")
                .arg("--scenario")
                .arg(&scenario)
                .arg("--addr")
                .arg(addr.to_string())
                .arg("--host")
                .arg(host)
                .arg(format!("--base-path={base_path}"))
                .args(tls.then_some("--tls"))
                .arg("--shard")
                .arg(format!("{i}/{count}"))
                .arg("--t0-unix-ns")
                .arg(t0_unix_ns.to_string())
                .arg("--nonce")
                .arg(nonce.to_string());
            if !segment.is_whole() {
                command.arg("--segment").arg(segment.to_string());
            }
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start loadgen shard {i}/{count}: {e}"))?;
            let stdout = child.stdout.take().ok_or("shard stdout missing")?;
            let stdin = child.stdin.take();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Message>(&line) {
                        Ok(m) => {
                            let _ = tx.send(m);
                        }
                        Err(e) => eprintln!("loadgen: shard {i}/{count} sent a bad line: {e}"),
                    }
                }
            });
            children.push((child, stdin));
        }
        Ok(Shards { children })
    }

    /// Asks every shard to stop and report what it measured.
    pub fn stop(&mut self) {
        for (child, stdin) in &mut self.children {
            stdin.take();
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
            }
        }
    }

    /// Waits for every shard to exit; returns how many failed.
    pub async fn wait(mut self) -> usize {
        let mut failed = 0;
        for (child, stdin) in &mut self.children {
            stdin.take();
            match child.wait().await {
                Ok(s) if s.success() => {}
                _ => failed += 1,
            }
        }
        failed
    }
}
