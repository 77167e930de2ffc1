//! The differential test of the lean client (`engine::h1`): the same scenario run
//! through it and through hyper's client (`LOADGEN_HTTP_CLIENT=hyper`, the path
//! loadgen measured with before) against the same misbehaving servers gives the same
//! counts, class by class, and the servers see the same requests and connections.
//! The policies decide per connection, never by arrival order, so the counts are
//! the same whatever order users arrive in.

mod common;

use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// Runs `scenario` with the given client path.
fn run_with(client: &str, tag: &str, scenario: &str) -> Run {
    let tmp = temp_dir(tag);
    let path = tmp.path().join(format!("{tag}.toml"));
    std::fs::write(&path, scenario).expect("write scenario");
    let dir = tmp.path().join("out");
    let output = loadgen()
        .env("LOADGEN_HTTP_CLIENT", client)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&dir)
        .arg("--quiet")
        .output()
        .expect("run loadgen");
    Run { output, dir, tmp }
}

/// Every count of summary.csv (latencies left out: they differ run to run).
const COUNTS: [&str; 16] = [
    "sent",
    "requests",
    "ok",
    "status_4xx",
    "status_503",
    "status_5xx",
    "refused",
    "closed",
    "timeout",
    "cut",
    "generator_error",
    "dropped",
    "failed",
    "attempts",
    "attempt_failures",
    "retried",
];

fn counts(run: &Run) -> Vec<(String, String, &'static str, String)> {
    let mut out = Vec::new();
    for row in run.csv("summary.csv") {
        for c in COUNTS {
            out.push((row["mode"].clone(), row["step"].clone(), c, row[c].clone()));
        }
    }
    for row in run.csv("modes.csv") {
        for c in ["users_started", "users_completed", "users_aborted"] {
            if let Some(v) = row.get(c) {
                out.push((row["mode"].clone(), String::new(), c, v.clone()));
            }
        }
    }
    out
}

const JOURNEY: &str = r#"
[[journey]]
name = "list"
path = "/products"

[[journey]]
name = "cart"
method = "POST"
path = "/carts"
body = '{"user": ${user}}'
idempotency_key = true
expect = [200, 201]

[[journey]]
name = "view"
path = "/products/${rand:1..5}"
repeat = 3
"#;

/// Per connection: the 10th, 20th... closes on its first request; the 7th, 14th...
/// answers 503 to it; the 13th, 26th... never answers; the 11th, 22nd... answers 404;
/// the rest answer 200 to everything.
fn by_connection() -> Policy {
    Arc::new(|s: &Seen| match s.connection {
        c if s.first_on_connection && c % 10 == 0 => Action::Close,
        c if s.first_on_connection && c % 7 == 0 => Action::Answer(503),
        c if s.first_on_connection && c % 13 == 0 => Action::Hang,
        c if s.first_on_connection && c % 11 == 0 => Action::Answer(404),
        _ => Action::Answer(200),
    })
}

#[test]
fn lean_and_hyper_clients_count_the_same_against_the_misbehaving_server() {
    // No retries: each user keeps one connection, so the policy's classes are fixed.
    let load = "users = 150\ntimeout = \"700ms\"\n[load.arrival]\npeak_rate = 300\n[load.retry]\ncount = 0\n";
    let mut seen = Vec::new();
    for client in ["hyper", "lean"] {
        let server = TestServer::start(by_connection());
        let run = run_with(
            client,
            &format!("diff-{client}"),
            &scenario(&server.url(), load, JOURNEY),
        );
        assert!([0, 1].contains(&run.code()), "{client}: {}", run.describe());
        let all = run.summary("test", "all");
        assert_eq!(
            num(&all, "requests") as u64,
            server.count(|c| &c.requests),
            "{client}: every request the server saw is counted once"
        );
        assert_eq!(server.count(|c| &c.connections), 150, "{client}");
        seen.push((
            counts(&run),
            server.count(|c| &c.closed),
            server.count(|c| &c.hung),
            server.status_count(503),
        ));
    }
    let (hyper, lean) = (&seen[0], &seen[1]);
    // Of connections 1..=150: 15 close (10k), 19 answer 503 (7k but not 10k), 9 hang
    // (13k but not 7k or 10k).
    assert_eq!((hyper.1, hyper.2, hyper.3), (15, 9, 19));
    assert_eq!(hyper, lean, "the two client paths disagree");
}

