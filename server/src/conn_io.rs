//! The socket under one HTTP connection, as hyper sees it. It owns three things hyper
//! does not do: (1) it watches the bytes read ([`HeadScan`]) and, when hyper answers a
//! head it refused with its own bare error (no body, no worker headers, 431 for a
//! 1 MB path), writes the shop's answer instead: the status RFC 9110 names
//! ([`rejected_head`]), a JSON error body, `X-Worker-Pid`, `X-Server-Version` and
//! `Connection: close` (hyper writes that answer at the start of a write; queued
//! behind answers a pipelining client has not read yet, it would go out unchanged);
//! (2) after an answer that closes the connection while the
//! client may still be sending (413, 408), it lingers: half-closes, then reads and
//! discards for up to [`LINGER`], so the client reads its answer instead of a reset
//! (closing a socket with unread bytes sends RST, which can destroy the answer in
//! the client's buffer); (3) it fails a write that has made no progress for the
//! send timeout (`--body-timeout`): a client that sends requests and never reads
//! the answers would otherwise hold its connection, and a place under the cap,
//! forever; (4) it holds the connection's [`Permit`] until the socket is really
//! closed, linger included.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::Sleep;

use hyper::header::HeaderValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::conn_limit::Permit;
use crate::head_scan::{HeadScan, rejected_head};

/// How long a connection closed after an error answer keeps draining what its
/// client still sends.
pub const LINGER: Duration = Duration::from_secs(2);

/// Marks (in a response's extensions, never sent) an answer given before the
/// request was read to its end: the connection closes after it, lingering.
#[derive(Debug, Clone, Copy)]
pub struct Linger;

/// What every answer written here carries, whoever wrote it.
pub struct Stamp {
    pub pid: HeaderValue,
    pub version: HeaderValue,
}

/// The socket of one connection, with the permit that counts it.
pub struct ConnIo {
    stream: Option<TcpStream>,
    permit: Option<Permit>,
    scan: HeadScan,
    stamp: Arc<Stamp>,
    /// Set (by the service, or here) once an answer said `Connection: close`.
    closing: Arc<AtomicBool>,
    /// The shop's answer in place of hyper's own error answer: bytes not yet
    /// written. Once set, everything hyper writes is dropped.
    replacement: Option<(Vec<u8>, usize)>,
    read_eof: bool,
    /// How long a write may make no progress.
    send_timeout: Duration,
    /// Armed when a write would block; cleared when one makes progress.
    stall: Option<Pin<Box<Sleep>>>,
}

impl ConnIo {
    pub fn new(
        stream: TcpStream,
        permit: Permit,
        stamp: Arc<Stamp>,
        closing: Arc<AtomicBool>,
        send_timeout: Duration,
    ) -> ConnIo {
        ConnIo {
            stream: Some(stream),
            permit: Some(permit),
            scan: HeadScan::default(),
            stamp,
            closing,
            replacement: None,
            read_eof: false,
            send_timeout,
            stall: None,
        }
    }

    /// Passes a write's outcome on, timing how long writes have been blocked: an
    /// error once that passes the send timeout.
    fn watch_write(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if outcome.is_ready() {
            self.stall = None;
            return outcome;
        }
        let timeout = self.send_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of its answer for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// If `head` is hyper's own answer to a head it refused (a 4xx without our
    /// headers), takes it over: the replacement is written on the next flush.
    fn take_over(&mut self, head: &[u8]) -> bool {
        let Some(status) = hyper_error_status(head) else {
            return false;
        };
        let (status, message) = rejected_head(status, &self.scan);
        let body = serde_json::json!({ "error": message }).to_string();
        let mut answer = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nconnection: close\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error"),
        )
        .into_bytes();
        for (name, value) in [
            (&b"x-worker-pid: "[..], &self.stamp.pid),
            (&b"x-server-version: "[..], &self.stamp.version),
        ] {
            answer.extend_from_slice(name);
            answer.extend_from_slice(value.as_bytes());
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        answer.extend_from_slice(body.as_bytes());
        self.replacement = Some((answer, 0));
        self.closing.store(true, Ordering::Relaxed);
        true
    }

    /// Writes what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (Some((answer, written)), Some(stream)) = (self.replacement.as_mut(), &mut self.stream)
        else {
            return Poll::Ready(Ok(()));
        };
        while *written < answer.len() {
            let n = ready!(Pin::new(&mut *stream).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The status of `head` if it is an error answer hyper wrote by itself: a 4xx
/// status line without the `x-worker-pid` header every answer of ours carries.
fn hyper_error_status(head: &[u8]) -> Option<u16> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 4")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 4"))?;
    let digits = rest.get(..2)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(head.len());
    let ours = head[..end]
        .windows(b"x-worker-pid:".len())
        .any(|w| w.eq_ignore_ascii_case(b"x-worker-pid:"));
    if ours {
        return None;
    }
    Some(400 + u16::from(digits[0] - b'0') * 10 + u16::from(digits[1] - b'0'))
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        ready!(Pin::new(stream).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        if new.is_empty() {
            this.read_eof = true;
        } else {
            this.scan.feed(new);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() || this.take_over(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        let outcome = match this.stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_write(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        };
        this.watch_write(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if this.replacement.is_some() || this.take_over(first) {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let outcome = match this.stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        };
        this.watch_write(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        match this.stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        match this.stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if !self.closing.load(Ordering::Relaxed) || self.read_eof {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some(stream) = self.stream.take() {
            runtime.spawn(linger(stream, self.permit.take()));
        }
    }
}

/// Half-closes, then reads and discards until the client closes too, or [`LINGER`].
async fn linger(mut stream: TcpStream, permit: Option<Permit>) {
    let _ = stream.shutdown().await;
    let until = tokio::time::Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_own_error_answers_are_taken_over() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_error_status(hyper_431), Some(431));
        let ours =
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nx-worker-pid: 7\r\n\r\n";
        assert_eq!(
            hyper_error_status(ours),
            None,
            "our answers carry x-worker-pid"
        );
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_error_status(ok), None);
        assert_eq!(hyper_error_status(b"{\"error\":1}"), None, "a body chunk");
        assert_eq!(hyper_error_status(b"HTTP/1.1 4"), None, "too short to tell");
    }
}
