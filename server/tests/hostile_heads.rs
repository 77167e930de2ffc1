//! Oversized requests against the real binary, on raw sockets so that every byte and
//! the close are seen: 413 with `Connection: close` on every route (declared,
//! chunked, or sent in full by a client that writes everything before reading), a
//! small body on a route that ignores it leaves the connection usable, and the
//! statuses RFC 9110 names for oversized lengths (413), request lines (414) and
//! heads (431), each with the shop's JSON error and worker headers.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use support::*;

/// Every route, with a body it accepts (or ignores).
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/products", ""),
    ("GET", "/products/1", ""),
    ("POST", "/carts", "{}"),
    (
        "POST",
        "/carts/1/items",
        r#"{"product_id": 1, "quantity": 1}"#,
    ),
    ("GET", "/carts/1", ""),
    ("POST", "/checkout", r#"{"cart_id": 999999}"#),
    ("GET", "/orders/1", ""),
    ("GET", "/healthz", ""),
    ("GET", "/admin/audit", ""),
    ("GET", "/no/such/route", ""),
    ("DELETE", "/products", ""),
];

async fn single(dir: &TempDir) -> Server {
    let db = dir.path().join("shop.db");
    Server::start(&["--mode", "single", "--db", db.to_str().expect("utf-8 path")]).await
}

/// Sends `request` (then `then`, if any, without reading first); expects an answer
/// with `status`, the shop's JSON error, worker headers and `Connection: close`,
/// then the close.
fn expect_closing_answer(addr: SocketAddr, what: &str, request: &[u8], then: &[u8], status: u16) {
    expect_answer(addr, what, request, then, status, true);
}

