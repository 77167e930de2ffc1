//! One user's HTTP/1.1 keep-alive connection and one attempt on it, classified into
//! an outcome class. Owns connecting (from a 127.0.0.x source address with
//! IP_BIND_ADDRESS_NO_PORT for loopback targets), reconnecting when the server closed
//! an idle connection, the per-attempt deadline, and telling the server's failures
//! (refused, closed, timeout) from loadgen's own (no file descriptor, no source
//! port): those are `generator_error`, never blamed on the server. The exchange
//! itself is the lean client's (`engine::h1`), or hyper's for the differential test
//! (`engine::hyper_client`). Retry decisions are the user loop's.

use crate::engine::answer::Answer;
use crate::engine::h1::H1;
use crate::engine::hyper_client;
use crate::engine::recorder::Recorder;
use crate::engine::request::Shape;
use crate::engine::tls;
use crate::outcome::Class;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::client::TlsStream;

/// Which client carries the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `engine::h1`: what loadgen measures with.
    Lean,
    /// `engine::hyper_client`: the reference for the differential test.
    Hyper,
}

impl Client {
    /// `LOADGEN_HTTP_CLIENT=hyper` selects the reference path; anything else the lean one.
    pub fn from_env() -> Client {
        match std::env::var("LOADGEN_HTTP_CLIENT").as_deref() {
            Ok("hyper") => Client::Hyper,
            _ => Client::Lean,
        }
    }
}

/// Where users connect to, shared by all of them.
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: String,
    pub sources: Vec<Ipv4Addr>,
    pub open_connections: Arc<AtomicU64>,
    pub client: Client,
    /// An `https://` target: the TLS configuration and the name to check.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// Where connection setup times go.
    pub recorder: Arc<Recorder>,
}

/// One request, rendered: `wire` is what the lean client writes; the parts build
/// hyper's request on the reference path.
pub struct Req<'a> {
    pub shape: &'a Shape,
    pub path: &'a str,
    pub key: Option<&'a str>,
    /// The step's header lines beyond the fixed ones, each ending `\r\n`.
    pub headers: &'a str,
    pub body: &'a [u8],
    pub wire: &'a [u8],
}

/// An open connection.
pub enum Conn {
    Lean {
        h1: H1<TcpStream>,
        _open: OpenGuard,
    },
    Tls {
        // Boxed: a TLS session is ~1 KiB; a plain connection stays small.
        h1: Box<H1<TlsStream<TcpStream>>>,
        _open: OpenGuard,
    },
    Hyper(hyper_client::Conn),
}

/// Why an attempt got no answer.
#[derive(Debug)]
pub struct NoAnswer {
    pub class: Class,
    /// For the generator's own faults: what failed, as the OS said it.
    pub why: Option<String>,
}

impl From<Class> for NoAnswer {
    fn from(class: Class) -> NoAnswer {
        NoAnswer { class, why: None }
    }
}

/// A failed socket call on loadgen's side: its own limits, not the server.
fn generator(call: &str, e: &std::io::Error) -> NoAnswer {
    NoAnswer {
        class: Class::GeneratorError,
        why: Some(format!("{call}: {e}")),
    }
}

/// connect(2) failing: refused or unreachable is the server's (or the network's)
/// answer; running out of ports, files or memory is loadgen's.
fn connect_failed(e: &std::io::Error) -> NoAnswer {
    match e.raw_os_error() {
        Some(
            libc::EADDRNOTAVAIL
            | libc::EADDRINUSE
            | libc::EMFILE
            | libc::ENFILE
            | libc::ENOBUFS
            | libc::ENOMEM,
        ) => generator("connect()", e),
        Some(libc::ETIMEDOUT) => Class::Timeout.into(),
        Some(libc::ECONNRESET | libc::EPIPE) => Class::Closed.into(),
        _ => Class::Refused.into(),
    }
}

