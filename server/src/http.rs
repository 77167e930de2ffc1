//! Serving HTTP/1.1 connections until told to drain, then draining: the accept loop,
//! per-connection settings (keep-alive, header read timeout), and the drain itself
//! (a failed accept is handled as [`crate::accept_error`] says). Drain order: stop accepting
//! (single mode first takes what is already queued and closes the socket; a worker
//! stops its accept thread and leaves the shared queue to the others); answer everything with
//! `Connection: close` and give idle keep-alive connections a short grace to send one
//! last request (a client whose idle connection is closed under it may have a request
//! on the wire); then close the idle ones (busy ones close after their response) and
//! wait for the last one, up to the drain timeout. A worker closes its idle
//! connections spread over [`IDLE_CLOSE_SPREAD`] rather than all in one
//! millisecond: at ~10,000 connections that burst swamped the clients, many of whom
//! sent a request on a connection already closed and had to retry; the other workers
//! take the reconnections meanwhile. Single mode closes them at once: nobody else
//! can serve them, and its drain should end quickly. Limits on what one client can
//! hold: at most `--max-connections` open per process (a [`Permit`] per
//! connection, taken before accept: back-pressure, not refusal), a request head of
//! at most [`MAX_HEAD`] within `--header-timeout`, a body within the
//! [`crate::body`] limits, answers taken by the client within the send timeout
//! (the body timeout), one request at a time per connection (HTTP/1.1). Each socket
//! is wrapped in a [`ConnIo`]. Routing is [`crate::api`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::accept::{HANDOFF_QUEUE, SharedAcceptor};
use crate::accept_error::AcceptErrors;
use crate::api::{self, App, MAX_HEAD};
use crate::conn_io::{ConnIo, Linger};
use crate::conn_limit::{ConnLimit, Permit};

/// How long idle keep-alive connections may still send a last request after the
/// drain began (answered with `Connection: close`) before they are closed.
const IDLE_GRACE: Duration = Duration::from_millis(250);
/// After the grace, a worker closes its idle keep-alive connections spread over this
/// long (in accept order), not all in the same millisecond.
const IDLE_CLOSE_SPREAD: Duration = Duration::from_millis(1000);
/// Granularity of that spread: connection `n` closes in slot `n % CLOSE_SLOTS`.
const CLOSE_SLOTS: u32 = 1000;
/// hyper's buffer per connection: a whole head, and room to read a body through.
const MAX_BUF: usize = MAX_HEAD + 8 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Request head must arrive within this (also the keep-alive idle limit).
    pub header: Duration,
    /// Connections still open this long after the drain began are closed.
    pub drain: Duration,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every connection finished.
    Clean,
    /// The drain timeout passed with this many connections still open.
    TimedOut { open: usize },
}

struct Connections {
    /// When set: the moment idle connections start closing, and over how long.
    closing: watch::Sender<Option<(Instant, Duration)>>,
    accepted: AtomicU32,
    limit: Arc<ConnLimit>,
    builder: hyper::server::conn::http1::Builder,
    app: Arc<App>,
}

impl Connections {
    fn new(app: Arc<App>, header_timeout: Duration, limit: Arc<ConnLimit>) -> Connections {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_header_size(MAX_HEAD)
            .max_buf_size(MAX_BUF)
            // A client may send its whole request and then shut down its write side
            // (`printf ... | nc`, some HTTP/1.0 clients): it still gets its answer.
            // hyper's default would drop the answer, the handler mid-way, on that EOF.
            .half_close(true)
            .keep_alive(true);
        Connections {
            closing: watch::Sender::new(None),
            accepted: AtomicU32::new(0),
            limit,
            builder,
            app,
        }
    }

    fn serve(&self, stream: TcpStream, permit: Permit) {
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&self.app);
        let linger = Arc::new(AtomicBool::new(false));
        let send_timeout = app.body.timeout;
        let io = ConnIo::new(
            stream,
            permit,
            app.stamp(),
            Arc::clone(&linger),
            send_timeout,
        );
        let service = service_fn(move |req| {
            let (app, linger) = (Arc::clone(&app), Arc::clone(&linger));
            async move {
                let reply = api::handle(app, req).await;
                // An answer given before the body was read: the socket lingers.
                if matches!(&reply, Ok(r) if r.extensions().get::<Linger>().is_some()) {
                    linger.store(true, Ordering::Relaxed);
                }
                reply
            }
        });
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        let slot = self.accepted.fetch_add(1, Ordering::Relaxed) % CLOSE_SLOTS;
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            tokio::pin!(conn);
            // A client that vanishes or sends garbage ends its own connection only.
            let close_from = tokio::select! {
                _ = conn.as_mut() => None,
                closing = closing.wait_for(Option::is_some) => {
                    Some(closing.ok().and_then(|c| *c).unwrap_or((Instant::now(), Duration::ZERO)))
                }
            };
            if let Some((start, spread)) = close_from {
                let at = start + spread * slot / CLOSE_SLOTS;
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = tokio::time::sleep_until(at.into()) => {
                        // Idle: closes now; busy: closes after its response.
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            }
        });
    }
}