/// As [`expect_closing_answer`]; with `close` false, the answer must keep the
/// connection open and the next request on it must be served.
fn expect_answer(
    addr: SocketAddr,
    what: &str,
    request: &[u8],
    then: &[u8],
    status: u16,
    close: bool,
) {
    let mut stream = connect(addr, WAIT).expect("connect");
    stream
        .write_all(request)
        .unwrap_or_else(|e| panic!("{what}: send: {e}"));
    if !then.is_empty() {
        // A client that sends its whole body before it reads: the server must
        // let it finish (lingering close), or the answer is lost to a reset.
        stream
            .write_all(then)
            .unwrap_or_else(|e| panic!("{what}: sending the rest: {e}"));
    }
    let mut buf = Vec::new();
    let answer = read_response(&mut stream, &mut buf)
        .unwrap_or_else(|e| panic!("{what}: no answer: {e}"))
        .unwrap_or_else(|| panic!("{what}: closed without an answer"));
    assert_eq!(
        answer.status, status,
        "{what}: expected {status}, got {answer:?}"
    );
    assert_eq!(
        answer.closes(),
        close,
        "{what}: Connection: close expected {close}: {answer:?}"
    );
    assert!(
        answer.text().contains("\"error\""),
        "{what}: no JSON error in {answer:?}"
    );
    assert!(
        answer.header("x-worker-pid").is_some(),
        "{what}: no X-Worker-Pid in {answer:?}"
    );
    assert!(
        answer.header("x-server-version").is_some(),
        "{what}: no X-Server-Version"
    );
    if close {
        wait_eof(&mut stream, &buf, WAIT).unwrap_or_else(|e| panic!("{what}: {e}"));
    } else {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let next = read_response(&mut stream, &mut buf);
        assert!(
            matches!(&next, Ok(Some(r)) if r.status == 200),
            "{what}: the connection must stay usable, got {next:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_413_with_connection_close() {
    let dir = temp_dir("413");
    let server = single(&dir).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let big = vec![b' '; 70 * 1024];
        for &(method, path, _) in ROUTES {
            let declared = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                big.len()
            );
            let what = format!("{method} {path} with Content-Length {}", big.len());
            expect_closing_answer(addr, &what, declared.as_bytes(), &big, 413);

            let mut chunked = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .into_bytes();
            for _ in 0..3 {
                chunked.extend_from_slice(format!("{:x}\r\n", 30_000).as_bytes());
                chunked.extend(std::iter::repeat_n(b' ', 30_000));
                chunked.extend_from_slice(b"\r\n");
            }
            chunked.extend_from_slice(b"0\r\n\r\n");
            let what = format!("{method} {path} with a 90,000-byte chunked body");
            expect_closing_answer(addr, &what, &chunked, b"", 413);
        }
        // The issue's case: 200 MB on a route that ignores its body (20 MB here).
        let head = b"POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n";
        expect_closing_answer(
            addr,
            "POST /carts with 20 MB sent in full",
            head,
            &vec![b'x'; 20_000_000],
            413,
        );
    })
    .await
    .expect("clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_on_any_route_leaves_the_connection_usable() {
    let dir = temp_dir("bodies-ok");
    let server = single(&dir).await;
    let c = client();
    cart_with(&c, &server, 1, 1).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr, WAIT).expect("connect");
        let mut buf = Vec::new();
        for &(method, path, body) in ROUTES {
            // Routes that take no body get one anyway: it is read and ignored.
            let body = if body.is_empty() { "{\"ignored\": true}" } else { body };
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k-{method}-{path}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            // The body comes a moment after the head, as over a real network: a
            // server that answers without reading it finds it later and must not
            // take it for the next request, nor drop the connection.
            stream.write_all(head.as_bytes()).expect("send");
            std::thread::sleep(Duration::from_millis(30));
            stream.write_all(body.as_bytes()).expect("send");
            let answer = read_response(&mut stream, &mut buf)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
                .unwrap_or_else(|| panic!("{method} {path}: the connection closed"));
            assert!(answer.status < 500, "{method} {path}: {answer:?}");
            assert!(!answer.closes(), "{method} {path}: closes after a small body: {answer:?}");
        }
        // Same connection: still usable, and one request pipelined after a body.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        for i in 0..2 {
            let answer = read_response(&mut stream, &mut buf).expect("answer").expect("not closed");
            assert_eq!(answer.status, 200, "pipelined #{i}: {answer:?}");
        }
    })
    .await
    .expect("client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_lengths_and_paths_get_the_rfc_status() {
    let dir = temp_dir("rfc");
    let server = single(&dir).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let path = |len: usize| format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(len));
        let many_headers: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
        // (what, request, status, whether the connection closes after it)
        let cases: Vec<(&str, String, u16, bool)> = vec![
            (
                "Content-Length 18446744073709551615",
                "POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n".to_owned(),
                413,
                true,
            ),
            (
                "Content-Length of 24 digits",
                "POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999999999999\r\n\r\n".to_owned(),
                413,
                true,
            ),
            (
                "Content-Length 10^19 (fits in 64 bits)",
                "POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000000000000\r\n\r\n".to_owned(),
                413,
                true,
            ),
            // Within the head limit: answered by the shop, the connection stays.
            ("a 9 KB path", path(9 * 1024), 414, false),
            ("a 64 KB path", path(64 * 1024), 414, true),
            ("a 1 MB path", path(1024 * 1024), 414, true),
            ("a 100 KB header", format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(100_000)), 431, true),
            ("150 header fields", format!("GET / HTTP/1.1\r\n{many_headers}\r\n"), 431, true),
            ("a malformed method", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(), 400, true),
        ];
        for (what, request, status, close) in cases {
            expect_answer(addr, what, request.as_bytes(), b"", status, close);
        }
        let mut buf = Vec::new();
        let mut stream = connect(addr, Duration::from_secs(10)).expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
        let answer = read_response(&mut stream, &mut buf).expect("answer").expect("not closed");
        assert_eq!(answer.status, 200, "still serving: {answer:?}");
    })
    .await
    .expect("clients");
}