/// Counts a lean connection in the open-connections gauge while it lives.
pub struct OpenGuard(Arc<AtomicU64>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connect(ep: &Endpoint, user: u64) -> Result<Conn, NoAnswer> {
    let start = Instant::now();
    let conn = open(ep, user).await?;
    ep.recorder
        .connected(start.elapsed().as_micros().min(u128::from(u64::MAX)) as u64);
    Ok(conn)
}

async fn open(ep: &Endpoint, user: u64) -> Result<Conn, NoAnswer> {
    let socket = TcpSocket::new_v4().map_err(|e| generator("socket()", &e))?;
    if !ep.sources.is_empty() {
        let src = ep.sources[(user % ep.sources.len() as u64) as usize];
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int.
        // IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), so each
        // (source, destination) pair gets its own ephemeral port range.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        socket
            .bind(SocketAddr::new(src.into(), 0))
            .map_err(|e| generator("bind()", &e))?;
    }
    let stream = socket
        .connect(ep.addr)
        .await
        .map_err(|e| connect_failed(&e))?;
    let _ = stream.set_nodelay(true);
    match (ep.client, &ep.tls) {
        (Client::Lean, Some((config, name))) => {
            let stream = tls::handshake(config, name, stream).await?;
            ep.open_connections.fetch_add(1, Ordering::Relaxed);
            Ok(Conn::Tls {
                h1: Box::new(H1::new(stream)),
                _open: OpenGuard(ep.open_connections.clone()),
            })
        }
        (Client::Hyper, Some(_)) => Err(NoAnswer {
            class: Class::GeneratorError,
            why: Some("the hyper reference client path has no TLS".into()),
        }),
        (Client::Lean, None) => {
            ep.open_connections.fetch_add(1, Ordering::Relaxed);
            Ok(Conn::Lean {
                h1: H1::new(stream),
                _open: OpenGuard(ep.open_connections.clone()),
            })
        }
        (Client::Hyper, None) => Ok(Conn::Hyper(
            hyper_client::handshake(stream, &ep.open_connections).await?,
        )),
    }
}

/// One attempt: (re)connect if needed, send, read the whole answer, all before
/// `deadline`. On any failure the connection is dropped so a retry reconnects.
///
/// `timer` is the user's own timer, re-armed lazily: it is moved only when it would
/// fire after this deadline, and when it fires early it is pushed to the deadline.
/// A closed loop then touches the timer wheel about once per timeout period
/// instead of twice per request.
pub async fn attempt(
    ep: &Endpoint,
    user: u64,
    conn: &mut Option<Conn>,
    req: &Req<'_>,
    deadline: Instant,
    mut timer: Pin<&mut Sleep>,
) -> Result<Answer, NoAnswer> {
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    let result = {
        let work = attempt_inner(ep, user, conn, req);
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                r = &mut work => break r,
                _ = timer.as_mut() => {
                    if Instant::now() >= deadline {
                        break Err(Class::Timeout.into());
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    };
    if result.is_err() {
        *conn = None;
    }
    result
}

async fn attempt_inner(
    ep: &Endpoint,
    user: u64,
    conn: &mut Option<Conn>,
    req: &Req<'_>,
) -> Result<Answer, NoAnswer> {
    // An idle connection the server closed (keep-alive timeout, drain) is not a
    // failure: a browser reconnects, and so do we.
    let stale = match conn.as_mut() {
        Some(Conn::Lean { h1: c, .. }) => !c.reusable().await,
        Some(Conn::Tls { h1: c, .. }) => !c.reusable().await,
        Some(Conn::Hyper(c)) => !c.reusable().await,
        None => false,
    };
    if stale {
        *conn = None;
    }
    if conn.is_none() {
        *conn = Some(connect(ep, user).await?);
    }
    let (answer, keep) = match conn.as_mut() {
        Some(Conn::Lean { h1: c, .. }) => c
            .exchange(req.wire, req.shape.head_only)
            .await
            .map_err(NoAnswer::from)?,
        Some(Conn::Tls { h1: c, .. }) => c
            .exchange(req.wire, req.shape.head_only)
            .await
            .map_err(NoAnswer::from)?,
        Some(Conn::Hyper(c)) => c.exchange(&ep.host, req).await?,
        None => return Err(Class::Refused.into()),
    };
    if !keep {
        *conn = None;
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadgen_own_limits_are_generator_errors_and_the_server_s_answers_are_not() {
        let os = std::io::Error::from_raw_os_error;
        for errno in [
            libc::EADDRNOTAVAIL,
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
        ] {
            let f = connect_failed(&os(errno));
            assert_eq!(f.class, Class::GeneratorError, "errno {errno}");
            assert!(f.why.is_some_and(|w| w.starts_with("connect(): ")));
        }
        assert_eq!(
            connect_failed(&os(libc::ECONNREFUSED)).class,
            Class::Refused
        );
        assert_eq!(connect_failed(&os(libc::ETIMEDOUT)).class, Class::Timeout);
        assert_eq!(connect_failed(&os(libc::ECONNRESET)).class, Class::Closed);
    }
}