/// Where connections come from.
pub enum Source {
    /// A socket this process owns (single mode), accepted on the event loop. At drain
    /// its queue is swept and it is closed: new connections are refused.
    Own(TcpListener),
    /// The cluster's shared socket, accepted by a blocked thread (fair across
    /// workers). At drain this worker stops taking connections; the queue stays for
    /// the others.
    Shared(SharedAcceptor),
}

/// Serves connections from `source` until `stop` completes, then drains. `role`
/// names the process in log lines.
pub async fn serve(
    source: Source,
    app: Arc<App>,
    limit: Arc<ConnLimit>,
    stop: impl Future<Output = ()>,
    timeouts: Timeouts,
    role: &'static str,
) -> DrainOutcome {
    let connections = Connections::new(app, timeouts.header, limit);
    let mut accept_errors = AcceptErrors::new(role);
    tokio::pin!(stop);
    let shared = matches!(source, Source::Shared(_));
    let swept = match source {
        Source::Own(listener) => {
            loop {
                // Back-pressure: no accept without a free permit.
                let permit = tokio::select! {
                    biased;
                    () = &mut stop => break,
                    permit = connections.limit.acquire(role) => permit,
                };
                tokio::select! {
                    biased;
                    () = &mut stop => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => connections.serve(stream, permit),
                        Err(error) => {
                            drop(permit);
                            if let Some(pause) = accept_errors.on_error(&error) {
                                tokio::time::sleep(pause).await;
                            }
                        }
                    },
                }
            }
            // Take what the kernel already queued, then close the socket.
            sweep_backlog(listener, &connections)
        }
        Source::Shared(mut acceptor) => {
            loop {
                tokio::select! {
                    biased;
                    () = &mut stop => break,
                    accepted = acceptor.next() => match accepted {
                        Some((stream, permit)) => {
                            serve_std(stream, permit, &connections);
                            // Take the whole batch the accept thread queued in this
                            // turn of the loop, not one connection per turn.
                            for _ in 1..HANDOFF_QUEUE {
                                let Some((stream, permit)) = acceptor.try_next() else { break };
                                serve_std(stream, permit, &connections);
                            }
                        }
                        None => {
                            crate::log_event!(role, "the accept thread stopped: draining");
                            break;
                        }
                    },
                }
            }
            // Connections this worker accepted are served; the queue is left to the
            // other workers (the socket stays open in them and in the master).
            let left = acceptor.stop().await;
            let taken = left.len();
            left.into_iter()
                .for_each(|(s, permit)| serve_std(s, permit, &connections));
            taken
        }
    };
    let open = connections.limit.open();
    crate::log_event!(
        role,
        "draining: stopped accepting ({swept} queued connections taken), {open} connections open"
    );
    let began = Instant::now();
    connections.app.start_draining();
    let grace = IDLE_GRACE.min(timeouts.drain);
    while connections.limit.open() > 0 && began.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Never spread past half of what is left of the drain timeout.
    let spread = if shared {
        IDLE_CLOSE_SPREAD.min(timeouts.drain.saturating_sub(began.elapsed()) / 2)
    } else {
        Duration::ZERO
    };
    connections
        .closing
        .send_replace(Some((Instant::now(), spread)));
    loop {
        let open = connections.limit.open();
        if open == 0 {
            return DrainOutcome::Clean;
        }
        if began.elapsed() >= timeouts.drain {
            return DrainOutcome::TimedOut { open };
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Accepts every connection already queued, without waiting, and drops the listener.
fn sweep_backlog(listener: TcpListener, connections: &Connections) -> usize {
    let Ok(listener) = listener.into_std() else {
        return 0;
    };
    let mut swept = 0;
    while let Ok((stream, _)) = listener.accept() {
        if stream.set_nonblocking(true).is_ok() {
            // Queued before the drain: served even past the cap.
            serve_std(stream, connections.limit.force(), connections);
            swept += 1;
        }
    }
    swept
}

/// Serves a non-blocking std stream on the event loop.
fn serve_std(stream: std::net::TcpStream, permit: Permit, connections: &Connections) {
    if let Ok(stream) = TcpStream::from_std(stream) {
        connections.serve(stream, permit);
    }
}
