//! What holds a connection, against the real binary on raw sockets: the connection
//! cap (`--max-connections`: the next connection waits in the kernel's queue and is
//! served once one closes) and a client that sends requests but never reads the
//! answers (cut at the send timeout, `--body-timeout`, so it cannot keep its place
//! under the cap forever).

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::*;

async fn single(dir: &TempDir, extra: &[&str]) -> Server {
    let db = dir.path().join("shop.db");
    let mut args = vec!["--mode", "single", "--db", db.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    Server::start(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_new_connections_back_until_one_closes() {
    const CAP: usize = 8;
    let dir = temp_dir("cap");
    let server = single(&dir, &["--max-connections", &CAP.to_string()]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut held: Vec<KeepAlive> = (0..CAP)
            .map(|i| {
                let mut conn = KeepAlive::connect(addr).expect("connect");
                let answer = conn
                    .get("/healthz")
                    .unwrap_or_else(|e| panic!("connection {i}: {e}"));
                assert_eq!(answer.status, 200);
                conn
            })
            .collect();
        // One more: the kernel queues it; the server does not accept it yet.
        let mut waiting = connect(addr, Duration::from_millis(800)).expect("connect");
        waiting
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let early = read_response(&mut waiting, &mut Vec::new());
        assert!(
            early.is_err(),
            "a connection past the cap of {CAP} was served at once: {early:?}"
        );
        // The held ones are still served meanwhile.
        let answer = held[0].get("/products/1").expect("held connection");
        assert_eq!(answer.status, 200);
        drop(held.pop());
        waiting.set_read_timeout(Some(WAIT)).expect("timeout");
        let answer = read_response(&mut waiting, &mut Vec::new())
            .expect("served once a connection closed")
            .expect("an answer");
        assert_eq!(answer.status, 200, "{answer:?}");
    })
    .await
    .expect("clients");
    assert!(
        server.log.count("connection limit reached (8 open)") > 0,
        "the cap is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_at_the_send_timeout() {
    let dir = temp_dir("never-reads");
    // One connection allowed: while the non-reader holds it, nobody else is served.
    let extra = [
        "--max-connections",
        "1",
        "--body-timeout",
        "2s",
        "--products",
        "3000",
    ];
    let server = single(&dir, &extra).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // 200 pipelined GET /products (~180 KB each), and not a byte read.
        let mut hog = connect(addr, WAIT).expect("connect");
        let requests = "GET /products HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);
        hog.write_all(requests.as_bytes()).expect("send");
        let started = Instant::now();
        let mut next = connect(addr, WAIT).expect("connect");
        next.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
        let answer = read_response(&mut next, &mut Vec::new());
        let waited = started.elapsed();
        eprintln!("FIGURE a client that never reads held the only connection for {waited:?} (send timeout 2s)");
        assert!(
            matches!(&answer, Ok(Some(r)) if r.status == 200),
            "the next client was not served within {WAIT:?} while a non-reading client held the cap: {answer:?}"
        );
        drop(hog);
    })
    .await
    .expect("clients");
    let health = get(&client(), &server, "/healthz").await;
    assert_eq!(health.status, 200, "{health:?}");
}
