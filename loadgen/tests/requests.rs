//! Requests as a real client sends them, checked at a real server on loopback that
//! records every request it reads: the target URL's path prefix is kept (in one
//! process and across shard processes).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    /// Header names lower-cased, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A server that records every request but readiness probes and answers 200 with
/// `{"token": "t-<n>"}`; a target ending `/login?u=N` also gets `Set-Cookie: sid=N`.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        Recorder {
            port,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut extra = String::new();
        if target != "/healthz" {
            let mut s = seen.lock().expect("lock");
            if let Some((_, user)) = target.split_once("/login?u=") {
                extra = format!("Set-Cookie: sid={user}; Path=/; HttpOnly\r\n");
            }
            s.push(Seen {
                method,
                target,
                headers,
                body,
            });
        }
        let body = r#"{"token": "t-1"}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

const JOURNEY: &str = r#"
[[journey]]
name = "list"
path = "/products"

[[journey]]
name = "cart"
method = "POST"
path = "/carts?u=${user}"
body = '{"user": ${user}}'
"#;

#[test]
fn the_url_s_path_prefix_is_kept_in_one_process_and_across_shards() {
    for (tag, per_process) in [("one", 1000), ("shards", 10)] {
        let server = Recorder::start();
        let load = format!(
            "users = 20\nusers_per_process = {per_process}\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 200\n"
        );
        let run = run_scenario(
            &format!("prefix-{tag}"),
            &scenario(&server.url("/api/v1/"), &load, JOURNEY),
            &[],
        );
        assert_eq!(run.code(), 0, "{tag}: {}", run.describe());
        let seen = server.seen();
        assert_eq!(seen.len(), 40, "{tag}: {seen:?}");
        for s in &seen {
            assert!(
                s.target == "/api/v1/products" || s.target.starts_with("/api/v1/carts?u="),
                "{tag}: {} {}",
                s.method,
                s.target
            );
        }
        let modes = run.csv("modes.csv");
        assert_eq!(
            modes[0]["loadgen_processes"],
            if per_process == 10 { "2" } else { "1" },
            "{tag}"
        );
        let cart = seen.iter().find(|s| s.method == "POST").expect("a POST");
        assert_eq!(cart.header("content-type"), Some("application/json"));
        let user = cart.target.rsplit('=').next().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&cart.body),
            format!("{{\"user\": {user}}}")
        );
    }
}

/// Which user a target's `u=N` names.
fn user_of(target: &str) -> Option<&str> {
    target
        .split("u=")
        .nth(1)
        .map(|r| r.split('&').next().unwrap_or(r))
}

#[test]
fn headers_with_templates_a_cookie_jar_per_user_and_form_and_raw_bodies_arrive() {
    let server = Recorder::start();
    let journey = r#"
[request]
headers = { User-Agent = "stampede-test", Authorization = "Bearer ${token}" }

[[journey]]
name = "login"
method = "POST"
path = "/login?u=${user}"
form = { user = "u ${user}", note = "a&b=c" }
capture = { token = "token" }

[[journey]]
name = "upload"
method = "PUT"
path = "/files?u=${user}"
body = "line ${user}"
content_type = "text/plain; charset=utf-8"
headers = { X-Trace = "trace-${user}-${rep}", User-Agent = "step-agent" }
repeat = 2

[[journey]]
name = "view"
path = "/products?u=${user}"
"#;
    let load =
        "users = 12\nusers_per_process = 6\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 100\n";
    let run = run_scenario("headers", &scenario(&server.url(""), load, journey), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let seen = server.seen();
    assert_eq!(seen.len(), 12 * 4, "{seen:?}");
    for s in &seen {
        let user = user_of(&s.target).expect("every target names its user");
        let step = s.target.split('?').next().unwrap_or_default();
        match step {
            "/login" => {
                assert_eq!(
                    s.header("content-type"),
                    Some("application/x-www-form-urlencoded")
                );
                assert_eq!(
                    String::from_utf8_lossy(&s.body),
                    format!("note=a%26b%3Dc&user=u+{user}")
                );
                // Before the token is captured, the header using it is not sent.
                assert_eq!(s.header("authorization"), None, "{s:?}");
                assert_eq!(s.header("user-agent"), Some("stampede-test"));
                assert_eq!(s.header("cookie"), None, "no cookie before the login");
            }
            "/files" => {
                assert_eq!(s.method, "PUT");
                assert_eq!(s.header("content-type"), Some("text/plain; charset=utf-8"));
                assert_eq!(String::from_utf8_lossy(&s.body), format!("line {user}"));
                assert_eq!(s.header("authorization"), Some("Bearer t-1"));
                assert_eq!(
                    s.header("user-agent"),
                    Some("step-agent"),
                    "the step's own wins"
                );
                let trace = s.header("x-trace").expect("x-trace");
                assert!(trace.starts_with(&format!("trace-{user}-")), "{trace}");
                assert_eq!(s.header("cookie"), Some(format!("sid={user}").as_str()));
            }
            "/products" => {
                assert_eq!(s.header("authorization"), Some("Bearer t-1"));
                assert_eq!(s.header("x-trace"), None, "a step header stays on its step");
                // Each user sends back its own cookie, never another user's.
                assert_eq!(s.header("cookie"), Some(format!("sid={user}").as_str()));
                assert!(s.body.is_empty());
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn without_the_jar_no_cookie_is_sent_back() {
    let server = Recorder::start();
    let journey = "[request]\ncookies = false\n\n[[journey]]\nname = \"login\"\npath = \"/login?u=${user}\"\n\n[[journey]]\nname = \"view\"\npath = \"/products?u=${user}\"\nheaders = { Cookie = \"mine=1\" }\n";
    let load = "users = 3\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 100\n";
    let run = run_scenario("nojar", &scenario(&server.url(""), load, journey), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let views: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.target.starts_with("/products"))
        .collect();
    assert_eq!(views.len(), 3);
    assert!(views.iter().all(|s| s.header("cookie") == Some("mine=1")));
}

#[test]
fn bad_request_keys_are_refused_naming_file_line_and_key() {
    let cases = [
        (
            "[[journey]]\nname = \"a\"\npath = \"/\"\nheaders = { Host = \"x\" }\n",
            "journey[0].headers.Host",
        ),
        (
            "[request]\nheaders = { Authorization = \"Bearer ${nope}\" }\n\n[[journey]]\nname = \"a\"\npath = \"/\"\n",
            "request.headers.Authorization",
        ),
        (
            "[[journey]]\nname = \"a\"\nmethod = \"POST\"\npath = \"/\"\nbody = \"x\"\nform = { a = \"b\" }\n",
            "journey[0].form",
        ),
        (
            "[[journey]]\nname = \"a\"\npath = \"/\"\ncontent_type = \"text/plain\"\n",
            "journey[0].content_type",
        ),
        (
            "[[journey]]\nname = \"a\"\npath = \"/\"\nheaders = { Cookie = \"a=1\" }\n",
            "journey[0].headers.Cookie",
        ),
    ];
    for (journey, key) in cases {
        let tmp = temp_dir("badreq");
        let path = tmp.path().join("bad.toml");
        let text = scenario(
            "http://127.0.0.1:9",
            "users = 1\n[load.arrival]\npeak_rate = 1\n",
            journey,
        );
        std::fs::write(&path, &text).expect("write");
        let out = loadgen().arg("validate").arg(&path).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{journey}");
        assert!(err.contains(key), "{key} not named in: {err}");
        assert!(err.contains("bad.toml:"), "file and line named: {err}");
    }
}
