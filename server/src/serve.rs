//! A serving process from start to exit: `single` mode (binds its own socket, writes
//! the pidfile) and `worker` mode (inherits the socket on fd 3 from the master,
//! accepts from it with [`SharedAcceptor`], and reports ready on fd 4 once that
//! accept thread runs). Both open their own database connection, set their
//! connection cap and body limits, install the drain signals, serve until one
//! arrives, drain, and exit 0 (clean) or 1 (drain timeout). This is the process the
//! cluster master starts as each worker.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::accept::SharedAcceptor;
use crate::api::{App, MAX_BODY};
use crate::body::BodyLimits;
use crate::boot;
use crate::cli::ServeConfig;
use crate::conn_limit::{self, ConnLimit};
use crate::db::Db;
use crate::http::{self, DrainOutcome, Source, Timeouts};
use crate::log_event;
use crate::signals::DrainSignals;
use crate::sys;

/// The fd on which a worker finds the shared listening socket.
pub const LISTEN_FD: RawFd = 3;
/// The fd on which a worker writes `ready\n` once it accepts connections.
pub const READY_FD: RawFd = 4;

pub fn run_single(
    listen: SocketAddr,
    pidfile: Option<PathBuf>,
    cfg: ServeConfig,
) -> anyhow::Result<ExitCode> {
    const ROLE: &str = "single";
    let nofile = sys::raise_nofile_limit().context("raising the open-file limit")?;
    let rt = sys::runtime(cfg.threads).context("starting the event loop")?;
    let code = rt.block_on(async {
        let signals = DrainSignals::install().context("installing signal handlers")?;
        let db = Db::open(&cfg.db, cfg.seed, true)
            .with_context(|| format!("opening database {}", cfg.db.display()))?;
        boot::warm_up(&cfg, ROLE).await; // nobody listens yet: connections are refused
        let listener = sys::bind(listen).with_context(|| format!("listening on {listen}"))?;
        let _pidfile = pidfile
            .as_deref()
            .map(sys::Pidfile::create)
            .transpose()
            .context("writing the pidfile")?;
        log_event!(
            ROLE,
            "listening on {} (version {}, db {}, open-file limit {nofile})",
            listener.local_addr().map_or(listen, |a| a),
            cfg.version_tag,
            cfg.db.display()
        );
        let limit = connection_limit(&cfg, nofile);
        log_event!(ROLE, "{}", limits_line(&cfg, &limit));
        boot::arm_crash(&cfg, ROLE);
        let source = Source::Own(listener);
        Ok::<_, anyhow::Error>(serve_until_drained(source, db, limit, signals, &cfg, ROLE).await)
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(code)
}

pub fn run_worker(cfg: ServeConfig) -> anyhow::Result<ExitCode> {
    const ROLE: &str = "worker";
    let nofile = sys::raise_nofile_limit().context("raising the open-file limit")?;
    let listener = inherited_listener()?;
    let ready = ready_pipe()?;
    let rt = sys::runtime(cfg.threads).context("starting the event loop")?;
    let code = rt.block_on(async {
        let signals = DrainSignals::install().context("installing signal handlers")?;
        // The master checkpoints the WAL for all workers.
        let db = Db::open(&cfg.db, cfg.seed, false)
            .with_context(|| format!("opening database {}", cfg.db.display()))?;
        let limit = connection_limit(&cfg, nofile);
        boot::warm_up(&cfg, ROLE).await; // before accepting: connections wait in the queue
        let acceptor = SharedAcceptor::start(listener, Arc::clone(&limit), ROLE)
            .context("starting the accept thread")?;
        report_ready(ready)?;
        log_event!(
            ROLE,
            "ready (version {}; {})",
            cfg.version_tag,
            limits_line(&cfg, &limit)
        );
        boot::arm_crash(&cfg, ROLE);
        let source = Source::Shared(acceptor);
        Ok::<_, anyhow::Error>(serve_until_drained(source, db, limit, signals, &cfg, ROLE).await)
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(code)
}

/// `--max-connections`, or what the open-file limit leaves.
fn connection_limit(cfg: &ServeConfig, nofile: u64) -> Arc<ConnLimit> {
    let max = cfg.max_connections.unwrap_or(0);
    let max = if max == 0 {
        conn_limit::default_max(nofile)
    } else {
        usize::try_from(max).unwrap_or(usize::MAX)
    };
    ConnLimit::new(max)
}

fn limits_line(cfg: &ServeConfig, limit: &ConnLimit) -> String {
    format!(
        "limits: {} connections, body {MAX_BODY} bytes within {:?} at {} bytes/s after 1s, head within {:?}",
        limit.max(),
        cfg.body_timeout,
        cfg.body_min_rate,
        cfg.header_timeout
    )
}

async fn serve_until_drained(
    source: Source,
    db: Db,
    limit: Arc<ConnLimit>,
    mut signals: DrainSignals,
    cfg: &ServeConfig,
    role: &'static str,
) -> ExitCode {
    let body = BodyLimits {
        max: MAX_BODY,
        timeout: cfg.body_timeout,
        min_rate: cfg.body_min_rate,
    };
    let app = Arc::new(App::new(
        db,
        cfg.version_tag.clone(),
        cfg.checkout_cpu,
        cfg.checkout_io,
        body,
    ));
    let stop = async move {
        let name = signals.recv().await;
        log_event!(role, "{name} received: draining");
    };
    let timeouts = Timeouts {
        header: cfg.header_timeout,
        drain: cfg.drain_timeout,
    };
    match http::serve(source, app, limit, stop, timeouts, role).await {
        DrainOutcome::Clean => {
            log_event!(role, "drained: every connection finished, exiting 0");
            ExitCode::SUCCESS
        }
        DrainOutcome::TimedOut { open } => {
            log_event!(
                role,
                "drain timeout ({:?}) with {open} connections still open: closing them, exiting 1",
                cfg.drain_timeout
            );
            ExitCode::from(1)
        }
    }
}

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags; no memory is involved.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

fn inherited_listener() -> anyhow::Result<std::net::TcpListener> {
    if !fd_is_open(LISTEN_FD) {
        bail!(
            "worker mode needs the listening socket on fd {LISTEN_FD}: it is started by the master"
        );
    }
    // SAFETY: fd 3 is open (checked above) and nothing else in this process owns it:
    // the master placed the listening socket there for us before exec.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(LISTEN_FD) };
    listener
        .local_addr()
        .with_context(|| format!("fd {LISTEN_FD} is not a listening TCP socket"))?;
    listener
        .set_nonblocking(true)
        .context("making the listener non-blocking")?;
    Ok(listener)
}

fn ready_pipe() -> anyhow::Result<File> {
    if !fd_is_open(READY_FD) {
        bail!("worker mode needs the ready pipe on fd {READY_FD}: it is started by the master");
    }
    // SAFETY: fd 4 is open (checked above) and owned by nothing else in this process.
    Ok(unsafe { File::from_raw_fd(READY_FD) })
}

fn report_ready(mut ready: File) -> anyhow::Result<()> {
    ready
        .write_all(b"ready\n")
        .context("reporting ready to the master")?;
    Ok(())
}
