//! Test support: a raw HTTP/1.1 server on a free loopback port whose behaviour the
//! test controls (answer, close without answering, stall, hang) and which counts
//! what it saw; running the real `loadgen` binary in a temporary folder; reading
//! the CSV files it wrote; the real shop is `shop`. Everything is cleaned up in
//! `Drop`, even on failure.

#![allow(dead_code)]

pub mod segments;
mod shop;

// Not every test crate that includes `common` runs the shop.
#[allow(unused_imports)]
pub use shop::{SHOP_JOURNEY, shop_server};

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Answer(u16),
    /// Close the connection without a response.
    Close,
    /// Never answer; wait until the client gives up.
    Hang,
}

/// Facts the policy decides on; numbers start at 1 and skip readiness probes.
pub struct Seen {
    pub request: u64,
    /// Load connection number, counted at its first non-probe request.
    pub connection: u64,
    pub first_on_connection: bool,
    pub path: String,
}

pub type Policy = Arc<dyn Fn(&Seen) -> Action + Send + Sync>;

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub answered: AtomicU64,
    pub closed: AtomicU64,
    pub hung: AtomicU64,
    pub connections: AtomicU64,
    pub by_status: Mutex<HashMap<u16, u64>>,
}

pub struct TestServer {
    pub port: u16,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// Requests wait until this instant (a stall), if set.
    pub stall_until: Arc<Mutex<Option<Instant>>>,
}

impl TestServer {
    pub fn start(policy: Policy) -> TestServer {
        Self::start_with_stall(policy, None)
    }

    /// `stall`: (request number that triggers it, how long every request waits).
    pub fn start_with_stall(policy: Policy, stall: Option<(u64, Duration)>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let stall_until = Arc::new(Mutex::new(None));
        let (c, s, su) = (counters.clone(), stop.clone(), stall_until.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (c, p, su) = (c.clone(), policy.clone(), su.clone());
                std::thread::spawn(move || serve(stream, c, p, su, stall));
            }
        });
        TestServer {
            port,
            counters,
            stop,
            accept: Some(accept),
            stall_until,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn count(&self, f: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        f(&self.counters).load(Ordering::SeqCst)
    }

    pub fn status_count(&self, status: u16) -> u64 {
        *self
            .counters
            .by_status
            .lock()
            .expect("lock")
            .get(&status)
            .unwrap_or(&0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    c: Arc<Counters>,
    policy: Policy,
    stall_until: Arc<Mutex<Option<Instant>>>,
    stall: Option<(u64, Duration)>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut out = stream;
    let mut conn_no = 0u64;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if path == "/healthz" {
            let _ = write_response(&mut out, 200, "{}");
            continue;
        }
        let first = conn_no == 0;
        if first {
            conn_no = c.connections.fetch_add(1, Ordering::SeqCst) + 1;
        }
        let n = c.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((at, d)) = stall {
            let mut su = stall_until.lock().expect("lock");
            if n == at {
                *su = Some(Instant::now() + d);
            }
            let until = *su;
            drop(su);
            if let Some(u) = until {
                let now = Instant::now();
                if now < u {
                    std::thread::sleep(u - now);
                }
            }
        }
        let seen = Seen {
            request: n,
            connection: conn_no,
            first_on_connection: first,
            path,
        };
        match policy(&seen) {
            Action::Answer(status) => {
                *c.by_status.lock().expect("lock").entry(status).or_insert(0) += 1;
                c.answered.fetch_add(1, Ordering::SeqCst);
                if write_response(&mut out, status, r#"{"cart_id": 7, "ok": true}"#).is_err() {
                    return;
                }
            }
            Action::Close => {
                c.closed.fetch_add(1, Ordering::SeqCst);
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Action::Hang => {
                c.hung.fetch_add(1, Ordering::SeqCst);
                let mut sink = [0u8; 512];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
        }
    }
}

fn write_response(out: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Worker-Pid: {}\r\nX-Server-Version: test-1\r\n\r\n{body}",
        body.len(),
        std::process::id()
    );
    out.write_all(text.as_bytes())?;
    out.flush()
}

pub use tempfile::TempDir;

/// A temporary folder named after the test (unique, removed on drop).
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("loadgen-test-{tag}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Stops a process the test started: `signal` (the server's own way down, its
/// workers with it), then SIGKILL if it has not exited within `grace`.
pub fn stop_child(
    child: &mut std::process::Child,
    signal: nix::sys::signal::Signal,
    grace: Duration,
) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, signal);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The loadgen binary, with no history (tests must not write reports/history.sqlite
/// into the source tree) and no GitHub step summary; tests of those opt back in.
pub fn loadgen() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.env("LOADGEN_NO_HISTORY", "1")
        .env_remove("LOADGEN_HISTORY")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

/// A finished `loadgen run` with its folder.
pub struct Run {
    pub output: Output,
    pub dir: PathBuf,
    pub tmp: TempDir,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status.code(),
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    /// Rows of a CSV file in the run folder, as header -> value maps.
    pub fn csv(&self, name: &str) -> Vec<HashMap<String, String>> {
        read_csv(&self.dir.join(name))
    }

    /// The summary row of a mode and step.
    pub fn summary(&self, mode: &str, step: &str) -> HashMap<String, String> {
        self.csv("summary.csv")
            .into_iter()
            .find(|r| r["mode"] == mode && r["step"] == step)
            .unwrap_or_else(|| panic!("no summary row {mode}/{step}\n{}", self.describe()))
    }
}

pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let headers: Vec<String> = r
        .headers()
        .expect("headers")
        .iter()
        .map(str::to_string)
        .collect();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

pub fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row.get(col)
        .unwrap_or_else(|| panic!("no column {col} in {row:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("column {col} is not a number: {row:?}"))
}

/// Writes `scenario` to a temporary folder and runs `loadgen run` on it.
pub fn run_scenario(tag: &str, scenario: &str, extra: &[&str]) -> Run {
    let tmp = temp_dir(tag);
    let path = tmp.path().join(format!("{tag}.toml"));
    std::fs::write(&path, scenario).expect("write scenario");
    let dir = tmp.path().join("out");
    let output = loadgen()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&dir)
        .arg("--quiet")
        .args(extra)
        .output()
        .expect("run loadgen");
    Run { output, dir, tmp }
}

/// A scenario against an external URL with one mode called `test`.
pub fn scenario(url: &str, load: &str, journey: &str) -> String {
    format!(
        r#"name = "test"
seed = 7

[target]
ready_timeout = "10s"

[[target.modes]]
name = "test"
url = "{url}"

[load]
# A functional test on a busy machine (debug build, tests in parallel): the
# generator-lateness check has a test of its own.
late_after = "1s"
{load}

{journey}
"#
    )
}
