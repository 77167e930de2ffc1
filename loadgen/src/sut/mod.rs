//! The server under test for one mode: starting its command with `{port}`, `{db}`
//! and `{bin_dir}` filled in (a free loopback port, a fresh database path, the
//! directory of this executable), or resolving an external URL; waiting until the
//! readiness path answers 2xx; stopping it with the scenario's signal, then SIGKILL
//! after the stop timeout. Refuses non-loopback targets unless allowed.

use crate::limits::is_loopback_host;
use crate::observe::watcher::WorkerSet;
use crate::plan::{Launch, ModePlan};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Child;
use tokio::time::{Instant, sleep, timeout};

mod pidfile;
mod process;
mod release;

use process::{probe, spawn};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "mode {mode}: target `{host}` is not loopback; pass --allow-remote to load a remote server"
    )]
    Remote { mode: String, host: String },
    #[error("mode {mode}: bad url `{url}`: {why}")]
    BadUrl {
        mode: String,
        url: String,
        why: String,
    },
    #[error("mode {mode}: cannot start `{program}`: {source}")]
    Spawn {
        mode: String,
        program: String,
        source: std::io::Error,
    },
    #[error("mode {mode}: server exited ({status}) before it was ready; its output is in {log}")]
    Exited {
        mode: String,
        status: String,
        log: String,
    },
    #[error("mode {mode}: {url} did not answer 2xx within {secs:.1} s ({log})")]
    NeverReady {
        mode: String,
        url: String,
        secs: f64,
        log: String,
    },
    #[error("cannot prepare {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl TargetError {
    /// A usage problem (exit 2) rather than a harness failure (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            TargetError::Remote { .. } | TargetError::BadUrl { .. }
        )
    }
}

/// A running (or external) server for one mode.
pub struct Server {
    pub mode: String,
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// The path of an external target's URL (`/api/v1`), put before every request's
    /// path; empty for a server loadgen starts.
    pub base_path: String,
    /// An `https://` target: requests go over TLS.
    pub tls: bool,
    child: Option<Child>,
    /// The started server's PID, `None` while the naive supervisor restarts it.
    pub pid: Option<u32>,
    /// Where an external target's master PID is read from, before every use.
    pidfile: Option<PathBuf>,
    /// The command as started, placeholders filled: a restart runs it again.
    argv: Vec<String>,
    workers: WorkerSet,
    supervise: bool,
    /// The readiness check last waited for (path, limit): a restart waits for it too.
    ready: Option<(String, Duration)>,
    db_dir: Option<PathBuf>,
    /// The start link and version file of a server loadgen started.
    release: Option<release::Files>,
    log: PathBuf,
}

fn free_port() -> Result<u16, TargetError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| TargetError::Io {
        what: "a free port".into(),
        source,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| TargetError::Io {
            what: "a free port".into(),
            source,
        })
}

/// Splits `http://host:port/...` (or `https://`, port 443 by default) into (host, port).
fn parse_url(mode: &str, url: &str) -> Result<(String, u16), TargetError> {
    let bad = |why: &str| TargetError::BadUrl {
        mode: mode.into(),
        url: url.into(),
        why: why.into(),
    };
    let (rest, default_port) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, 80),
        (_, Some(rest)) => (rest, 443),
        _ => return Err(bad("only http:// and https:// are supported")),
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h.to_string(),
            p.parse::<u16>().map_err(|_| bad("bad port"))?,
        ),
        _ => (authority.to_string(), default_port),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host, port))
}

