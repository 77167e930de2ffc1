//! The target's process plumbing: spawning the server command with its output in the
//! run folder's log (appended to after a restart), the readiness probe (one GET on a
//! fresh connection), and what chaos may do to a server loadgen started: wait for it to
//! exit and start it again, as a naive supervisor would.

use super::{Server, TargetError};
use crate::observe::chaos::{ChaosError, ServerControl};
use crate::observe::procs;
use crate::observe::watcher::WorkerSet;
use crate::plan::chaos::Release;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// Starts `argv` with its output going to `log` (appended to after a restart).
pub(super) fn spawn(
    mode: &str,
    argv: &[String],
    log: &Path,
    append: bool,
) -> Result<Child, TargetError> {
    let io = |source| TargetError::Io {
        what: log.display().to_string(),
        source,
    };
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .map_err(io)?;
    let err_file = log_file.try_clone().map_err(io)?;
    let program = argv.first().ok_or_else(|| TargetError::Spawn {
        mode: mode.to_string(),
        program: String::new(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
    })?;
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        // Own process group: a Ctrl-C at the terminal reaches loadgen only, and
        // loadgen stops the server itself, after writing what it measured.
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn().map_err(|source| TargetError::Spawn {
        mode: mode.to_string(),
        program: program.clone(),
        source,
    })
}

impl ServerControl for Server {
    fn install(&mut self, release: &Release) -> Result<String, String> {
        match &self.release {
            Some(files) => files
                .install(release)
                .map_err(|e| format!("installing the release failed: {e}")),
            None => Err("the harness did not start this server: nothing to install".into()),
        }
    }

    fn root_pid(&self) -> Result<i32, String> {
        if let Some(path) = &self.pidfile {
            return super::pidfile::resolve(path);
        }
        match (&self.child, self.pid.and_then(|p| i32::try_from(p).ok())) {
            (_, Some(pid)) => Ok(pid),
            (Some(_), None) => Err("the server is down (being restarted)".into()),
            (None, None) => Err(
                "an external target without a `pidfile`: chaos cannot find its processes".into(),
            ),
        }
    }

    fn worker_set(&self) -> WorkerSet {
        self.workers.clone()
    }

    fn supervised(&self) -> bool {
        self.supervise && self.child.is_some()
    }

    async fn wait_exit(&mut self) -> Result<String, ChaosError> {
        let pid = self.root_pid().unwrap_or(0);
        let child = self.child.as_mut().ok_or_else(|| ChaosError::Wait {
            pid,
            reason: "the harness did not start this server".into(),
        })?;
        let status = child.wait().await.map_err(|e| ChaosError::Wait {
            pid,
            reason: e.to_string(),
        })?;
        self.pid = None;
        Ok(procs::describe_wait_status(status.into_raw()))
    }

    async fn restart(&mut self) -> Result<i32, ChaosError> {
        let failed = |e: TargetError| ChaosError::Restart {
            reason: e.to_string(),
        };
        let child = spawn(&self.mode, &self.argv, &self.log, true).map_err(failed)?;
        self.pid = child.id();
        self.child = Some(child);
        let (path, limit) = self
            .ready
            .clone()
            .unwrap_or_else(|| ("/".to_string(), Duration::from_secs(30)));
        self.wait_ready(&path, limit).await.map_err(failed)?;
        self.root_pid()
            .map_err(|reason| ChaosError::Restart { reason })
    }
}

/// One GET on a fresh connection; true on a 2xx.
pub(super) async fn probe(addr: SocketAddr, host: &str, path: &str) -> bool {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(path)
            .header(hyper::header::HOST, host)
            .body(Empty::<Bytes>::new())
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        Some(resp.status().is_success())
    };
    matches!(
        timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}
