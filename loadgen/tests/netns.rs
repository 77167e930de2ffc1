//! Execution segments across real network hops: the test builds its own little
//! network (network namespaces joined by veth pairs to a bridge that lives in a hub
//! namespace, so the host's own interfaces and routes are never touched): one
//! namespace runs shop-server in cluster mode, three others run one `loadgen run
//! --shard I/3` each, released together by a start file. The merged run equals the
//! scenario's totals (every planned user accounted for once), chaos (one kill) ran
//! once; a second round in which one segment is SIGKILLed mid-run makes the merge
//! fail with exit 3, naming that segment. Root only (namespaces need CAP_SYS_ADMIN),
//! and `ip` (iproute2) must be there; elsewhere the test says why it skipped. Names
//! carry this process's PID; everything is torn down in `Drop`, even on failure.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::segments::{self, ShopCluster};
use common::temp_dir;

/// The test's network: namespaces `<p>-hub` (bridge), `<p>-srv`, `<p>-s0..2`.
struct Net {
    prefix: String,
    made: Vec<String>,
}

const SEGMENTS: u32 = 3;

impl Net {
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Builds it: every member namespace gets `10.77.0.<k>/24` on a veth whose other
    /// end is a port of the hub's bridge.
    fn build() -> Net {
        let mut net = Net {
            prefix: format!("stp{}", std::process::id()),
            made: Vec::new(),
        };
        let hub = net.ns("hub");
        net.add_ns(&hub);
        ip(&[
            "netns", "exec", &hub, "ip", "link", "add", "br0", "type", "bridge",
        ]);
        ip(&["netns", "exec", &hub, "ip", "link", "set", "br0", "up"]);
        let members: Vec<String> = std::iter::once("srv".to_string())
            .chain((0..SEGMENTS).map(|i| format!("s{i}")))
            .collect();
        for (k, member) in members.iter().enumerate() {
            let ns = net.ns(member);
            net.add_ns(&ns);
            // Short interface names (15 bytes at most), unique inside each namespace.
            let (outer, inner) = (format!("h{k}"), "eth0".to_string());
            ip(&[
                "netns", "exec", &hub, "ip", "link", "add", &outer, "type", "veth", "peer", "name",
                &inner, "netns", &ns,
            ]);
            ip(&[
                "netns", "exec", &hub, "ip", "link", "set", &outer, "master", "br0",
            ]);
            ip(&["netns", "exec", &hub, "ip", "link", "set", &outer, "up"]);
            let addr = format!("10.77.0.{}/24", k + 1);
            ip(&[
                "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
            ]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        net
    }

    fn add_ns(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.made.push(name.to_string());
    }

    /// `ip netns exec NS` as a command prefix.
    fn exec<'a>(&self, ns: &'a str) -> [&'a str; 4] {
        ["ip", "netns", "exec", ns]
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces (veths, the bridge) with it.
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why this machine cannot run the test, if it cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: network namespaces need CAP_SYS_ADMIN (CI runs as root)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip` (iproute2) is not installed; scripts/test installs it in CI".into()),
    }
}

/// Segment processes, killed on drop (before the namespaces go).
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Runs the three segments of one round; `kill` SIGKILLs segment 1 once the load is
/// under way. Returns the segments' folders.
fn round(net: &Net, scenario: &Path, dir: &Path, kill: bool) -> Vec<PathBuf> {
    let start = dir.join("START");
    let dirs: Vec<PathBuf> = (0..SEGMENTS)
        .map(|i| dir.join(format!("seg-{i}")))
        .collect();
    let names: Vec<String> = (0..SEGMENTS).map(|i| net.ns(&format!("s{i}"))).collect();
    let mut running = Running(Vec::new());
    for (i, d) in dirs.iter().enumerate() {
        let prefix = net.exec(&names[i]);
        let mut cmd = segments::segment_command(&prefix, scenario, i as u32, SEGMENTS, &start, d);
        running.0.push(cmd.spawn().expect("start a segment"));
    }
    segments::release(&start, SEGMENTS);
    if kill {
        // The release plus its 1.5 s lead, then a second of load.
        std::thread::sleep(Duration::from_millis(2500));
        let victim = &mut running.0[1];
        assert!(
            matches!(victim.try_wait(), Ok(None)),
            "segment 1 ended before it could be killed"
        );
        victim.kill().expect("SIGKILL segment 1");
    }
    for (i, c) in running.0.iter_mut().enumerate() {
        let status = c.wait().expect("wait for a segment");
        if !(kill && i == 1) {
            assert!(
                status.success(),
                "segment {i}/3 failed: {status} ({})\n{}",
                dirs[i].display(),
                segments::segment_log(&dirs[i])
            );
        }
    }
    dirs
}

#[test]
fn segments_in_three_namespaces_merge_into_the_single_run() {
    if let Some(why) = cannot_run() {
        eprintln!("netns test skipped: {why}");
        return;
    }
    let net = Net::build();
    let tmp = temp_dir("netns");
    let addr: SocketAddr = "10.77.0.1:8080".parse().expect("addr");
    let srv = net.ns("srv");
    let server = ShopCluster::spawn(&net.exec(&srv), addr, tmp.path());
    let users = 60;
    let scenario = tmp.path().join("segments.toml");
    std::fs::write(&scenario, segments::scenario(addr, &server.pidfile, users)).expect("write");

    // Round 1: every segment finishes; the merge (run where the target is reachable,
    // for the invariant checks) is the single run.
    let one = tmp.path().join("round-1");
    let dirs = round(&net, &scenario, &one, false);
    let out = one.join("merged");
    let merged = Command::new("ip")
        .args(&net.exec(&net.ns("s0"))[1..])
        .arg(env!("CARGO_BIN_EXE_loadgen"))
        .arg("merge")
        .arg(&out)
        .args(&dirs)
        // No history in the source tree (the merge records one, as a run does).
        .arg("--no-history")
        .output()
        .expect("run loadgen merge");
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}",
        segments::describe(&merged)
    );
    let m = &segments::rows(&out, "modes.csv")[0];
    let ended: f64 = [
        "users_completed",
        "users_aborted",
        "users_cut",
        "users_never_started",
    ]
    .iter()
    .map(|c| common::num(m, c))
    .sum();
    assert_eq!(common::num(m, "users_planned"), users as f64, "{m:?}");
    assert_eq!(common::num(m, "users_completed"), users as f64, "{m:?}");
    assert_eq!(ended, users as f64, "{m:?}");
    for col in ["requests", "ok", "dropped"] {
        let sum: f64 = dirs.iter().map(|d| segments::total(d, col)).sum();
        assert_eq!(segments::total(&out, col), sum, "summary column {col}");
    }
    // Five requests per user of the journey, all answered, none dropped.
    assert_eq!(segments::total(&out, "requests"), users as f64 * 5.0);
    assert_eq!(segments::total(&out, "dropped"), 0.0);
    let kills = segments::rows(&out, "events.csv")
        .into_iter()
        .filter(|r| r["kind"] == "kill")
        .count();
    assert_eq!(kills, 1, "chaos must run exactly once across the segments");
    let inv = segments::rows(&out, "invariants.csv");
    assert!(
        !inv.is_empty() && inv.iter().all(|r| r["holds"] == "true"),
        "{inv:?}"
    );

    // Round 2: segment 1 is killed mid-run; the merge names it and exits 3.
    let two = tmp.path().join("round-2");
    let dirs = round(&net, &scenario, &two, true);
    let failed = segments::merge(&two.join("merged"), &dirs, &["--no-checks"]);
    assert_eq!(
        failed.status.code(),
        Some(3),
        "{}",
        segments::describe(&failed)
    );
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("segment 1/3 (") && err.contains("did not finish"),
        "{err}"
    );
    drop(server);
    drop(net);
}
