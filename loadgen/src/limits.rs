//! Process limits and self-measurement: raising the open-file soft limit to the
//! hard one, checking before any load that the limits can hold the planned users
//! (open files per process, ephemeral ports per source address), reading this
//! process's CPU time and peak RSS (getrusage), and the source-address plan for
//! loopback targets (127.0.0.x, each with its own ~28,000 ephemeral ports). Owns
//! nothing else.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::net::{IpAddr, Ipv4Addr};

/// Raises the open-file soft limit to the hard limit; returns the limit in force.
pub fn raise_nofile() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// Files a loadgen process needs beside its users' connections (runtime, pipes, the
/// run folder, the readiness probe, invariant checks).
pub const FD_MARGIN: u64 = 64;

/// Raises the open-file limit and checks that it holds `users` connections in this
/// process; the error names the limit and how to raise it.
pub fn check_files(users: u64) -> Result<u64, String> {
    let limit = raise_nofile();
    let needed = users + FD_MARGIN;
    if limit < needed {
        return Err(format!(
            "loadgen's open-file limit is {limit}, but one loadgen process would hold {users} \
             connections plus about {FD_MARGIN} files of its own: raise the limit (`ulimit -n \
             {needed}`, LimitNOFILE= in systemd) or set `load.users_per_process` to at most {}",
            limit.saturating_sub(FD_MARGIN).max(1)
        ));
    }
    Ok(limit)
}

/// Checks that `users` connections to `target` fit in the ephemeral ports of the
/// source addresses loadgen will use (`sources`; the kernel picks one for a
/// non-loopback target).
pub fn check_ports(users: u64, target: IpAddr, sources: u8) -> Result<(), String> {
    let Some(per_source) = ephemeral_ports() else {
        return Ok(());
    };
    let addresses = source_addresses(target, sources).len().max(1) as u64;
    let capacity = per_source * addresses;
    if users > capacity {
        return Err(format!(
            "{users} users need {users} connections to {target}, but {addresses} source \
             address(es) x {per_source} ephemeral ports hold only {capacity}: raise \
             `load.source_addresses` (loopback targets), widen net.ipv4.ip_local_port_range, \
             or run shards on several machines"
        ));
    }
    Ok(())
}

/// Ephemeral ports per (source, destination) pair, from the kernel's range.
fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    Some(hi.saturating_sub(lo) + 1)
}

/// How much the scheduler favours a thread that runs users over the server under test
/// (a nice value; each step is ~25% more CPU share under contention).
const USER_THREAD_NICE: libc::c_int = -5;

/// Asks the scheduler to favour the calling thread, which runs users: on a machine
/// that also runs the server, the instrument must not be starved by what it
/// measures, or requests go out late and the server is spared the load the schedule
/// demands. Needs CAP_SYS_NICE (root); without it the thread keeps its priority, and
/// send lateness shows whether that mattered.
pub fn favour_this_thread() -> bool {
    // SAFETY: setpriority on this thread's own id; no memory is passed.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, USER_THREAD_NICE) == 0
    }
}

/// (CPU seconds user + system, peak RSS in KiB) of this process so far.
pub fn self_usage() -> (f64, u64) {
    // SAFETY: getrusage writes into the zeroed struct we own; no other invariants.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (0.0, 0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        tv(ru.ru_utime) + tv(ru.ru_stime),
        ru.ru_maxrss.max(0) as u64,
    )
}

/// Source addresses to spread connections to a loopback target over; empty for
/// other targets (the kernel picks the source).
pub fn source_addresses(target: IpAddr, count: u8) -> Vec<Ipv4Addr> {
    match target {
        IpAddr::V4(v4) if v4.is_loopback() => (1..=count.max(1))
            .map(|i| Ipv4Addr::new(127, 0, 0, i))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a host names the loopback interface (127.0.0.0/8, ::1, localhost).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.9.9.9"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("localhost"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("example.com"));
    }

    #[test]
    fn limits_that_cannot_hold_the_users_are_named() {
        let limit = raise_nofile();
        let err = check_files(limit).expect_err("more users than files");
        assert!(
            err.contains(&format!("open-file limit is {limit}")),
            "{err}"
        );
        assert!(check_files(limit.saturating_sub(FD_MARGIN + 1).max(1)).is_ok() || limit < 128);
        let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
        assert!(check_ports(1_000, loopback, 1).is_ok());
        let err = check_ports(10_000_000, loopback, 2).expect_err("too many for 2 sources");
        assert!(err.contains("2 source address(es)"), "{err}");
    }

    #[test]
    fn usage_is_readable() {
        let (_cpu, rss) = self_usage();
        assert!(rss > 0);
        assert!(raise_nofile() >= 1024);
    }
}
