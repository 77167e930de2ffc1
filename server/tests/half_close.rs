//! A client that sends its whole request and then shuts down its write side (as
//! `printf ... | nc` does, and some HTTP/1.0 clients) still gets its answer, whether
//! the handler answers at once (`/healthz`) or waits on the database (`POST /carts`),
//! and the server then closes the connection.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use support::*;

/// Sends `request`, half-closes, and reads until the server closes.
fn half_closed_exchange(server: &Server, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream.write_all(request).expect("send the request");
    stream.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the server answers, then closes");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_its_answer() {
    let dir = temp_dir("half-close");
    let db = dir.path().join("shop.db");
    let server = Server::start(&["--mode", "single", "--db", db.to_str().expect("utf-8")]).await;
    // Repeated: without half-close support the answer is lost whenever the EOF is
    // read before the handler is done, which for a database write is nearly always.
    for i in 0..20 {
        let health = half_closed_exchange(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(health.starts_with("HTTP/1.1 200"), "round {i}: {health:?}");
        let cart = half_closed_exchange(
            &server,
            b"POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(cart.starts_with("HTTP/1.1 201"), "round {i}: {cart:?}");
    }
}
