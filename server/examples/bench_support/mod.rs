//! What the benchmark examples (`rollout_soak`, `wal_pause`) share: the real
//! `shop-server` started as a cluster on a free loopback port in a temporary folder
//! (its stderr kept line by line, the master and its workers SIGKILLed by PID when
//! dropped), /proc readings (children, open descriptors, RSS), and a keep-alive load
//! of well-behaved clients that retry only idempotent requests that got no answer,
//! recording one sample per request (when it was due, how long it took to its final
//! outcome, which worker answered). Not a test: these measure, tests assert.
#![allow(dead_code)] // each example uses its own part

mod load;

pub use load::{Load, Sample, Walk};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A cluster master started by the benchmark; killed with its workers on drop.
pub struct Cluster {
    child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Cluster {
    /// Starts `program` (the binary or a symlink to it) with `args` plus a free
    /// loopback port, and waits for `all N workers ready`.
    pub fn start(program: &Path, args: &[String]) -> anyhow::Result<Cluster> {
        let mut child = Command::new(program)
            .args(args)
            .args(["--mode", "cluster", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut all) = lines.lock() {
                        all.push(line);
                    }
                }
            });
        }
        let mut cluster = Cluster {
            pid: child.id(),
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        let line = cluster.wait_for("listening on ", 1, Duration::from_secs(30))?;
        cluster.addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no address in {line:?}"))?;
        cluster.wait_for("workers ready", 1, Duration::from_secs(30))?;
        Ok(cluster)
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `n` lines contain `needle`; returns the n-th.
    pub fn wait_for(&self, needle: &str, n: usize, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let found: Vec<String> = self
                .lines()
                .into_iter()
                .filter(|l| l.contains(needle))
                .collect();
            if let Some(line) = found.get(n.saturating_sub(1)) {
                return Ok(line.clone());
            }
            if Instant::now() > deadline {
                bail!(
                    "no {n} lines with {needle:?} within {within:?}; last lines:\n{}",
                    self.lines()
                        .iter()
                        .rev()
                        .take(30)
                        .rev()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        kill(pid(self.pid)?, signal).with_context(|| format!("{signal} to {}", self.pid))
    }

    pub fn workers(&self) -> Vec<u32> {
        children_of(self.pid)
    }

    /// SIGINT (graceful stop), then waits up to `within` for the exit.
    pub fn stop(&mut self, within: Duration) -> anyhow::Result<()> {
        self.signal(Signal::SIGINT)?;
        let deadline = Instant::now() + within;
        if let Some(child) = self.child.as_mut() {
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    bail!("the master did not stop within {within:?}");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.child = None;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let workers = children_of(self.pid);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for worker in workers {
            if let Ok(p) = pid(worker) {
                let _ = kill(p, Signal::SIGKILL);
            }
        }
    }
}

fn pid(raw: u32) -> anyhow::Result<Pid> {
    Ok(Pid::from_raw(
        i32::try_from(raw).context("pid out of range")?,
    ))
}

/// Children of `pid`, from every `/proc/<pid>/task/<tid>/children`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                children.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    children.sort_unstable();
    children
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A temporary folder removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> anyhow::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One stretch of time the master's checkpoint thread spent in one system call.
#[derive(Debug, Clone)]
pub struct LongCall {
    pub name: String,
    /// µs since `started` (see [`watch_checkpointer`]).
    pub at_us: u64,
    pub ms: u64,
}

/// Samples the master's `checkpoint` thread every 20 ms (`/proc/.../syscall`) until
/// stopped; returns each stretch of 300 ms or more it spent in one system call
/// other than sleeping. Shows where write stalls that nothing else explains come
/// from (an fsync on a disk shared with busy neighbours).
pub fn watch_checkpointer(
    master: u32,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> std::thread::JoinHandle<Vec<LongCall>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let Some(task) = std::fs::read_dir(format!("/proc/{master}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|t| t.path())
            .find(|t| {
                std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim() == "checkpoint")
            })
        else {
            return out;
        };
        let mut current = (String::new(), Instant::now());
        while !stop.load(Ordering::Relaxed) {
            let sys = std::fs::read_to_string(task.join("syscall")).unwrap_or_default();
            let name = match sys.split_whitespace().next().unwrap_or("") {
                "35" | "230" | "running" | "" => "",
                "74" => "fsync",
                "75" => "fdatasync",
                "17" => "pread64",
                "18" => "pwrite64",
                "72" => "fcntl",
                _ => "another call",
            };
            if name != current.0 {
                let len = u64::try_from(current.1.elapsed().as_millis()).unwrap_or(u64::MAX);
                if !current.0.is_empty() && len >= 300 {
                    let at = current.1.saturating_duration_since(started).as_micros();
                    out.push(LongCall {
                        name: current.0.clone(),
                        at_us: u64::try_from(at).unwrap_or(u64::MAX),
                        ms: len,
                    });
                }
                current = (name.to_owned(), Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    })
}

/// The `q` quantile (0..=1) of `values`, sorted in place; 0 when empty.
pub fn quantile(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// Milliseconds, one decimal.
pub fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}
