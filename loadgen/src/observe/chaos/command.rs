//! A deploy by command (`pm2 reload all`, `kubectl rollout restart ...`, `systemctl
//! reload ...`): starts the command in its own process group with no shell, logs the
//! `deploy` event (PID of the command) as it starts and `deploy-ended` (exit status and
//! how long it ran) as it ends, and kills the group by its PID if it overruns its time
//! limit. The command runs beside the rest of the timetable, so a kill due during a
//! long rollout still fires on time. What the command printed is kept (its last
//! kilobytes) to say why it failed.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use crate::observe::events::{EventLog, Kind};
use crate::observe::procs;
use crate::plan::chaos::DeployCommand;

/// How much of the command's output is kept to explain a failure.
const KEEP_OUTPUT: usize = 2048;
/// How long the output is awaited after the command exited (a daemon it started may
/// hold the pipe open for ever).
const OUTPUT_GRACE: Duration = Duration::from_millis(300);

/// Starts `cmd` and logs the `deploy` event (with `installed`, what the deploy put in
/// place, when not empty). The task ends when the command has ended (or was killed)
/// and its `deploy-ended` event is logged: `Err` says why the deploy failed.
pub(super) fn start(
    cmd: &DeployCommand,
    installed: &str,
    events: &EventLog,
) -> Result<JoinHandle<Result<(), String>>, String> {
    let shown = cmd.argv.join(" ");
    let (program, args) = cmd
        .argv
        .split_first()
        .ok_or_else(|| "the deploy command is empty".to_string())?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start deploy command `{shown}`: {e}"))?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let detail = match installed {
        "" => format!("command `{shown}`"),
        what => format!("command `{shown}`, {what}"),
    };
    events.record_at(started, Kind::Deploy, pid, detail);
    let output = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        child
            .stdout
            .take()
            .map(|out| keep_tail(out, Arc::clone(&output))),
        child
            .stderr
            .take()
            .map(|err| keep_tail(err, Arc::clone(&output))),
    ];
    let events = events.clone();
    let limit = cmd.timeout;
    Ok(tokio::spawn(async move {
        let waited = tokio::time::timeout(limit, child.wait()).await;
        let took = started.elapsed().as_secs_f64();
        let (ok, mut detail) = match waited {
            Ok(Ok(status)) if status.success() => (true, format!("exit code 0 after {took:.2}s")),
            Ok(Ok(status)) => (
                false,
                format!(
                    "{} after {took:.2}s",
                    procs::describe_wait_status(status.into_raw())
                ),
            ),
            Ok(Err(e)) => (false, format!("waiting for it failed: {e}")),
            Err(_) => {
                // Its own process group, named by its PID: nothing else is in it.
                let killed = match killpg(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) => format!("killed its process group {pid}"),
                    Err(errno) => format!("killing its process group {pid} failed: {errno}"),
                };
                let _ = child.wait().await;
                (
                    false,
                    format!(
                        "still running after its timeout of {}s: {killed}",
                        limit.as_secs_f64()
                    ),
                )
            }
        };
        let deadline = tokio::time::Instant::now() + OUTPUT_GRACE;
        for mut reader in readers.into_iter().flatten() {
            if tokio::time::timeout_at(deadline, &mut reader)
                .await
                .is_err()
            {
                // A process the command left behind holds the pipe: stop reading.
                reader.abort();
            }
        }
        if !ok {
            let text = output
                .lock()
                .map(|o| String::from_utf8_lossy(&o).into_owned())
                .unwrap_or_default();
            if let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) {
                detail = format!("{detail}; it said: {}", last.trim());
            }
        }
        events.record(Kind::DeployEnded, pid, detail.clone());
        match ok {
            true => Ok(()),
            false => Err(format!("deploy command `{shown}` failed: {detail}")),
        }
    }))
}

/// Reads `from` to its end, keeping the last [`KEEP_OUTPUT`] bytes in `into`.
fn keep_tail<R: AsyncRead + Unpin + Send + 'static>(
    mut from: R,
    into: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut kept) = into.lock() {
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(KEEP_OUTPUT);
                kept.drain(..excess);
            }
        }
    })
}
