//! The lean HTTP/1.1 client loadgen measures with: one keep-alive connection over any
//! byte stream (`AsyncRead + AsyncWrite`: a TCP socket, or TLS over one), a request
//! written as the bytes `request::Shape` rendered, and the answer read into one pooled
//! buffer and parsed with `httparse` (the parser hyper itself uses). It reads what
//! servers send loadgen: a `Content-Length` or chunked body, or a body up to the end
//! of the connection; skips `1xx` interim answers; no body for HEAD, 204 and 304.
//! Every failure to write or to read a whole answer (reset, early close, an answer
//! that does not parse) is `closed`, as it was with hyper's client. The connection is
//! given up after an answer that says `Connection: close` (or is HTTP/1.0 without
//! keep-alive, or ran to the end of the stream, or came with bytes nobody asked for).

use crate::engine::answer::{Answer, Buf};
use crate::outcome::Class;
use std::future::poll_fn;
use std::ops::Range;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A head longer than this is not an answer loadgen accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Headers per answer httparse looks at.
const MAX_HEADERS: usize = 64;

/// What an answer's head says, copied out of the buffer it was parsed from.
#[derive(Debug, Default, PartialEq)]
struct Head {
    status: u16,
    len: usize,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    worker_pid: u32,
    version: Option<Range<usize>>,
    set_cookies: Vec<Range<usize>>,
}

/// Whether a comma-separated header value lists `token`.
fn lists(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Parses the head at the start of `buf`: `Ok(None)` when more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Class> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(Class::Closed),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Class::Closed),
    };
    let mut head = Head {
        status: resp.code.unwrap_or(0),
        len,
        // HTTP/1.0 closes unless it says keep-alive.
        close: resp.version == Some(0),
        ..Head::default()
    };
    let base = buf.as_ptr() as usize;
    for h in resp.headers.iter() {
        let v = h.value;
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(Class::Closed)?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(Class::Closed);
            }
            head.content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides whether the body is chunked.
            let last = v.rsplit(|b| *b == b',').next().unwrap_or_default();
            head.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if lists(v, b"close") {
                head.close = true;
            } else if lists(v, b"keep-alive") && resp.version == Some(0) {
                head.close = false;
            }
        } else if h.name.eq_ignore_ascii_case("x-worker-pid") {
            head.worker_pid = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
        } else if h.name.eq_ignore_ascii_case("x-server-version") {
            let start = v.as_ptr() as usize - base;
            head.version = Some(start..start + v.len());
        } else if h.name.eq_ignore_ascii_case("set-cookie") {
            let start = v.as_ptr() as usize - base;
            head.set_cookies.push(start..start + v.len());
        }
    }
    Ok(Some(head))
}

/// Reads more bytes onto the end of `buf`; an early end of the stream is `closed`.
async fn fill<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> Result<(), Class> {
    if buf.len() == buf.capacity() {
        buf.reserve(buf.len().max(4096));
    }
    match io.read_buf(buf).await {
        Ok(0) | Err(_) => Err(Class::Closed),
        Ok(_) => Ok(()),
    }
}

/// Decodes the chunked body starting at `at` in place (chunk data moved down over
/// the chunk-size lines), reading more as needed. Returns the decoded body's end
/// and where the message ends.
async fn read_chunked<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    at: usize,
) -> Result<(usize, usize), Class> {
    let (mut read, mut write) = (at, at);
    loop {
        let (used, size) = loop {
            match httparse::parse_chunk_size(&buf[read..]) {
                Ok(httparse::Status::Complete(c)) => break c,
                Ok(httparse::Status::Partial) => fill(io, buf).await?,
                Err(_) => return Err(Class::Closed),
            }
        };
        read += used;
        if size == 0 {
            // Trailers (usually none) up to an empty line.
            loop {
                let rest = &buf[read..];
                if rest.starts_with(b"\r\n") {
                    return Ok((write, read + 2));
                }
                if let Some(i) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
                    return Ok((write, read + i + 4));
                }
                if rest.len() > MAX_HEAD {
                    return Err(Class::Closed);
                }
                fill(io, buf).await?;
            }
        }
        let size = usize::try_from(size).map_err(|_| Class::Closed)?;
        let need = read.checked_add(size + 2).ok_or(Class::Closed)?;
        while buf.len() < need {
            fill(io, buf).await?;
        }
        if &buf[read + size..need] != b"\r\n" {
            return Err(Class::Closed);
        }
        buf.copy_within(read..read + size, write);
        write += size;
        read = need;
    }
}

