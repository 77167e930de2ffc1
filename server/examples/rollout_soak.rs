//! The rollout soak (a benchmark, not a test): a cluster started through a symlink,
//! continuous load from keep-alive shoppers that retry idempotent requests which got
//! no answer (GET, and every POST with an Idempotency-Key), and `--rollouts` rolling
//! restarts in a row, each one a deploy of a new version (the symlink alternates
//! between two wrapper scripts that `exec` the binary with `--version-tag vN`).
//! Reports failed requests (no answer after the retries, or 5xx), latency during the
//! rollouts and between them, workers before and after, and the master's open file
//! descriptors and RSS along the way (a leak grows with the rollouts). Run by
//! `scripts/bench-rollout`:
//!
//! ```sh
//! cargo run --release --example rollout_soak -- --bin target/release/shop-server --rollouts 100
//! ```

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench_support::{
    Cluster, Load, LongCall, Sample, Scratch, Walk, ms, open_fds, quantile, rss_kib,
    watch_checkpointer,
};
use nix::sys::signal::Signal;

struct Opts {
    bin: PathBuf,
    rollouts: u32,
    settle: String,
    boot_time: String,
    clients: usize,
    workers: u16,
    gap: Duration,
    log: Option<PathBuf>,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        bin: PathBuf::from("target/release/shop-server"),
        rollouts: 100,
        settle: "1s".into(),
        boot_time: "0s".into(),
        clients: 32,
        workers: 2,
        gap: Duration::from_millis(200),
        log: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bin" => o.bin = PathBuf::from(&value),
            "--rollouts" => o.rollouts = value.parse()?,
            "--settle" => o.settle = value,
            "--boot-time" => o.boot_time = value,
            "--clients" => o.clients = value.parse()?,
            "--workers" => o.workers = value.parse()?,
            "--gap-ms" => o.gap = Duration::from_millis(value.parse()?),
            "--log" => o.log = Some(PathBuf::from(&value)),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(o)
}

/// Points `link` at `target` atomically.
fn swap_link(dir: &Path, link: &Path, target: &Path) -> anyhow::Result<()> {
    let tmp = dir.join("link.tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).context("symlink")?;
    std::fs::rename(&tmp, link).context("swapping the symlink")?;
    Ok(())
}

fn wrapper(dir: &Path, bin: &Path, version: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{version}.sh"));
    let body = format!(
        "#!/bin/sh\nexec {} \"$@\" --version-tag {version}\n",
        bin.display()
    );
    std::fs::write(&path, body).context("writing a wrapper")?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).context("chmod")?;
    Ok(path)
}

/// The master's descriptors and RSS after a number of rollouts.
struct Reading {
    after: u32,
    fds: usize,
    rss_kib: u64,
}

