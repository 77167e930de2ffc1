//! Process limits and self-measurement: raising the open-file soft limit to the
//! hard one, reading this process's CPU time and peak RSS (getrusage), and the
//! source-address plan for loopback targets (127.0.0.x, each with its own ~28,000
//! ephemeral ports). Owns nothing else.

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
    fn usage_is_readable() {
        let (_cpu, rss) = self_usage();
        assert!(rss > 0);
        assert!(raise_nofile() >= 1024);
    }
}
