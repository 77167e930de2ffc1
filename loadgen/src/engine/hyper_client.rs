//! The reference client path: the same attempt through hyper's HTTP/1.1 client
//! connection (a connection task per connection, the request handed to it over a
//! channel), as loadgen measured before the lean client (`engine::h1`). It is kept
//! for one job: the differential test runs a scenario through both paths against the
//! misbehaving server and compares the counts. `LOADGEN_HTTP_CLIENT=hyper` selects it;
//! nothing else goes through it.

use crate::engine::answer::Answer;
use crate::engine::conn::{NoAnswer, Req};
use crate::outcome::Class;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpStream;

/// An open hyper connection; its connection task keeps the open-connections gauge.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

struct OpenGuard(Arc<AtomicU64>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub async fn handshake(stream: TcpStream, open: &Arc<AtomicU64>) -> Result<Conn, NoAnswer> {
    let (sender, connection) = Builder::new()
        .read_buf_exact_size(Some(4096))
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|_| NoAnswer::from(Class::Closed))?;
    open.fetch_add(1, Ordering::Relaxed);
    let guard = OpenGuard(open.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let _ = connection.await;
    });
    Ok(Conn { sender })
}

impl Conn {
    /// An idle connection the server closed is not reused.
    pub async fn reusable(&mut self) -> bool {
        !(self.sender.is_closed() || self.sender.ready().await.is_err())
    }

    /// Sends the request and reads the whole answer; the bool says whether the
    /// connection may be reused.
    pub async fn exchange(
        &mut self,
        host: &str,
        req: &Req<'_>,
    ) -> Result<(Answer, bool), NoAnswer> {
        let mut b = Request::builder()
            .method(req.shape.method.clone())
            .uri(format!("{}{}", req.shape.base_path, req.path))
            .header(HOST, host);
        if let Some(ct) = &req.shape.content_type {
            b = b.header(CONTENT_TYPE, &**ct);
        }
        for line in req.headers.split_terminator("\r\n") {
            if let Some((name, value)) = line.split_once(": ") {
                b = b.header(name, value);
            }
        }
        if let Some(k) = req.key {
            b = b.header("idempotency-key", k);
        }
        let request = b
            .body(Full::new(Bytes::copy_from_slice(req.body)))
            .map_err(|e| NoAnswer {
                class: Class::GeneratorError,
                why: Some(format!("request: {e}")),
            })?;
        let resp = self
            .sender
            .send_request(request)
            .await
            .map_err(|_| NoAnswer::from(Class::Closed))?;
        let status = resp.status().as_u16();
        let headers = resp.headers();
        let worker_pid = headers
            .get("x-worker-pid")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0);
        let version = headers.get("x-server-version").cloned();
        let resp_cookies: Vec<_> = headers.get_all("set-cookie").iter().cloned().collect();
        let close = headers
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|_| NoAnswer::from(Class::Closed))?
            .to_bytes();
        let answer = Answer::copied(
            status,
            worker_pid,
            version.as_ref().map(|v| v.as_bytes()),
            &body,
            resp_cookies.iter().map(|c| c.as_bytes()),
        );
        Ok((answer, !close))
    }
}
