//! Support for the execution-segment tests (`merge.rs`, `netns.rs`): a clustered
//! `shop-server` the test starts itself (optionally inside a network namespace),
//! stopped in `Drop`; the scenario every segment runs (a `url` target with a pidfile
//! for the chaos segment, the shop journey, one kill); `loadgen run --shard` and
//! `loadgen merge` command lines; sums over run folders' CSV files.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{SHOP_JOURNEY, loadgen, num, read_csv, shop_server, stop_child};

/// A clustered shop-server (2 workers), stopped with SIGINT (then SIGKILL) on drop.
pub struct ShopCluster {
    child: Child,
    pub addr: SocketAddr,
    pub pidfile: PathBuf,
}

impl ShopCluster {
    /// Starts it on loopback `addr`, with its database and pidfile in `dir`; waits
    /// until `/healthz` answers.
    pub fn start(addr: SocketAddr, dir: &Path) -> ShopCluster {
        let server = Self::spawn(&[], addr, dir);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(addr) {
            assert!(
                Instant::now() < deadline,
                "shop-server never got ready on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Starts it on `addr` through `prefix` (e.g. `ip netns exec NAME`), with its
    /// database and pidfile in `dir`, without waiting (the segments wait for it).
    pub fn spawn(prefix: &[&str], addr: SocketAddr, dir: &Path) -> ShopCluster {
        let pidfile = dir.join("shop.pid");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(shop_server());
                c
            }
            None => Command::new(shop_server()),
        };
        cmd.args(["--mode", "cluster", "--workers", "2", "--listen"])
            .arg(addr.to_string())
            .arg("--db")
            .arg(dir.join("shop.db"))
            .arg("--pidfile")
            .arg(&pidfile)
            .args([
                "--products",
                "20",
                "--stock",
                "100000",
                "--checkout-io",
                "5ms",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start shop-server");
        ShopCluster {
            child,
            addr,
            pidfile,
        }
    }
}

fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

impl Drop for ShopCluster {
    fn drop(&mut self) {
        stop_child(
            &mut self.child,
            nix::sys::signal::Signal::SIGINT,
            Duration::from_secs(10),
        );
    }
}

/// The scenario of the segment tests: `users` users over ~2 s against `addr`, one
/// worker killed at 1 s (chaos segment only), thresholds judged on the merged run.
pub fn scenario(addr: SocketAddr, pidfile: &Path, users: u64) -> String {
    format!(
        r#"name = "segments"
seed = 15
thresholds = ["cluster.dropped == 0", "cluster.lost_orders == 0", "cluster.duplicate_orders == 0"]

[target]
ready_path = "/healthz"
ready_timeout = "20s"

[[target.modes]]
name = "cluster"
url = "http://{addr}"
pidfile = "{pidfile}"
deploy_strategy = "rolling restart by the master"

[load]
users = {users}
timeout = "10s"
max_duration = "40s"
# Functional test on a busy machine (debug build, tests in parallel).
late_after = "1s"

[load.arrival]
stages = [{{ duration = "2s", rate = {rate} }}]

[load.retry]
count = 3
backoff = "100ms"

[[chaos]]
action = "kill"
at = "1s"
{SHOP_JOURNEY}"#,
        pidfile = pidfile.display(),
        rate = users / 2,
    )
}

/// `loadgen run SCENARIO --shard I/N --start-file START --out DIR --quiet`, through
/// `prefix`; `--chaos` for segment 0.
pub fn segment_command(
    prefix: &[&str],
    scenario: &Path,
    index: u32,
    count: u32,
    start_file: &Path,
    out: &Path,
) -> Command {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(env!("CARGO_BIN_EXE_loadgen"));
            // As `loadgen()` does: no history in the source tree.
            c.env("LOADGEN_NO_HISTORY", "1")
                .env_remove("LOADGEN_HISTORY")
                .env_remove("GITHUB_STEP_SUMMARY");
            c
        }
        None => loadgen(),
    };
    cmd.arg("--threads")
        .arg("1")
        .arg("run")
        .arg(scenario)
        .arg("--shard")
        .arg(format!("{index}/{count}"))
        .arg("--start-file")
        .arg(start_file)
        .arg("--start-timeout")
        .arg("60")
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .arg("--allow-remote");
    if index == 0 {
        cmd.arg("--chaos");
    }
    // Its output goes to OUT.log, which a failed assertion shows (`segment_log`).
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).expect("segment folder's parent");
    }
    let log = std::fs::File::create(out.with_extension("log")).expect("segment log");
    let err = log.try_clone().expect("segment log");
    cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    cmd
}

/// What a segment run by `segment_command` printed.
pub fn segment_log(out: &Path) -> String {
    std::fs::read_to_string(out.with_extension("log")).unwrap_or_default()
}

/// Releases the segments once all `count` wait (their `PATH.ready-I` markers are
/// there): writes this clock's now (Unix ms) into `path`, atomically.
pub fn release(path: &Path, count: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..count {
        let marker = PathBuf::from(format!("{}.ready-{i}", path.display()));
        while !marker.exists() {
            assert!(
                Instant::now() < deadline,
                "segment {i} never waited for the start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, now.to_string()).expect("write start file");
    std::fs::rename(&tmp, path).expect("publish start file");
}

/// `loadgen merge OUT DIRS...` (checks against the target unless `no_checks`).
pub fn merge(out: &Path, dirs: &[PathBuf], extra: &[&str]) -> std::process::Output {
    loadgen()
        .arg("merge")
        .arg(out)
        .args(dirs)
        .args(extra)
        .output()
        .expect("run loadgen merge")
}

pub fn describe(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub type Row = HashMap<String, String>;

pub fn rows(dir: &Path, file: &str) -> Vec<Row> {
    read_csv(&dir.join(file))
}

/// The `all` summary row's `col` of a run folder.
pub fn total(dir: &Path, col: &str) -> f64 {
    let all = rows(dir, "summary.csv")
        .into_iter()
        .find(|r| r["step"] == "all")
        .unwrap_or_else(|| panic!("no `all` row in {}", dir.display()));
    num(&all, col)
}

/// `col` of timeseries.csv per second.
pub fn per_second(dir: &Path, col: &str) -> std::collections::BTreeMap<u32, f64> {
    let mut out = std::collections::BTreeMap::new();
    for r in rows(dir, "timeseries.csv") {
        *out.entry(num(&r, "second") as u32).or_insert(0.0) += num(&r, col);
    }
    out
}