/// Reads one whole answer. Returns it and whether the connection may be reused.
pub async fn read_answer<S: AsyncRead + Unpin>(
    io: &mut S,
    head_request: bool,
) -> Result<(Answer, bool), Class> {
    let mut buf = Buf::take();
    let v = buf.vec();
    let head = loop {
        match parse_head(v)? {
            // 1xx interim answers (100 Continue, 103) come before the real one.
            Some(h) if (100..200).contains(&h.status) && h.status != 101 => {
                v.drain(..h.len);
            }
            Some(h) => break h,
            None => fill(io, v).await?,
        }
    };
    let start = head.len;
    let no_body = head_request || head.status == 204 || head.status == 304;
    let (body, end, mut keep) = if no_body {
        (start..start, start, !head.close)
    } else if head.chunked {
        let (body_end, end) = read_chunked(io, v, start).await?;
        (start..body_end, end, !head.close)
    } else if let Some(n) = head.content_length {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .ok_or(Class::Closed)?;
        if v.capacity() < end {
            v.reserve(end - v.len());
        }
        while v.len() < end {
            fill(io, v).await?;
        }
        (start..end, end, !head.close)
    } else {
        // No length: the body runs to the end of the connection.
        loop {
            if v.len() == v.capacity() {
                v.reserve(v.len());
            }
            match io.read_buf(v).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return Err(Class::Closed),
            }
        }
        let end = v.len();
        (start..end, end, false)
    };
    // Bytes past the answer were never asked for: this connection is out of step.
    if v.len() > end {
        keep = false;
    }
    Ok((
        Answer::new(head.status, head.worker_pid, buf, head.version, body)
            .with_cookies(head.set_cookies),
        keep,
    ))
}

/// One keep-alive connection over `S`.
pub struct H1<S> {
    io: S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1<S> {
    pub fn new(io: S) -> H1<S> {
        H1 { io }
    }

    /// Whether an idle connection can carry another request: not if the server
    /// closed it (keep-alive timeout, drain) or sent something nobody asked for.
    /// Looks once, without waiting.
    pub async fn reusable(&mut self) -> bool {
        let mut byte = [0u8; 1];
        poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut byte);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => Poll::Ready(true),
                Poll::Ready(_) => Poll::Ready(false),
            }
        })
        .await
    }

    /// Writes `request` and reads the whole answer; returns it and whether the
    /// connection may carry the next request.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
    ) -> Result<(Answer, bool), Class> {
        self.io
            .write_all(request)
            .await
            .map_err(|_| Class::Closed)?;
        self.io.flush().await.map_err(|_| Class::Closed)?;
        read_answer(&mut self.io, head_request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(wire: &[u8], head: bool) -> Result<(Answer, bool), Class> {
        // A reader that hands out 3 bytes at a time: every partial state is hit.
        let (mut w, mut r) = tokio::io::duplex(3);
        let wire = wire.to_vec();
        let writer = tokio::spawn(async move {
            let _ = w.write_all(&wire).await;
        });
        let got = read_answer(&mut r, head).await;
        drop(r);
        let _ = writer.await;
        got
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn content_length_chunked_and_to_the_end_bodies_are_read_whole() {
        block(async {
            let (a, keep) = answer(
                b"HTTP/1.1 201 Created\r\nX-Worker-Pid: 42\r\nx-server-version: v7\r\nContent-Length: 13\r\n\r\n{\"cart_id\":1}",
                false,
            )
            .await
            .expect("answer");
            assert_eq!((a.status, a.worker_pid), (201, 42));
            assert_eq!(a.body(), b"{\"cart_id\":1}");
            assert_eq!(a.version(), Some(&b"v7"[..]));
            assert!(keep);

            // Read at once, so the stray byte is in the buffer with the answer.
            let mut wire = &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc"[..];
            let (a, keep) = read_answer(&mut wire, false).await.expect("answer");
            assert_eq!(a.body(), b"ab");
            assert!(!keep, "a stray byte after the answer ends the connection");

            let (a, keep) = answer(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n",
                false,
            )
            .await
            .expect("answer");
            assert_eq!((a.status, a.body()), (200, &b"hello, world"[..]));
            assert!(keep);

            let (a, keep) = answer(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", false)
                .await
                .expect("answer");
            assert_eq!(a.body(), b"until the end");
            assert!(!keep);

            let (a, keep) = answer(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
                true,
            )
            .await
            .expect("answer");
            assert_eq!((a.status, a.body()), (200, &b""[..]));
            assert!(!keep, "Connection: close ends it");
            let (_, keep) = answer(
                b"HTTP/1.0 204 No Content\r\nConnection: Keep-Alive\r\n\r\n",
                false,
            )
            .await
            .expect("answer");
            assert!(keep, "HTTP/1.0 with keep-alive stays open");
        });
    }

    #[test]
    fn a_cut_short_or_malformed_answer_is_closed() {
        block(async {
            for wire in [
                &b""[..],
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                b"SMTP ready\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nX: y",
            ] {
                let got = answer(wire, false).await.map(|(a, _)| a.status);
                assert_eq!(
                    got.err(),
                    Some(Class::Closed),
                    "{}",
                    String::from_utf8_lossy(wire)
                );
            }
        });
    }
}
