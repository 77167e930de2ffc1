//! Bad input against the real binary: every malformed request gets its 4xx (with a
//! JSON error body where there is a response at all), stalled clients are cut off,
//! running out of file descriptors backs off, and the server serves the next request.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use serde_json::json;

use support::*;

async fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let db = dir.path().join("shop.db");
    let mut args = vec!["--mode", "single", "--db", db.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    Server::start(&args).await
}

async fn still_serving(c: &reqwest::Client, server: &Server) {
    let health = get(c, server, "/healthz").await;
    assert_eq!(
        health.status, 200,
        "server must serve the next request: {health:?}"
    );
}

#[tokio::test]
async fn each_bad_request_gets_its_answer() {
    let dir = temp_dir("bad");
    let server = start(&dir, &["--products", "3"]).await;
    let c = client();
    let cart_id = cart_with(&c, &server, 1, 1).await;
    let items = format!("/carts/{cart_id}/items");

    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "malformed JSON",
            c.post(server.url(&items)).body("{\"product_id\": 1, "),
            400,
        ),
        ("unknown route", c.get(server.url("/nope")), 404),
        ("unknown product", c.get(server.url("/products/999")), 404),
        ("non-numeric id", c.get(server.url("/products/abc")), 404),
        ("unknown cart", c.get(server.url("/carts/424242")), 404),
        ("unknown order", c.get(server.url("/orders/424242")), 404),
        ("wrong method", c.delete(server.url("/products")), 405),
        (
            "body over 64 KiB",
            c.post(server.url(&items)).body(vec![b' '; 70 * 1024]),
            413,
        ),
        (
            "quantity 0",
            c.post(server.url(&items))
                .json(&json!({"product_id": 1, "quantity": 0})),
            400,
        ),
        (
            "negative quantity",
            c.post(server.url(&items))
                .json(&json!({"product_id": 1, "quantity": -5})),
            400,
        ),
        (
            "absurd quantity",
            c.post(server.url(&items))
                .json(&json!({"product_id": 1, "quantity": 1_000_000_000})),
            400,
        ),
        (
            "item of an unknown product",
            c.post(server.url(&items))
                .json(&json!({"product_id": 77, "quantity": 1})),
            404,
        ),
        (
            "checkout without Idempotency-Key",
            c.post(server.url("/checkout"))
                .json(&json!({"cart_id": cart_id})),
            400,
        ),
        (
            "checkout of an unknown cart",
            c.post(server.url("/checkout"))
                .header("Idempotency-Key", "k-unknown")
                .json(&json!({"cart_id": 999_999})),
            404,
        ),
    ];
    for (what, req, expected) in cases {
        let answer = send(req).await;
        assert_eq!(
            answer.status, expected,
            "{what}: expected {expected}, got {answer:?}"
        );
        assert!(
            answer.json.get("error").is_some(),
            "{what}: expected a JSON error body, got {answer:?}"
        );
        assert!(
            !answer.header("x-worker-pid").is_empty(),
            "{what}: no X-Worker-Pid"
        );
        still_serving(&c, &server).await;
    }
    let audit = audit_holds(&c, &server).await;
    assert_eq!(audit["orders"], 0, "{audit}");
}

#[tokio::test]
async fn garbage_and_stalled_clients_never_kill_the_server() {
    let dir = temp_dir("garbage");
    let server = start(&dir, &["--header-timeout", "1s"]).await;
    // No pooled connections: the 1 s header timeout also closes idle keep-alive ones.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");

    let mut noise = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let answer = raw_exchange(server.addr, &noise, WAIT);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "random bytes: expected a 400 or a close, got {answer:?}"
    );
    still_serving(&c, &server).await;

    let huge_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000));
    let answer = raw_exchange(server.addr, huge_header.as_bytes(), WAIT);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "oversized head: expected a 4xx or a close, got {answer:?}"
    );
    still_serving(&c, &server).await;

    // A client that never finishes its request head is disconnected.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(server.addr).expect("connect");
    stalled
        .write_all(b"GET /products HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    stalled.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut rest = Vec::new();
    let read = stalled.read_to_end(&mut rest);
    assert!(
        read.is_ok() && started.elapsed() < WAIT,
        "expected the server to close a stalled client after ~1s, got {read:?} after {:?}",
        started.elapsed()
    );
    still_serving(&c, &server).await;
}

#[tokio::test]
async fn running_out_of_fds_backs_off_and_recovers() {
    fd_exhaustion("single", 100).await;
}

#[tokio::test]
async fn a_cluster_worker_out_of_fds_backs_off_and_recovers() {
    fd_exhaustion("cluster", 200).await;
}

/// Runs `mode` with a hard limit of 64 open files (workers inherit it), floods it
/// with `flood` connections, and checks that accept backs off (rate-limited
/// warnings), that a connection made before the flood is still served, and that new
/// connections are served once the flood is gone.
async fn fd_exhaustion(mode: &str, flood: usize) {
    let dir = temp_dir(&format!("emfile-{mode}"));
    let db = dir.path().join("shop.db");
    let mut cmd = std::process::Command::new(BIN);
    // A connection cap above the file limit: this is about what accept does when
    // the descriptors run out anyway (the cap's own back-pressure is in hostile.rs).
    cmd.args([
        "--mode",
        mode,
        "--workers",
        "2",
        "--max-connections",
        "1000",
        "--listen",
        "127.0.0.1:0",
        "--db",
    ])
    .arg(&db);
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::start_command(cmd, db).await;
    if mode == "cluster" {
        server.log.wait_for("workers ready", WAIT).await;
    }
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    // One keep-alive connection established before the flood.
    let mut kept = TcpStream::connect(server.addr).expect("connect");
    let ask = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let read_answer = |s: &mut TcpStream| {
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).expect("answer on the kept connection");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    kept.write_all(ask).expect("send");
    assert!(read_answer(&mut kept).starts_with("HTTP/1.1 200"));

    // More connections than the server can hold.
    let flood_started = Instant::now();
    let flood: Vec<TcpStream> = (0..flood)
        .filter_map(|_| TcpStream::connect(server.addr).ok())
        .collect();
    server.log.wait_for("backing off", WAIT).await;
    kept.write_all(ask).expect("send");
    let answer = read_answer(&mut kept);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the existing connection must still be served while accept backs off: {answer:?}"
    );
    let warnings = server.log.count("backing off");
    let flood_secs = flood_started.elapsed().as_secs() as usize;
    drop(flood);
    // Once the flood is gone, new connections are served again.
    let deadline = Instant::now() + WAIT;
    loop {
        let ok = c
            .get(server.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not recover after the flood"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        warnings <= flood_secs + 2,
        "warnings must be rate-limited to one a second: {warnings} in {flood_secs}s"
    );
}
