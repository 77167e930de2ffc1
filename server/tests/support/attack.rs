//! Hostile clients, for the tests and for `examples/hostile.rs` (the benchmark's
//! driver includes this file): a body sent one byte per TCP segment, requests whose
//! body stops or never ends, a flood of slow-body connections kept up for a while,
//! a normal client timing its GETs, a raw response reader, and a process's memory
//! from /proc. Plain std and tokio, no test framework, so the example can use it.
#![allow(dead_code)] // each user takes a different part

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP response as it came over the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-cased names, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads the next final (non-1xx) response on `stream`; `buf` keeps bytes read past
/// it. `Ok(None)`: the connection closed before a response began.
pub fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<RawResponse>> {
    loop {
        let Some(head_end) = fill_until(stream, buf, |b| find(b, b"\r\n\r\n").map(|i| i + 4))?
        else {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a response head",
                ))
            };
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        buf.drain(..head_end);
        if (100..200).contains(&status) {
            continue;
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if fill_until(stream, buf, |b| (b.len() >= length).then_some(length))?.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside a body",
            ));
        }
        let body = buf.drain(..length).collect();
        return Ok(Some(RawResponse {
            status,
            headers,
            body,
        }));
    }
}

/// Reads until `done` finds its mark (returned) or EOF (`None`).
fn fill_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<usize>,
) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(mark) = done(buf) {
            return Ok(Some(mark));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether the server closes `stream` (EOF, or a reset) within `within`, with no
/// more bytes; `Err` with what came instead.
pub fn wait_eof(stream: &mut TcpStream, buf: &[u8], within: Duration) -> Result<(), String> {
    if !buf.is_empty() {
        return Err(format!(
            "unexpected bytes after the answer: {:?}",
            String::from_utf8_lossy(buf)
        ));
    }
    stream
        .set_read_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    let mut chunk = [0u8; 1024];
    match stream.read(&mut chunk) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Ok(n) => Err(format!(
            "{n} more bytes: {:?}",
            String::from_utf8_lossy(&chunk[..n])
        )),
        Err(e) => Err(format!("not closed within {within:?}: {e}")),
    }
}

pub fn connect(addr: SocketAddr, read_timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(read_timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends `head`, then `body` one byte per write (TCP_NODELAY: one byte per TCP
/// segment) with `pause` between bytes, then reads the answer.
pub fn trickle(
    addr: SocketAddr,
    head: &[u8],
    body: &[u8],
    pause: Duration,
) -> io::Result<RawResponse> {
    let mut stream = connect(addr, Duration::from_secs(60))?;
    stream.write_all(head)?;
    for byte in body {
        stream.write_all(std::slice::from_ref(byte))?;
        std::thread::sleep(pause);
    }
    read_response(&mut stream, &mut Vec::new())?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed without an answer"))
}

/// A field of /proc/<pid>/status in KiB (`VmRSS`, `VmHWM`).
pub fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Counts of a slow-body flood.
#[derive(Debug, Default)]
pub struct FloodStats {
    /// Connections opened.
    pub connections: AtomicU64,
    /// Answers 408 received.
    pub timeouts: AtomicU64,
    /// Connections the server closed (with or without an answer).
    pub closed: AtomicU64,
    /// Connects that failed.
    pub connect_errors: AtomicU64,
}

/// Keeps `conns` connections sending a body slowly (the head announces 64 KiB, then
/// 10 bytes, then one byte a second) until `stop` is set or `until`; a connection the
/// server closes is replaced at once. Runs on the current tokio runtime.
pub fn slow_body_flood(
    addr: SocketAddr,
    conns: usize,
    until: Instant,
    stop: Arc<AtomicBool>,
) -> (Arc<FloodStats>, Vec<tokio::task::JoinHandle<()>>) {
    let stats = Arc::new(FloodStats::default());
    let tasks = (0..conns)
        .map(|i| {
            let (stats, stop) = (Arc::clone(&stats), Arc::clone(&stop));
            tokio::spawn(async move {
                // Spread the first connects over 100 ms.
                tokio::time::sleep(Duration::from_micros(100 * i as u64)).await;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    slow_body_once(addr, &stats, until, &stop).await;
                }
            })
        })
        .collect();
    (stats, tasks)
}

async fn slow_body_once(addr: SocketAddr, stats: &FloodStats, until: Instant, stop: &AtomicBool) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        stats.connect_errors.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
        return;
    };
    stats.connections.fetch_add(1, Ordering::Relaxed);
    let head = b"POST /carts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{\"a\":     ";
    if stream.write_all(head).await.is_err() {
        stats.closed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if stop.load(Ordering::Relaxed) || Instant::now() >= until {
            return;
        }
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(n) if n > 0 => answer.extend_from_slice(&chunk[..n]),
                _ => break,
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    if answer.starts_with(b"HTTP/1.1 408") {
        stats.timeouts.fetch_add(1, Ordering::Relaxed);
    }
    stats.closed.fetch_add(1, Ordering::Relaxed);
}

/// `n` GETs of `path`, each on a new connection (a newly arriving user), one after
/// another with `pause` between them; each result is its latency (connect
/// included) or what went wrong.
pub fn timed_gets(
    addr: SocketAddr,
    path: &str,
    n: usize,
    pause: Duration,
    timeout: Duration,
) -> Vec<Result<Duration, String>> {
    (0..n)
        .map(|_| {
            std::thread::sleep(pause);
            let started = Instant::now();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut stream = connect(addr, timeout).map_err(|e| format!("connect: {e}"))?;
            stream
                .write_all(request.as_bytes())
                .map_err(|e| format!("send: {e}"))?;
            match read_response(&mut stream, &mut Vec::new()) {
                Ok(Some(r)) if r.status == 200 => Ok(started.elapsed()),
                Ok(Some(r)) => Err(format!("status {}: {}", r.status, r.text())),
                Ok(None) => Err("closed without an answer".to_owned()),
                Err(e) => Err(format!("after {:?}: {e}", started.elapsed())),
            }
        })
        .collect()
}

/// The `p`-th percentile (0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
