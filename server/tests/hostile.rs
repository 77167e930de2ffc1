//! Hostile clients against the real binary, on loopback: bodies sent one byte per
//! TCP segment (the worker's memory must not grow with the number of segments),
//! bodies that stop or never end (408 and closed within the body timeout), a flood
//! of slow-body connections (normal clients keep being served; their latency is
//! printed, and a process limited to 512 files is not stopped either). The connection
//! cap is in `hostile_conns.rs`, statuses for oversized requests in
//! `hostile_heads.rs`, a full disk in `hostile_disk.rs`.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::*;

async fn single(dir: &TempDir, extra: &[&str]) -> Server {
    let db = dir.path().join("shop.db");
    let mut args = vec!["--mode", "single", "--db", db.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    Server::start(&args).await
}

/// A JSON add-item body padded with spaces to `len` bytes.
fn padded_item(len: usize) -> Vec<u8> {
    let mut body = br#"{"product_id": 1, "quantity": 1}"#.to_vec();
    body.resize(len, b' ');
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_segments_do_not_grow_the_worker() {
    const CONNS: usize = 20;
    const BYTES: usize = 4000;
    let dir = temp_dir("segments");
    let server = start_cluster(Path::new(BIN), &dir, &["--workers", "1"]).await;
    let worker = *server.children().first().expect("one worker");
    let c = client();
    let cart = cart_with(&c, &server, 1, 1).await;
    let head = format!(
        "POST /carts/{cart}/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {BYTES}\r\n\r\n"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = vm_kib(worker, "VmRSS").expect("worker RSS");

    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(vm_kib(worker, "VmRSS").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let started = Instant::now();
    let senders: Vec<_> = (0..CONNS)
        .map(|_| {
            let (addr, head) = (server.addr, head.clone());
            std::thread::spawn(move || {
                trickle(
                    addr,
                    head.as_bytes(),
                    &padded_item(BYTES),
                    Duration::from_millis(1),
                )
            })
        })
        .collect();
    for (i, sender) in senders.into_iter().enumerate() {
        let answer = sender.join().expect("sender thread");
        let answer = answer.unwrap_or_else(|e| panic!("connection {i}: no answer: {e}"));
        assert_eq!(answer.status, 200, "connection {i}: {}", answer.text());
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler").max(before);
    let after = vm_kib(worker, "VmRSS").expect("worker RSS");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "FIGURE one-byte segments: {CONNS} x {BYTES} bytes in {took:?}; worker RSS before {before} KiB, peak {peak} KiB (+{growth} KiB), after {after} KiB"
    );
    // Before the fix each 1-byte frame pinned ~4 KB: this load reached 334 MB.
    assert!(
        growth < 6 * 1024,
        "worker RSS grew by {growth} KiB (before {before}, peak {peak}); expected under 6 MiB"
    );
}

/// Sends `request`, then waits for the answer and the close; returns the answer
/// and how long after sending the connection was closed.
fn answer_and_close(
    addr: SocketAddr,
    request: &[u8],
    trickle_pause: Option<Duration>,
) -> (RawResponse, Duration) {
    let mut stream = connect(addr, WAIT).expect("connect");
    stream.write_all(request).expect("send");
    let started = Instant::now();
    if let Some(pause) = trickle_pause {
        let mut writer = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            // Never ends: one byte per pause, faster than the minimum rate.
            while writer.write_all(b" ").is_ok() {
                std::thread::sleep(pause);
            }
        });
    }
    let mut buf = Vec::new();
    let answer = read_response(&mut stream, &mut buf)
        .expect("an answer")
        .expect("an answer, not a bare close");
    wait_eof(&mut stream, &buf, WAIT).unwrap_or_else(|e| panic!("after {answer:?}: {e}"));
    (answer, started.elapsed())
}

/// Truncated, never-finished and never-sent bodies against a server with
/// `--body-timeout timeout_s` and `extra` flags: each gets 408 with
/// `Connection: close` and is closed within `cut_within`.
fn bodies_are_cut(
    addr: SocketAddr,
    label: &str,
    cases: &[(&str, &[u8], Option<Duration>)],
    cut_within: Duration,
) {
    let threads: Vec<_> = cases
        .iter()
        .map(|&(what, request, trickle)| {
            let request = request.to_vec();
            (
                what,
                std::thread::spawn(move || answer_and_close(addr, &request, trickle)),
            )
        })
        .collect();
    for (what, thread) in threads {
        let (answer, took) = thread
            .join()
            .unwrap_or_else(|_| panic!("{label} {what}: client panicked"));
        eprintln!(
            "FIGURE {label}: {what}: {} and closed after {took:?}",
            answer.status
        );
        assert_eq!(
            answer.status, 408,
            "{label} {what}: expected 408, got {answer:?}"
        );
        assert!(
            answer.closes(),
            "{label} {what}: 408 without Connection: close: {answer:?}"
        );
        assert!(
            answer.text().contains("\"error\""),
            "{label} {what}: {}",
            answer.text()
        );
        assert!(
            took < cut_within,
            "{label} {what}: closed after {took:?}, expected within {cut_within:?}"
        );
    }
}

const TRUNCATED: &[u8] =
    b"POST /carts/1/items HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"product_id\": 1";
const NO_LAST_CHUNK: &[u8] =
    b"POST /carts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
const EXPECT_NO_BODY: &[u8] =
    b"POST /checkout HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nContent-Length: 30\r\nExpect: 100-continue\r\n\r\n";
const NEVER_ENDING: &[u8] = b"GET /products HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_never_ending_bodies_are_closed_within_the_body_timeout() {
    let dir = temp_dir("bodies");
    // The defaults' minimum rate (500 bytes/s after 1 s) cuts a stopped body after
    // about a second; a body that keeps coming fast enough runs into the timeout.
    let server = single(&dir, &["--body-timeout", "3s"]).await;
    let addr = server.addr;
    let margin = Duration::from_secs(2);
    let cases: [(&str, &[u8], _); 4] = [
        ("Content-Length 100, 15 bytes sent", TRUNCATED, None),
        ("chunked, no last chunk", NO_LAST_CHUNK, None),
        ("Expect: 100-continue, no body", EXPECT_NO_BODY, None),
        (
            "never-ending body at ~650 bytes/s",
            NEVER_ENDING,
            Some(Duration::from_micros(1500)),
        ),
    ];
    tokio::task::spawn_blocking(move || {
        bodies_are_cut(
            addr,
            "min-rate 500",
            &cases,
            Duration::from_secs(3) + margin,
        )
    })
    .await
    .expect("cases");

    // Without a minimum rate, the body timeout alone cuts them.
    let dir = temp_dir("bodies-timeout");
    let server = single(&dir, &["--body-timeout", "2s", "--body-min-rate", "0"]).await;
    let addr = server.addr;
    let cases: [(&str, &[u8], _); 3] = [
        ("Content-Length 100, 15 bytes sent", TRUNCATED, None),
        ("chunked, no last chunk", NO_LAST_CHUNK, None),
        ("Expect: 100-continue, no body", EXPECT_NO_BODY, None),
    ];
    tokio::task::spawn_blocking(move || {
        bodies_are_cut(addr, "no min-rate", &cases, Duration::from_secs(2) + margin)
    })
    .await
    .expect("cases");
    let health = get(&client(), &server, "/healthz").await;
    assert_eq!(health.status, 200, "still serving: {health:?}");
}

/// Keeps `conns` slow-body connections up while a normal client makes `gets`
/// GETs, each on a new connection; asserts every GET answered 200 and the server
/// cut slow bodies; prints the normal client's latency.
async fn normal_clients_under_a_slow_body_flood(
    server: &Server,
    label: &str,
    conns: usize,
    gets: usize,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(90);
    let (stats, tasks) = slow_body_flood(server.addr, conns, until, Arc::clone(&stop));
    // Let the flood build up: every slot taken before the normal client starts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let addr = server.addr;
    let results = tokio::task::spawn_blocking(move || {
        timed_gets(
            addr,
            "/products/1",
            gets,
            Duration::from_millis(20),
            Duration::from_secs(30),
        )
    })
    .await
    .expect("normal client");
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let mut latencies: Vec<Duration> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    latencies.sort();
    eprintln!(
        "FIGURE {label}: {gets} normal GETs under {conns} slow-body connections: p50 {:?}, p99 {:?}, max {:?}; flood: {} connections, {} answered 408, {} connect errors",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default(),
        stats.connections.load(Ordering::Relaxed),
        stats.timeouts.load(Ordering::Relaxed),
        stats.connect_errors.load(Ordering::Relaxed),
    );
    assert!(
        failures.is_empty(),
        "{label}: {} of {gets} normal GETs failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    assert!(
        stats.timeouts.load(Ordering::Relaxed) > 0,
        "{label}: the server cut no slow body with 408"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_body_connections_do_not_stop_normal_clients() {
    let dir = temp_dir("flood");
    let server = start_cluster(Path::new(BIN), &dir, &["--workers", "2"]).await;
    normal_clients_under_a_slow_body_flood(&server, "cluster of 2", 1000, 200).await;
    assert_eq!(server.log.count("exited"), 0, "no worker died");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_512_descriptors_a_flood_of_1100_cannot_stop_the_server() {
    let dir = temp_dir("flood-fds");
    let db = dir.path().join("shop.db");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["--mode", "single", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db);
    limit_open_files(&mut cmd, 512);
    let server = Server::start_command(cmd, db).await;
    normal_clients_under_a_slow_body_flood(&server, "single, 512 fds", 1100, 10).await;
    assert!(
        server.log.count("connection limit reached") > 0,
        "expected accept to pause at the cap (448), log:\n{}",
        server.log.lines().join("\n")
    );
    assert_eq!(
        server.log.count("accept failed"),
        0,
        "the cap keeps accept from running out of fds"
    );
}

/// Sets the open-file limit of the started process (soft and hard).
fn limit_open_files(cmd: &mut std::process::Command, n: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