fn main() -> anyhow::Result<()> {
    let o = opts()?;
    let bin = std::fs::canonicalize(&o.bin).with_context(|| format!("{}", o.bin.display()))?;
    let scratch = Scratch::new("rollout-soak")?;
    let current = scratch.0.join("current");
    let builds = [
        wrapper(&scratch.0, &bin, "odd")?,
        wrapper(&scratch.0, &bin, "even")?,
    ];
    swap_link(&scratch.0, &current, &bin)?;
    let db = scratch.0.join("shop.db");
    let args: Vec<String> = [
        "--workers",
        &o.workers.to_string(),
        "--settle",
        &o.settle,
        "--boot-time",
        &o.boot_time,
        "--products",
        "20",
        "--stock",
        "1000000000",
        "--checkout-io",
        "5ms",
        "--version-tag",
        "start",
        "--db",
        db.to_str().context("utf-8 path")?,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cluster = Cluster::start(&current, &args)?;
    let workers_before = cluster.workers().len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() % 86_400.0);
    let load = Load {
        addr: cluster.addr,
        walks: vec![(Walk::Shopper, o.clients)],
        tries: 4,
        reconnect_every: None,
        stop: Arc::clone(&stop),
        max: Duration::from_secs(60) * (o.rollouts + 2),
    };
    let load = rt.spawn(load.run(started));
    let watch = watch_checkpointer(cluster.pid, Arc::clone(&stop), started);
    std::thread::sleep(Duration::from_secs(1));

    let mut readings = vec![Reading {
        after: 0,
        fds: open_fds(cluster.pid),
        rss_kib: rss_kib(cluster.pid),
    }];
    let mut windows = Vec::new();
    let mut took = Vec::new();
    for i in 1..=o.rollouts {
        swap_link(&scratch.0, &current, &builds[i as usize % 2])?;
        let from = started.elapsed();
        cluster.signal(Signal::SIGHUP)?;
        let line = cluster.wait_for("is last known good", i as usize, Duration::from_secs(120));
        let to = started.elapsed();
        if let Err(error) = line {
            stop.store(true, Ordering::Relaxed);
            return Err(error.context(format!("rollout {i}")));
        }
        windows.push((micros(from), micros(to)));
        took.push(micros(to - from));
        if [1, 10, 25, 50, 75, 100].contains(&i) || i == o.rollouts {
            readings.push(Reading {
                after: i,
                fds: open_fds(cluster.pid),
                rss_kib: rss_kib(cluster.pid),
            });
        }
        std::thread::sleep(o.gap);
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let samples = rt.block_on(load).context("load task")?;
    let long_calls = watch.join().unwrap_or_default();
    let workers_after = cluster.workers().len();
    let last_version = ["odd", "even"][o.rollouts as usize % 2];
    let versions = rt.block_on(versions_served(cluster.addr));
    let aborted = cluster.count("rollout aborted");
    if let Some(path) = &o.log {
        std::fs::write(path, cluster.lines().join("\n")).context("writing the master's log")?;
    }
    cluster.stop(Duration::from_secs(60))?;
    report(&o, &samples, &windows, &mut took, &readings, &long_calls);
    let (h, m, sec) = (began as u64 / 3600, began as u64 / 60 % 60, began % 60.0);
    println!("  (the load began at {h:02}:{m:02}:{sec:06.3} UTC)");
    println!(
        "workers before / after: {workers_before} / {workers_after}; rollouts aborted: {aborted}; \
         the last rollout deployed {last_version:?}; 40 fresh connections were answered by {versions:?}"
    );
    Ok(())
}

/// The versions that answer `/healthz` on 40 fresh connections, with counts.
async fn versions_served(addr: std::net::SocketAddr) -> std::collections::BTreeMap<String, u32> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let Ok(client) = reqwest::Client::builder().pool_max_idle_per_host(0).build() else {
            continue;
        };
        let version = match client.get(format!("http://{addr}/healthz")).send().await {
            Ok(r) => r
                .headers()
                .get("x-server-version")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned(),
            Err(_) => "no answer".to_owned(),
        };
        *seen.entry(version).or_default() += 1;
    }
    seen
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn report(
    o: &Opts,
    samples: &[Sample],
    windows: &[(u64, u64)],
    took: &mut [u64],
    readings: &[Reading],
    long_calls: &[LongCall],
) {
    let failed: Vec<&Sample> = samples.iter().filter(|s| s.failed()).collect();
    let retried = samples.iter().filter(|s| s.attempts > 1).count();
    let mut all: Vec<u64> = samples.iter().map(|s| s.latency_us).collect();
    let (mut during, mut between): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for s in samples {
        if windows
            .iter()
            .any(|(from, to)| s.at_us >= *from && s.at_us < *to)
        {
            during.push(s.latency_us);
        } else {
            between.push(s.latency_us);
        }
    }
    let line = |name: &str, v: &mut Vec<u64>| {
        println!(
            "  {name:<22} {:>9} requests  p50 {:>7} ms  p99 {:>7} ms  p99.9 {:>7} ms  max {:>8} ms",
            v.len(),
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.99)),
            ms(quantile(v, 0.999)),
            ms(quantile(v, 1.0))
        );
    };
    println!(
        "rollout soak: {} rolling restarts of {} workers (--settle {}, --boot-time {}), {} shoppers",
        windows.len(),
        o.workers,
        o.settle,
        o.boot_time,
        o.clients
    );
    println!(
        "  requests {}, failed {} (no answer after 3 retries, or 5xx), retried {}",
        samples.len(),
        failed.len(),
        retried
    );
    for f in failed.iter().take(5) {
        println!("    failed: {f:?}");
    }
    line("all", &mut all);
    line("during rollouts", &mut during);
    line("between rollouts", &mut between);
    let slowest = took
        .iter()
        .enumerate()
        .max_by_key(|(_, t)| **t)
        .map_or(0, |(i, _)| i + 1);
    println!(
        "  rollout duration: p50 {} ms, max {} ms (rollout {slowest})",
        ms(quantile(took, 0.5)),
        ms(quantile(took, 1.0))
    );
    let longest = long_calls.iter().max_by_key(|c| c.ms);
    println!(
        "  master's checkpoint thread: {} system calls of 300 ms or more{}",
        long_calls.len(),
        longest.map_or(String::new(), |c| format!(
            ", longest {} ms in {} at {:.3} s",
            c.ms,
            c.name,
            c.at_us as f64 / 1e6
        ))
    );
    if let Some(worst) = samples.iter().max_by_key(|s| s.latency_us) {
        let during = windows
            .iter()
            .position(|(from, to)| worst.at_us >= *from && worst.at_us < *to);
        println!(
            "  slowest request: {} ms, sent {:.3} s into the run ({}), answered by pid {} with {}",
            ms(worst.latency_us),
            worst.at_us as f64 / 1e6,
            during.map_or("between rollouts".to_owned(), |i| format!(
                "during rollout {}",
                i + 1
            )),
            worst.pid,
            worst.status
        );
    }
    println!("  master after N rollouts: open fds / RSS KiB");
    for r in readings {
        println!("    {:>4}: {:>4} fds  {:>7} KiB", r.after, r.fds, r.rss_kib);
    }
}