impl Server {
    /// Starts (or resolves) the target of `mode`; the server log goes to `run_dir`.
    pub async fn start(
        mode: &ModePlan,
        run_dir: &Path,
        allow_remote: bool,
    ) -> Result<Server, TargetError> {
        let log = run_dir.join(format!("server-{}.log", mode.name));
        let (command, host) = match &mode.launch {
            Launch::External { url, pidfile } => {
                return Self::external(mode, url, pidfile.as_deref(), log, allow_remote).await;
            }
            Launch::Command { argv, host } => (argv, host),
        };
        if !allow_remote && !is_loopback_host(host) {
            return Err(TargetError::Remote {
                mode: mode.name.clone(),
                host: host.clone(),
            });
        }
        let port = free_port()?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let db_dir = std::env::temp_dir().join(format!(
            "loadgen-{}-{}-{stamp}",
            std::process::id(),
            mode.name
        ));
        std::fs::create_dir_all(&db_dir).map_err(|source| TargetError::Io {
            what: db_dir.display().to_string(),
            source,
        })?;
        let db = db_dir.join("shop.db");
        let bin_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        let release = release::Files::new(&db_dir, &bin_dir);
        release
            .install(&mode.release)
            .map_err(|source| TargetError::Io {
                what: format!("mode {}: its release files", mode.name),
                source,
            })?;
        let fill = |a: &str| {
            a.replace("{port}", &port.to_string())
                .replace("{db}", &db.display().to_string())
                .replace("{bin_dir}", &bin_dir.display().to_string())
                .replace("{start}", &release.start.display().to_string())
                .replace("{version_file}", &release.version.display().to_string())
        };
        let argv: Vec<String> = command.iter().map(|a| fill(a)).collect();
        let child = spawn(&mode.name, &argv, &log, false)?;
        let addr: SocketAddr =
            format!("{host}:{port}")
                .parse()
                .map_err(|_| TargetError::BadUrl {
                    mode: mode.name.clone(),
                    url: host.clone(),
                    why: "host must be an IP address".into(),
                })?;
        Ok(Server {
            mode: mode.name.clone(),
            addr,
            host: format!("{host}:{port}"),
            base_path: String::new(),
            tls: false,
            pid: child.id(),
            pidfile: None,
            child: Some(child),
            argv,
            workers: mode.workers.clone(),
            supervise: mode.supervise,
            ready: None,
            db_dir: Some(db_dir),
            release: Some(release),
            log,
        })
    }

    /// Resolves an external target: a server someone else started.
    async fn external(
        mode: &ModePlan,
        url: &str,
        pidfile: Option<&Path>,
        log: PathBuf,
        allow_remote: bool,
    ) -> Result<Server, TargetError> {
        let (host, port) = parse_url(&mode.name, url)?;
        if !allow_remote && !is_loopback_host(&host) {
            return Err(TargetError::Remote {
                mode: mode.name.clone(),
                host,
            });
        }
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| TargetError::BadUrl {
                mode: mode.name.clone(),
                url: url.to_string(),
                why: "cannot resolve host".into(),
            })?;
        if !allow_remote && !addr.ip().is_loopback() {
            return Err(TargetError::Remote {
                mode: mode.name.clone(),
                host,
            });
        }
        Ok(Server {
            mode: mode.name.clone(),
            addr,
            host: format!("{host}:{port}"),
            base_path: crate::engine::request::base_path(url),
            tls: url.starts_with("https://"),
            child: None,
            argv: Vec::new(),
            workers: mode.workers.clone(),
            // Nobody can restart a server the harness did not start.
            supervise: false,
            ready: None,
            pid: None,
            pidfile: pidfile.map(Path::to_path_buf),
            db_dir: None,
            release: None,
            log,
        })
    }

    /// Polls the readiness path until it answers 2xx.
    pub async fn wait_ready(&mut self, path: &str, limit: Duration) -> Result<(), TargetError> {
        self.ready = Some((path.to_string(), limit));
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(TargetError::Exited {
                        mode: self.mode.clone(),
                        status: status.to_string(),
                        log: self.log.display().to_string(),
                    });
                }
            }
            let ready = if self.tls {
                crate::engine::probe::probe_tls(self.addr, &self.host, path).await
            } else {
                probe(self.addr, &self.host, path).await
            };
            if ready {
                return Ok(());
            }
            if start.elapsed() >= limit {
                return Err(TargetError::NeverReady {
                    mode: self.mode.clone(),
                    url: format!("http://{}{path}", self.host),
                    secs: limit.as_secs_f64(),
                    log: match self.child {
                        Some(_) => format!("server output is in {}", self.log.display()),
                        None => "external target".to_string(),
                    },
                });
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops a started server: `signal`, then SIGKILL after `limit`. External
    /// targets are left alone.
    pub async fn stop(mut self, signal: Signal, limit: Duration) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), signal);
                if timeout(limit, child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
        }
        if let Some(dir) = self.db_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The child is SIGKILLed by kill_on_drop; remove its database.
        if let Some(dir) = self.db_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("m", "http://127.0.0.1:8080/x").ok(),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            parse_url("m", "http://localhost").ok(),
            Some(("localhost".into(), 80))
        );
        assert_eq!(
            parse_url("m", "https://127.0.0.1").ok(),
            Some(("127.0.0.1".into(), 443))
        );
        assert!(parse_url("m", "ftp://127.0.0.1").is_err());
    }
}
