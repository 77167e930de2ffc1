//! Reading the server's processes from `/proc`: who a process's children are, whether a
//! process still lives, and what it costs in CPU time and memory. This module only reads;
//! it never signals (that is `chaos`) and keeps no history (that is `watcher`). Every
//! function treats a process that vanished between two reads as gone, not as an error,
//! because the processes it looks at are being killed on purpose.

use std::fs;
use std::io;
use std::sync::OnceLock;

/// What one line of `/proc/<pid>/stat` tells about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    /// `R`, `S`, `D`, `T` (stopped), `Z` (zombie: exited, not yet reaped), ...
    pub state: char,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
    /// Start time after boot, in clock ticks: with the PID, it names one process even when
    /// the kernel reuses the PID later.
    pub start_ticks: u64,
    /// The wait status the kernel keeps for a zombie (field 52, Linux >= 3.5).
    pub exit_status: Option<i32>,
}

impl ProcStat {
    /// Resident memory in KiB.
    pub fn rss_kb(&self) -> u64 {
        self.rss_pages * page_size() / 1024
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) may itself hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // `rest[0]` is field 3 (state); field N sits at rest[N - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        pid,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        cpu_ticks: num(14)? + num(15)?,
        start_ticks: num(22)?,
        rss_pages: num(24)?,
        exit_status: field(52).and_then(|f| f.parse().ok()),
    })
}

/// Reads one process's stat line; `Ok(None)` when the process does not exist (any more).
pub fn read_stat(pid: i32) -> io::Result<Option<ProcStat>> {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => Ok(parse_stat(&text)),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The direct children of `pid`, from every thread's `children` file (each thread lists
/// the children it forked, and a tokio master may fork from any of its threads). Sorted,
/// without duplicates. Empty when the process is gone.
pub fn children(pid: i32) -> io::Result<Vec<i32>> {
    let tasks = match fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(dir) => dir,
        Err(e) if gone(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut kids = Vec::new();
    for task in tasks {
        let path = match task {
            Ok(task) => task.path().join("children"),
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        match fs::read_to_string(&path) {
            Ok(text) => kids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            ),
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    kids.sort_unstable();
    kids.dedup();
    Ok(kids)
}

/// A process's command line, its arguments joined by spaces (`node /srv/app.js`); a
/// process that renamed itself (PM2's workers, gunicorn's) shows its new title. `None`
/// when it is gone; empty for a zombie or a kernel thread.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw);
    Some(
        text.split('\0')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Describes a wait status the way `events.csv` shows it: `code 0`, `signal 9 (SIGKILL)`.
pub fn describe_wait_status(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        match nix::sys::signal::Signal::try_from(sig) {
            Ok(name) => format!("signal {sig} ({})", name.as_str()),
            Err(_) => format!("signal {sig}"),
        }
    } else {
        format!("code {}", libc::WEXITSTATUS(status))
    }
}

/// Converts clock ticks (the unit of CPU times in `/proc`) to seconds.
pub fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / clock_ticks_per_second() as f64
}

fn gone(e: &io::Error) -> bool {
    // ESRCH shows up when a task directory is read while its process exits.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf only reads a configuration value.
    *TICKS.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as u64,
        _ => 100,
    })
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf only reads a configuration value.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as u64,
        _ => 4096,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "4242 (shop server (w)) S 4200 4242 4200 0 -1 4194560 1201 0 0 0 \
        150 37 0 0 20 0 2 0 987654 12345678 1523 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17608 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 9";

    #[test]
    fn parses_fields_after_a_command_name_with_spaces_and_parens() {
        let stat = parse_stat(LINE).expect("a valid stat line parses");
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.ppid, 4200);
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.cpu_ticks, 187);
        assert_eq!(stat.start_ticks, 987654);
        assert_eq!(stat.rss_pages, 1523);
        assert_eq!(stat.exit_status, Some(9));
    }

    #[test]
    fn a_truncated_line_is_rejected_not_misread() {
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process_and_its_children() {
        let me = std::process::id() as i32;
        let stat = read_stat(me)
            .expect("read own stat")
            .expect("own process exists");
        assert_eq!(stat.pid, me);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let kids = children(me).expect("read children");
        let child_pid = child.id() as i32;
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            kids.contains(&child_pid),
            "children {kids:?} lack {child_pid}"
        );
        assert_eq!(read_stat(child_pid).expect("read reaped child"), None);
    }

    #[test]
    fn wait_statuses_read_like_a_shell_would_say_them() {
        assert_eq!(describe_wait_status(0), "code 0");
        assert_eq!(describe_wait_status(1 << 8), "code 1");
        assert_eq!(describe_wait_status(9), "signal 9 (SIGKILL)");
    }
}