#[test]
fn lean_and_hyper_clients_retry_closed_connections_the_same() {
    let policy: Policy = Arc::new(|s: &Seen| {
        if s.first_on_connection && s.connection % 10 == 0 {
            Action::Close
        } else {
            Action::Answer(200)
        }
    });
    let load = "users = 100\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 300\n[load.retry]\ncount = 3\nbackoff = \"5ms\"\n";
    let mut seen = Vec::new();
    for client in ["hyper", "lean"] {
        let server = TestServer::start(policy.clone());
        let run = run_with(
            client,
            &format!("retry-{client}"),
            &scenario(&server.url(), load, JOURNEY),
        );
        assert_eq!(run.code(), 0, "{client}: {}", run.describe());
        let all = run.summary("test", "all");
        assert_eq!(num(&all, "dropped"), 0.0, "{client}");
        assert_eq!(
            num(&all, "attempt_failures") as u64,
            server.count(|c| &c.closed),
            "{client}"
        );
        seen.push((counts(&run), server.count(|c| &c.requests)));
    }
    // 100 users x 5 requests, and one more attempt per closed connection.
    assert_eq!(seen[0].1, 500 + closed_of(&seen[0].0));
    assert_eq!(seen[0], seen[1], "the two client paths disagree");
}

fn closed_of(counts: &[(String, String, &'static str, String)]) -> u64 {
    counts
        .iter()
        .find(|(_, step, c, _)| step == "all" && *c == "attempt_failures")
        .and_then(|(_, _, _, v)| v.parse().ok())
        .unwrap_or(0)
}

/// A server whose answers are chunked and whose every third answer on a connection
/// says `Connection: close` (and then closes): a client must open a new connection
/// for the next request, and lose none.
struct ChunkedCloser {
    port: u16,
    connections: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ChunkedCloser {
    fn start() -> ChunkedCloser {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let (connections, requests) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, s) = (connections.clone(), requests.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (c, r) = (c.clone(), r.clone());
                std::thread::spawn(move || serve_chunked(stream, &c, &r));
            }
        });
        ChunkedCloser {
            port,
            connections,
            requests,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for ChunkedCloser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

fn serve_chunked(stream: TcpStream, connections: &AtomicU64, requests: &AtomicU64) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut out = stream;
    let mut on_this = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if line.contains("/healthz") {
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
            continue;
        }
        if on_this == 0 {
            connections.fetch_add(1, Ordering::SeqCst);
        }
        on_this += 1;
        requests.fetch_add(1, Ordering::SeqCst);
        let close = on_this % 3 == 0;
        let head = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        );
        let wire = format!("{head}6\r\n{{\"cart\r\n8\r\n_id\": 7}}\r\n0\r\n\r\n");
        if out.write_all(wire.as_bytes()).is_err() {
            return;
        }
        if close {
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
    }
}

#[test]
fn chunked_answers_and_connection_close_are_followed_the_same_by_both_clients() {
    let load =
        "users = 40\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 200\n[load.retry]\ncount = 0\n";
    let journey = "[[journey]]\nname = \"cart\"\nmethod = \"POST\"\npath = \"/carts\"\nidempotency_key = true\ncapture = { cart = \"cart_id\" }\n\n[[journey]]\nname = \"view\"\npath = \"/carts/${cart}\"\nrepeat = 6\n";
    let mut seen: Vec<(Vec<_>, u64, u64)> = Vec::new();
    for client in ["hyper", "lean"] {
        let server = ChunkedCloser::start();
        let url = format!("http://127.0.0.1:{}", server.port);
        let run = run_with(
            client,
            &format!("chunk-{client}"),
            &scenario(&url, load, journey),
        );
        assert_eq!(run.code(), 0, "{client}: {}", run.describe());
        let all = run.summary("test", "all");
        assert_eq!(num(&all, "ok"), 280.0, "{client}: {}", run.describe());
        assert_eq!(num(&all, "failed"), 0.0, "{client}");
        let conns = server.connections.load(Ordering::SeqCst);
        // 7 requests per user, a new connection after every third: 3 each.
        assert_eq!(conns, 120, "{client}");
        seen.push((counts(&run), conns, server.requests.load(Ordering::SeqCst)));
    }
    let by: HashMap<_, _> = seen[0]
        .0
        .iter()
        .map(|(m, s, c, v)| ((m, s, *c), v))
        .collect();
    assert_eq!(by[&(&"test".to_string(), &"view".to_string(), "ok")], "240");
    assert_eq!(seen[0], seen[1], "the two client paths disagree");
}
