//! Shared helpers for the integration tests: a temporary directory, the real
//! `shop-server` binary started on a free loopback port (port 0, the real port read
//! from its log) and killed with its children in `Drop` even when a test fails, its
//! stderr captured line by line, and /proc helpers. HTTP helpers are in `http`, the
//! load generator in `load`, hostile clients in `attack`, deploy helpers (symlink
//! swaps, scripts) in `deploy`.
#![allow(dead_code)] // each test binary uses a different part of this module

mod attack;
mod deploy;
mod http;
mod load;
mod mutate;

#[allow(unused_imports)]
pub use attack::*;
#[allow(unused_imports)] // not every test binary uses all of them
pub use deploy::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use load::*;
#[allow(unused_imports)]
pub use mutate::*;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_shop-server");

/// Generous: the machine is shared and noisy; waits end early when the thing happens.
pub const WAIT: Duration = Duration::from_secs(20);

pub use tempfile::TempDir;

/// A temporary directory named after the test (unique, removed on drop).
pub fn temp_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("shop-server-test-{name}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Lines the process wrote to stderr, shared with the thread that reads them.
#[derive(Clone, Default)]
pub struct Log {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Log {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `count(needle) >= n`; panics with the whole log otherwise.
    pub async fn wait_for_count(&self, needle: &str, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.count(needle) < n {
            if Instant::now() > deadline {
                panic!(
                    "expected {n} log lines containing {needle:?} within {within:?}, got {}; log:\n{}",
                    self.count(needle),
                    self.lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the first line containing `needle` and returns it.
    pub async fn wait_for(&self, needle: &str, within: Duration) -> String {
        self.wait_for_count(needle, 1, within).await;
        self.lines()
            .into_iter()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
    }

    fn capture(&self, stderr: impl Read + Send + 'static, tag: String) {
        let lines = Arc::clone(&self.lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
                if let Ok(mut all) = lines.lock() {
                    all.push(line);
                }
            }
        });
    }
}

/// A running `shop-server`, killed (with its children) when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: Log,
    pub db: PathBuf,
    pub args: Vec<String>,
}

impl Server {
    /// Starts `program` (the binary or a symlink/wrapper to it) with `args` plus
    /// `--listen 127.0.0.1:0` and waits for its "listening on" line.
    pub async fn start_program(program: &Path, args: &[&str]) -> Server {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !args.iter().any(|a| a == "--listen") {
            args.extend(["--listen".into(), "127.0.0.1:0".into()]);
        }
        let db = args
            .iter()
            .position(|a| a == "--db")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
            .expect("tests always pass --db");
        let mut cmd = Command::new(program);
        cmd.args(&args);
        Server::start_command(cmd, db).await
    }

    /// Starts a prepared command (which must listen on port 0 of loopback) and waits
    /// for its "listening on" line.
    pub async fn start_command(mut cmd: Command, db: PathBuf) -> Server {
        let args = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let pid = child.id();
        let log = Log::default();
        if let Some(stderr) = child.stderr.take() {
            log.capture(stderr, format!("server {pid}"));
        }
        let mut server = Server {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            db,
            args,
        };
        let line = server.log.wait_for("listening on ", WAIT).await;
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        server.addr = addr;
        server
    }

    pub async fn start(args: &[&str]) -> Server {
        Server::start_program(Path::new(BIN), args).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid as i32), signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to {}: {e}", self.pid));
    }

    /// Waits for the process to exit; panics if it does not within `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("server already reaped");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "server {} did not exit within {within:?}; log:\n{}",
                    self.pid,
                    self.log.lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// PIDs of this process's children (the workers, in cluster mode).
    pub fn children(&self) -> Vec<u32> {
        children_of(self.pid)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let workers = children_of(self.pid);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in workers {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Children of `pid`, from every `/proc/<pid>/task/<tid>/children`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return children;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children.sort_unstable();
    children
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Starts a cluster master (`--mode cluster`) with `extra` flags through `program`
/// and waits until its first workers are all ready.
pub async fn start_cluster(program: &Path, dir: &TempDir, extra: &[&str]) -> Server {
    let db = dir.path().join("shop.db");
    let pidfile = dir.path().join("master.pid");
    let mut args = vec![
        "--mode",
        "cluster",
        "--db",
        db.to_str().expect("utf-8 path"),
        "--pidfile",
        pidfile.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let server = Server::start_program(program, &args).await;
    server.log.wait_for("workers ready", WAIT).await;
    server
}

/// Ready worker PIDs according to the master's log, replayed line by line; returns
/// the smallest number of ready workers seen after the first "all N workers ready".
pub fn min_ready_in_log(lines: &[String]) -> usize {
    let mut ready = std::collections::BTreeSet::new();
    let mut serving = false;
    let mut min = usize::MAX;
    for line in lines.iter().filter(|l| l.contains(" master: ")) {
        let pid = line
            .split(" pid ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if line.contains(" ready (") {
                ready.insert(pid);
            } else if line.contains(" draining (SIGTERM)")
                || line.contains(" exited ")
                || line.contains(" killed (SIGKILL)")
            {
                ready.remove(&pid);
            }
        }
        if line.contains("workers ready") {
            serving = true;
        }
        if serving {
            min = min.min(ready.len());
        }
    }
    min
}
