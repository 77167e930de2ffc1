//! The checkpoint question, measured (not a test). A 2-worker cluster under a
//! write-heavy load (`POST /carts` with keys) plus reads (`GET /products`, and
//! `GET /admin/audit`, one read transaction over every table, so that a worker is
//! often inside a read); one worker at a time is SIGSTOPped for
//! `--pause`, `--pauses` times, `--gap` apart. For each pause it reports the longest
//! time a write answered by the *other* worker took, if it was sent during the pause:
//! when that is about the pause itself, the stopped worker stalled every worker's
//! writes. `--target read` (the default) stops the worker only inside a read of the
//! WAL: it is stopped for a moment, its locks looked at, and let go until it is
//! caught inside one (`write`: inside a write; `any`: wherever it is). Run once per
//! `--wal-checkpoint` mode of the master:
//!
//! ```sh
//! cargo run --release --example wal_pause -- --bin target/release/shop-server --mode waiting
//! ```
//!
//! `waiting`: RESTART waits for readers with the 30 s busy handler (the behaviour
//! before); `bounded`: it gives up after 10 ms; `passive`: no RESTART at all. What the
//! stopped worker was doing is read from its SQLite locks in `/proc/locks` while it
//! is stopped: the WAL write lock (inside a write: every writer waits, whatever the
//! checkpoint does, as SQLite has one writer), a WAL read mark (inside a read of the
//! WAL: only a checkpoint that waits for readers can make writers wait), or none.

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench_support::{Cluster, Load, Sample, Scratch, Walk, ms, quantile, watch_checkpointer};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

