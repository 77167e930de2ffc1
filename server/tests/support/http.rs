//! HTTP helpers for the integration tests: a JSON client with the shop's calls and
//! audit checks, and raw-socket helpers (one exchange of arbitrary bytes, or one
//! keep-alive connection used request by request) for tests that must see exactly
//! what went over which connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{Server, WAIT};

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("request got no response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("response body");
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Answer {
        status,
        headers,
        json,
    }
}

pub async fn get(client: &reqwest::Client, server: &Server, path: &str) -> Answer {
    send(client.get(server.url(path))).await
}

pub async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    key: Option<&str>,
    body: serde_json::Value,
) -> Answer {
    let mut req = client.post(server.url(path)).json(&body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    send(req).await
}

/// Creates a cart holding `quantity` of `product`; returns its id.
pub async fn cart_with(
    client: &reqwest::Client,
    server: &Server,
    product: i64,
    quantity: i64,
) -> i64 {
    let created = post(client, server, "/carts", None, serde_json::json!({})).await;
    assert_eq!(created.status, 201, "POST /carts: {created:?}");
    let cart_id = created.json["cart_id"].as_i64().expect("cart_id");
    let added = post(
        client,
        server,
        &format!("/carts/{cart_id}/items"),
        None,
        serde_json::json!({"product_id": product, "quantity": quantity}),
    )
    .await;
    assert_eq!(added.status, 200, "add item: {added:?}");
    cart_id
}

pub async fn audit(client: &reqwest::Client, server: &Server) -> serde_json::Value {
    let answer = get(client, server, "/admin/audit").await;
    assert_eq!(answer.status, 200, "audit: {answer:?}");
    answer.json
}

/// Asserts the audit invariants and returns the audit.
pub async fn audit_holds(client: &reqwest::Client, server: &Server) -> serde_json::Value {
    let audit = audit(client, server).await;
    assert_eq!(audit["stock_balanced"], true, "stock unbalanced: {audit}");
    assert_eq!(audit["negative_stock"], false, "negative stock: {audit}");
    assert_eq!(
        audit["duplicate_idempotency_keys"], 0,
        "duplicates: {audit}"
    );
    audit
}

/// Sends raw bytes on a fresh connection and reads until the server closes it or
/// `within` passes; returns what came back.
pub fn raw_exchange(addr: SocketAddr, request: &[u8], within: Duration) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(within)).expect("timeout");
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One raw keep-alive HTTP/1.1 connection, so a test knows exactly which connection
/// each request used (a pooled client would quietly open another).
pub struct KeepAlive {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A raw response: status, X-Worker-Pid, whether it said `Connection: close`.
#[derive(Debug, Clone, Copy)]
pub struct RawAnswer {
    pub status: u16,
    pub pid: u32,
    pub close: bool,
}

impl KeepAlive {
    pub fn connect(addr: SocketAddr) -> std::io::Result<KeepAlive> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(WAIT))?;
        stream.set_nodelay(true)?;
        Ok(KeepAlive {
            stream,
            buf: Vec::new(),
        })
    }

    /// Waits (up to [`WAIT`]) until the server closes this idle connection: `Ok` on
    /// a clean close (EOF), an error on a reset, on unexpected bytes or a timeout.
    pub fn wait_closed(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 256];
        match self.stream.read(&mut chunk)? {
            0 => Ok(()),
            n => Err(std::io::Error::other(format!(
                "{n} unexpected bytes on an idle connection"
            ))),
        }
    }

    pub fn get(&mut self, path: &str) -> std::io::Result<RawAnswer> {
        use std::io::{Error, ErrorKind};
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        self.stream.write_all(request.as_bytes())?;
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed before a response",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let length: usize = header("content-length:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < head_end + length {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "closed inside a body"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.buf.drain(..head_end + length);
        Ok(RawAnswer {
            status,
            pid: header("x-worker-pid:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            close: header("connection:").is_some_and(|v| v == "close"),
        })
    }
}
