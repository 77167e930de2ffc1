//! Starting one worker process from the master: fork, then `fexecve` of its
//! generation's open executable ([`Executable`]: what the start path pointed at when
//! the generation began, whatever it points at now), the shared listening socket
//! placed on fd 3, the write end of a "ready" pipe on fd 4 (and, for a `#!` script,
//! the script itself on fd 5 for its interpreter), and `PR_SET_PDEATHSIG` so a
//! SIGKILLed master takes its workers with it. Then watching it: ready (a line on
//! the pipe) and exit, reported as supervisor events.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::exe::{ExecArgs, Executable};
use crate::serve::{LISTEN_FD, READY_FD};
use crate::supervisor::{Event, WorkerId};

/// The fd on which a worker started from a `#!` script finds the script (its
/// interpreter opens `/dev/fd/5`); a binary's descriptor is closed by the exec.
pub const SCRIPT_FD: RawFd = 5;

// The master's environment, handed to every worker unchanged.
unsafe extern "C" {
    static environ: *const *const libc::c_char;
}

/// What the process layer reports: a supervisor event plus, for exits, the status.
#[derive(Debug)]
pub enum Report {
    Ready(WorkerId),
    Exited(WorkerId, ExitStatus),
}

impl Report {
    pub fn event(&self) -> Event {
        match self {
            Report::Ready(id) => Event::Ready(*id),
            Report::Exited(id, status) => Event::Exited {
                id: *id,
                clean: status.success(),
                sigkill: status.signal() == Some(libc::SIGKILL),
            },
        }
    }
}

/// "exit code 3" / "killed by signal 9".
pub fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "unknown status".to_owned(),
    }
}

fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What the child needs between fork and exec, all prepared before the fork.
struct ChildSetup {
    listen: RawFd,
    ready: RawFd,
    exe: RawFd,
    script: bool,
    master: libc::pid_t,
    args: ExecArgs,
}

/// Runs in the child between fork and exec: async-signal-safe calls only, no
/// allocation. Copies go through fds >= 10 first so that a source already sitting on
/// 3, 4 or 5 cannot be overwritten before it is moved. Ends in `fexecve`: on success
/// it never returns; on failure the error reaches the parent's `spawn`.
fn place_fds_and_exec(setup: &ChildSetup) -> io::Result<()> {
    let check = |ret: libc::c_int| {
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    };
    // SAFETY: plain syscalls on descriptors inherited from the parent; the argument
    // vector was built before the fork and `environ` is the parent's, unchanged.
    unsafe {
        let listen_tmp = check(libc::fcntl(setup.listen, libc::F_DUPFD_CLOEXEC, 10))?;
        let ready_tmp = check(libc::fcntl(setup.ready, libc::F_DUPFD_CLOEXEC, 10))?;
        let mut exe = check(libc::fcntl(setup.exe, libc::F_DUPFD_CLOEXEC, 10))?;
        // dup2 clears close-on-exec on the copy: fds 3 and 4 survive exec.
        check(libc::dup2(listen_tmp, LISTEN_FD))?;
        check(libc::dup2(ready_tmp, READY_FD))?;
        if setup.script {
            exe = check(libc::dup2(exe, SCRIPT_FD))?;
        }
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        // The master may have died before prctl: then nobody would kill us.
        if libc::getppid() != setup.master {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        libc::fexecve(exe, setup.args.argv(), environ);
    }
    Err(io::Error::last_os_error())
}

/// Starts worker `id` from `exe` (`argv0` is the start path, for `ps`) and a task
/// that reports its readiness and its exit on `reports`. Returns its PID.
pub fn spawn(
    id: WorkerId,
    exe: &Executable,
    argv0: &OsStr,
    args: &[OsString],
    listener: RawFd,
    reports: mpsc::UnboundedSender<Report>,
) -> io::Result<u32> {
    let exec_args = ExecArgs::new(argv0, args).map_err(io::Error::other)?;
    let (ready_read, ready_write) = pipe_cloexec()?;
    let setup = ChildSetup {
        listen: listener,
        ready: ready_write.as_raw_fd(),
        exe: exe.fd(),
        script: exe.is_script(),
        master: std::process::id() as libc::pid_t,
        args: exec_args,
    };
    // Never executed: the child replaces itself with `fexecve` in `pre_exec`.
    let mut cmd = Command::new(argv0);
    // Own process group: a terminal's Ctrl-C reaches the master only, which then
    // drains the workers in order.
    cmd.stdin(Stdio::null())
        .kill_on_drop(false)
        .process_group(0);
    // SAFETY: the closure only makes async-signal-safe syscalls (see above).
    unsafe {
        cmd.pre_exec(move || place_fds_and_exec(&setup));
    }
    let child = cmd.spawn()?;
    drop(ready_write); // only the worker holds the write end now: EOF when it dies
    let pid = child.id().unwrap_or(0);
    let ready = pipe::Receiver::from_owned_fd(ready_read)?;
    tokio::spawn(watch(id, child, ready, reports));
    Ok(pid)
}

async fn watch(
    id: WorkerId,
    mut child: Child,
    mut ready: pipe::Receiver,
    reports: mpsc::UnboundedSender<Report>,
) {
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    let announced = loop {
        tokio::select! {
            read = ready.read(&mut buf) => match read {
                Ok(0) | Err(_) => break false, // closed without a word: it is dying
                Ok(n) => {
                    line.extend_from_slice(&buf[..n]);
                    if line.contains(&b'\n') {
                        break line.starts_with(b"ready");
                    }
                }
            },
            status = child.wait() => {
                let status = status.unwrap_or_else(|_| ExitStatus::from_raw(1 << 8));
                let _ = reports.send(Report::Exited(id, status));
                return;
            }
        }
    };
    drop(ready);
    if announced {
        let _ = reports.send(Report::Ready(id));
    }
    let status = child
        .wait()
        .await
        .unwrap_or_else(|_| ExitStatus::from_raw(1 << 8));
    let _ = reports.send(Report::Exited(id, status));
}