struct Opts {
    bin: PathBuf,
    mode: String,
    pauses: u32,
    pause: Duration,
    gap: Duration,
    writers: usize,
    readers: usize,
    auditors: usize,
    /// Stop the worker only inside a read of the WAL (`read`), a write, or anywhere.
    target: String,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        bin: PathBuf::from("target/release/shop-server"),
        mode: "bounded".into(),
        pauses: 12,
        pause: Duration::from_secs(2),
        gap: Duration::from_secs(1),
        writers: 16,
        readers: 8,
        auditors: 4,
        target: "read".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let millis = || value.parse::<u64>().map(Duration::from_millis);
        match flag.as_str() {
            "--bin" => o.bin = PathBuf::from(&value),
            "--mode" => o.mode = value.clone(),
            "--pauses" => o.pauses = value.parse()?,
            "--pause-ms" => o.pause = millis()?,
            "--gap-ms" => o.gap = millis()?,
            "--writers" => o.writers = value.parse()?,
            "--readers" => o.readers = value.parse()?,
            "--auditors" => o.auditors = value.parse()?,
            "--target" => o.target = value.clone(),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let o = opts()?;
    let scratch = Scratch::new("wal-pause")?;
    let db = scratch.0.join("shop.db");
    let args: Vec<String> = [
        "--workers",
        "2",
        "--products",
        "100",
        "--stock",
        "100000000",
        "--checkout-io",
        "0s",
        "--checkout-cpu",
        "0s",
        "--wal-checkpoint",
        &o.mode,
        "--db",
        db.to_str().context("utf-8 path")?,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cluster = Cluster::start(&o.bin, &args)?;
    let workers = cluster.workers();
    if workers.len() != 2 {
        bail!("expected 2 workers, found {workers:?}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let load = Load {
        addr: cluster.addr,
        walks: vec![
            (Walk::Writes, o.writers),
            (Walk::Reads, o.readers),
            (Walk::Audits, o.auditors),
        ],
        tries: 4,
        reconnect_every: Some(50),
        stop: Arc::clone(&stop),
        max: (o.pause + o.gap) * (o.pauses + 2) + Duration::from_secs(60),
    };
    let load = rt.spawn(load.run(started));
    let watch = watch_checkpointer(cluster.pid, Arc::clone(&stop), started);

    // (paused pid, from, to, what it was doing) in µs since the load began.
    let mut windows = Vec::new();
    std::thread::sleep(o.gap * 2);
    let shm = std::fs::metadata(scratch.0.join("shop.db-shm")).context("the -shm file")?;
    let shm_inode = std::os::unix::fs::MetadataExt::ino(&shm);
    let mut tries = 0u32;
    for i in 0..o.pauses {
        let victim = workers[i as usize % 2];
        let raw = Pid::from_raw(i32::try_from(victim)?);
        // Stop it; look at its locks once every thread has stopped; when it is not
        // doing what this run targets, let it go on and try again a moment later.
        let (from, doing) = loop {
            tries += 1;
            let from = started.elapsed();
            kill(raw, Signal::SIGSTOP).context("SIGSTOP")?;
            std::thread::sleep(Duration::from_millis(2));
            let doing = doing(victim, shm_inode);
            let wanted = match o.target.as_str() {
                "read" => doing == "reading the WAL",
                "write" => doing == "writing",
                _ => true,
            };
            if wanted || tries > 20_000 {
                break (from, doing);
            }
            kill(raw, Signal::SIGCONT).context("SIGCONT")?;
            std::thread::sleep(Duration::from_millis(1 + u64::from(tries % 7)));
        };
        std::thread::sleep(o.pause);
        kill(raw, Signal::SIGCONT).context("SIGCONT")?;
        windows.push((victim, micros(from), micros(started.elapsed()), doing));
        std::thread::sleep(o.gap);
    }
    eprintln!(
        "{tries} stops to find {} pauses of the wanted kind",
        o.pauses
    );
    std::thread::sleep(o.gap);
    stop.store(true, Ordering::Relaxed);
    let samples = rt.block_on(load).context("load task")?;
    let wal_mb = std::fs::metadata(scratch.0.join("shop.db-wal")).map_or(0, |m| m.len()) >> 20;
    let deferred = cluster.count("WAL restart deferred");
    let long_calls = watch.join().unwrap_or_default();
    cluster.stop(Duration::from_secs(30))?;
    report(&o, &samples, &windows, wal_mb, deferred);
    let longest = long_calls.iter().max_by_key(|c| c.ms);
    println!(
        "  master's checkpoint thread: {} system calls of 300 ms or more{}",
        long_calls.len(),
        longest.map_or(String::new(), |c| format!(
            ", longest {} ms in {}",
            c.ms, c.name
        ))
    );
    Ok(())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What a stopped worker holds in the shared-memory file of the WAL (lock bytes of
/// SQLite's WAL index: 120 write, 123 + i read mark i; mark 0 reads the database
/// file only, which no checkpoint waits for).
fn doing(pid: u32, shm_inode: u64) -> &'static str {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let mut held = Vec::new();
    for line in locks.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1: POSIX ADVISORY READ 1234 00:2a:5678 123 123" (a "->" may follow "1:")
        let f: Vec<&str> = f.into_iter().filter(|x| *x != "->").collect();
        let (Some(p), Some(dev_ino), Some(start), Some(end)) =
            (f.get(4), f.get(5), f.get(6), f.get(7))
        else {
            continue;
        };
        let same_file = dev_ino
            .rsplit(':')
            .next()
            .and_then(|i| i.parse::<u64>().ok())
            == Some(shm_inode);
        if p.parse::<u32>().ok() == Some(pid) && same_file {
            if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
                held.push((a, b));
            }
        }
    }
    let holds = |byte: u64| held.iter().any(|&(a, b)| a <= byte && byte <= b);
    if holds(120) {
        "writing"
    } else if (124..=127).any(holds) {
        "reading the WAL"
    } else {
        "no WAL lock"
    }
}

fn report(
    o: &Opts,
    samples: &[Sample],
    windows: &[(u32, u64, u64, &str)],
    wal_mb: u64,
    deferred: usize,
) {
    let pause_us = micros(o.pause);
    let mut during = Vec::new();
    let mut outside = Vec::new();
    for s in samples.iter().filter(|s| s.write && !s.failed()) {
        let end = s.at_us + s.latency_us;
        match windows
            .iter()
            .find(|(_, from, to, _)| s.at_us < *to && end > *from)
        {
            Some((paused, ..)) if s.pid != *paused => during.push(s.latency_us),
            Some(_) => {}
            None => outside.push(s.latency_us),
        }
    }
    let failed = samples.iter().filter(|s| s.failed()).count();
    let writes = samples.iter().filter(|s| s.write).count();
    println!(
        "mode {}: {} pauses of {} ms; writes {writes} ({failed} failed), reads {}",
        o.mode,
        windows.len(),
        o.pause.as_millis(),
        samples.len() - writes
    );
    let mut by_state: std::collections::BTreeMap<&str, (usize, usize, Vec<String>)> =
        std::collections::BTreeMap::new();
    for (paused, from, to, doing) in windows {
        // The longest write answered by the other worker that was in flight during
        // the pause.
        let worst = samples
            .iter()
            .filter(|s| s.write && s.pid != *paused && s.pid != 0)
            .filter(|s| s.at_us < *to && s.at_us + s.latency_us > *from)
            .map(|s| s.latency_us)
            .max()
            .unwrap_or(0);
        let entry = by_state.entry(doing).or_default();
        entry.0 += 1;
        entry.1 += usize::from(worst >= pause_us / 2);
        entry.2.push(ms(worst));
    }
    for (doing, (pauses, stalled, worst)) in &by_state {
        println!(
            "  stopped while {doing}: {pauses} pauses, {stalled} stalled the other worker's writes; \
             longest write in flight, ms: {}",
            worst.join(" ")
        );
    }
    println!(
        "  other worker's writes in flight during pauses: {}, p50 {} ms, p99 {} ms, max {} ms",
        during.len(),
        ms(quantile(&mut during, 0.5)),
        ms(quantile(&mut during, 0.99)),
        ms(quantile(&mut during, 1.0))
    );
    println!(
        "  writes outside pauses: {}, p50 {} ms, p99 {} ms, max {} ms",
        outside.len(),
        ms(quantile(&mut outside, 0.5)),
        ms(quantile(&mut outside, 0.99)),
        ms(quantile(&mut outside, 1.0))
    );
    println!(
        "  WAL file at the end: {wal_mb} MiB; log lines about deferred WAL restarts: {deferred}"
    );
}
