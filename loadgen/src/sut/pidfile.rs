//! Finding the master of a server loadgen did not start, from its pidfile, every time
//! chaos needs it: the file is read again before each action (a process manager may
//! have restarted the master), and the PID it names must be a live process that
//! started before the file was written, or it is a stale file whose PID the kernel
//! has since given to some other process. Each refusal says why, for the event log.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::observe::procs;

/// Slack between a master starting and it writing its pidfile, and for clock rounding.
const STARTUP_SLACK: Duration = Duration::from_secs(2);

/// The live PID that `path` names, or why there is none.
pub(crate) fn resolve(path: &Path) -> Result<i32, String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read pidfile {shown}: {e}"))?;
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("pidfile {shown} holds `{}`, not a PID", text.trim()))?;
    let stat = match procs::read_stat(pid) {
        Ok(Some(stat)) if stat.state != 'Z' => stat,
        _ => {
            return Err(format!(
                "pidfile {shown} names pid {pid}, which is not running (stale pidfile)"
            ));
        }
    };
    let written = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot read the time pidfile {shown} was written: {e}"))?;
    if let Some(started) = start_time(stat.start_ticks) {
        if started > written + STARTUP_SLACK {
            return Err(format!(
                "pidfile {shown} names pid {pid}, but that process started {:.1}s after the file was written: the PID was reused (stale pidfile)",
                started
                    .duration_since(written)
                    .unwrap_or_default()
                    .as_secs_f64()
            ));
        }
    }
    Ok(pid)
}

/// Wall-clock start of a process from its start time in ticks after boot.
fn start_time(start_ticks: u64) -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let boot: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let after_boot = Duration::from_secs_f64(procs::ticks_to_seconds(start_ticks));
    Some(UNIX_EPOCH + Duration::from_secs(boot) + after_boot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_pid_written_after_it_started_resolves() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.pid");
        std::fs::write(&path, format!("{}\n", std::process::id())).expect("write");
        assert_eq!(resolve(&path), Ok(std::process::id() as i32));
    }

    #[test]
    fn stale_missing_and_garbled_pidfiles_say_why() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.pid");
        let missing = resolve(&path).expect_err("no file");
        assert!(missing.contains("cannot read pidfile"), "{missing}");
        std::fs::write(&path, "nope").expect("write");
        let garbled = resolve(&path).expect_err("garbled");
        assert!(garbled.contains("not a PID"), "{garbled}");
        // A process that has exited and been reaped: its PID names nothing now.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let dead = child.id();
        child.wait().expect("wait");
        std::fs::write(&path, dead.to_string()).expect("write");
        let stale = resolve(&path).expect_err("dead pid");
        assert!(stale.contains("stale pidfile"), "{stale}");
    }

    #[test]
    fn a_pid_started_after_its_file_was_written_is_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.pid");
        std::fs::write(&path, std::process::id().to_string()).expect("write");
        // Backdate the file to before this process started.
        let old = SystemTime::now() - Duration::from_secs(3600);
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(old).expect("set mtime");
        let reused = resolve(&path).expect_err("reused pid");
        assert!(reused.contains("PID was reused"), "{reused}");
    }
}
