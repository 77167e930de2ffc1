//! Deploy helpers for the cluster tests: an atomic symlink swap (what an operator's
//! deploy does to the start path), executable wrapper scripts standing for builds,
//! and views of the master's workers (their PIDs, their executables, who answers).

use std::collections::BTreeSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Server, TempDir, WAIT, children_of, raw_exchange};

/// Points `link` at `target` atomically (a deploy).
pub fn swap_link(dir: &TempDir, link: &Path, target: &Path) {
    let tmp = dir.path().join("link.tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).expect("symlink");
    std::fs::rename(&tmp, link).expect("swap symlink");
}

/// Writes an executable `#!/bin/sh` script `name` in `dir`.
pub fn script(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The master's current worker PIDs.
pub fn workers(server: &Server) -> BTreeSet<u32> {
    children_of(server.pid).into_iter().collect()
}

/// Waits (up to [`WAIT`]) until the master has exactly `n` worker processes (exited
/// ones disappear once reaped); returns them.
pub async fn wait_workers(server: &Server, n: usize) -> BTreeSet<u32> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = workers(server);
        if now.len() == n {
            return now;
        }
        if Instant::now() > deadline {
            panic!(
                "expected {n} workers within {WAIT:?}, have {now:?}; log:\n{}",
                server.log.lines().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The file a process runs (`/proc/<pid>/exe`).
pub fn exe_of(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default()
}

/// Asks `/healthz` on fresh connections (at most 400 times) until every one of
/// `pids` has answered; returns each answering PID with the version it reported.
/// Panics, naming who answered what, if one of them never does.
pub fn versions_of(server: &Server, pids: &BTreeSet<u32>) -> Vec<(u32, String)> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..400 {
        if pids.iter().all(|p| seen.contains_key(p)) {
            break;
        }
        let (pid, version) = pid_and_version(server);
        seen.insert(pid, version);
    }
    let missing: Vec<&u32> = pids.iter().filter(|p| !seen.contains_key(p)).collect();
    assert!(
        missing.is_empty(),
        "workers {missing:?} never answered in 400 connections; answers came from {seen:?}"
    );
    seen.into_iter().collect()
}

/// One `GET /healthz` on a fresh connection: the answering worker's PID and version.
pub fn pid_and_version(server: &Server) -> (u32, String) {
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let answer = raw_exchange(server.addr, request, WAIT).to_ascii_lowercase();
    let header = |name: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    assert!(
        answer.starts_with("http/1.1 200"),
        "healthz answered {answer:?}"
    );
    let pid = header("x-worker-pid:").parse().unwrap_or(0);
    (pid, header("x-server-version:"))
}
