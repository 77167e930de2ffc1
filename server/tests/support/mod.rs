//! Shared helpers for the integration tests: a temporary directory, the real
//! `shop-server` binary started on a free loopback port (port 0, the real port read
//! from its log) and killed in `Drop` even when a test fails, its stderr captured
//! line by line, a JSON client, and raw-socket helpers for malformed traffic.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_shop-server");

/// Generous: the machine is shared and noisy; waits end early when the thing happens.
pub const WAIT: Duration = Duration::from_secs(20);

/// A temporary directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "shop-server-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Lines the process wrote to stderr, shared with the thread that reads them.
#[derive(Clone, Default)]
pub struct Log {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Log {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `count(needle) >= n`; panics with the whole log otherwise.
    pub async fn wait_for_count(&self, needle: &str, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.count(needle) < n {
            if Instant::now() > deadline {
                panic!(
                    "expected {n} log lines containing {needle:?} within {within:?}, got {}; log:\n{}",
                    self.count(needle),
                    self.lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the first line containing `needle` and returns it.
    pub async fn wait_for(&self, needle: &str, within: Duration) -> String {
        self.wait_for_count(needle, 1, within).await;
        self.lines()
            .into_iter()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
    }

    fn capture(&self, stderr: impl Read + Send + 'static, tag: String) {
        let lines = Arc::clone(&self.lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
                if let Ok(mut all) = lines.lock() {
                    all.push(line);
                }
            }
        });
    }
}

/// A running `shop-server`, killed (with its children) when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: Log,
    pub db: PathBuf,
    pub args: Vec<String>,
}

impl Server {
    /// Starts `program` (the binary or a symlink/wrapper to it) with `args` plus
    /// `--listen 127.0.0.1:0` and waits for its "listening on" line.
    pub async fn start_program(program: &Path, args: &[&str]) -> Server {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !args.iter().any(|a| a == "--listen") {
            args.extend(["--listen".into(), "127.0.0.1:0".into()]);
        }
        let db = args
            .iter()
            .position(|a| a == "--db")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
            .expect("tests always pass --db");
        let mut cmd = Command::new(program);
        cmd.args(&args);
        Server::start_command(cmd, db).await
    }

    /// Starts a prepared command (which must listen on port 0 of loopback) and waits
    /// for its "listening on" line.
    pub async fn start_command(mut cmd: Command, db: PathBuf) -> Server {
        let args = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let pid = child.id();
        let log = Log::default();
        if let Some(stderr) = child.stderr.take() {
            log.capture(stderr, format!("server {pid}"));
        }
        let mut server = Server {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            db,
            args,
        };
        let line = server.log.wait_for("listening on ", WAIT).await;
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        server.addr = addr;
        server
    }

    pub async fn start(args: &[&str]) -> Server {
        Server::start_program(Path::new(BIN), args).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid as i32), signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to {}: {e}", self.pid));
    }

    /// Waits for the process to exit; panics if it does not within `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("server already reaped");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "server {} did not exit within {within:?}; log:\n{}",
                    self.pid,
                    self.log.lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// PIDs of this process's children (the workers, in cluster mode).
    pub fn children(&self) -> Vec<u32> {
        children_of(self.pid)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let workers = children_of(self.pid);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in workers {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Children of `pid`, from every `/proc/<pid>/task/<tid>/children`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return children;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children.sort_unstable();
    children
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

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

/// Starts a cluster master (`--mode cluster`) with `extra` flags through `program`
/// and waits until its first workers are all ready.
pub async fn start_cluster(program: &Path, dir: &TempDir, extra: &[&str]) -> Server {
    let db = dir.file("shop.db");
    let pidfile = dir.file("master.pid");
    let mut args = vec![
        "--mode",
        "cluster",
        "--db",
        db.to_str().expect("utf-8 path"),
        "--pidfile",
        pidfile.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let server = Server::start_program(program, &args).await;
    server.log.wait_for("workers ready", WAIT).await;
    server
}

/// Ready worker PIDs according to the master's log, replayed line by line; returns
/// the smallest number of ready workers seen after the first "all N workers ready".
pub fn min_ready_in_log(lines: &[String]) -> usize {
    let mut ready = std::collections::BTreeSet::new();
    let mut serving = false;
    let mut min = usize::MAX;
    for line in lines.iter().filter(|l| l.contains(" master: ")) {
        let pid = line
            .split(" pid ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if line.contains(" ready (") {
                ready.insert(pid);
            } else if line.contains(" draining (SIGTERM)")
                || line.contains(" exited ")
                || line.contains(" killed (SIGKILL)")
            {
                ready.remove(&pid);
            }
        }
        if line.contains("workers ready") {
            serving = true;
        }
        if serving {
            min = min.min(ready.len());
        }
    }
    min
}

/// Totals of a load run, shared by its client tasks.
#[derive(Debug, Default)]
pub struct LoadStats {
    pub requests: u64,
    pub attempts: u64,
    pub failed: u64,
    pub server_errors: u64,
    pub statuses: std::collections::BTreeMap<u16, u64>,
    pub confirmed_orders: Vec<i64>,
    pub errors: Vec<String>,
    /// Per client: the worker PIDs its answers came from, in order (deduplicated).
    pub pids_by_client: Vec<Vec<u32>>,
    /// Per client: attempts that got no response, with the PID its previous answer
    /// came from.
    pub no_response_after_pid: Vec<Vec<u32>>,
}

/// A response (status, X-Worker-Pid, JSON), or the last error after `tries` attempts
/// that got no response. Like a well-behaved client, it retries only requests that
/// are safe to repeat (GET, or POST with an Idempotency-Key), and only when no
/// response arrived.
pub async fn retrying(
    build: impl Fn() -> reqwest::RequestBuilder,
    tries: u32,
    attempts: &mut u64,
) -> Result<(u16, u32, serde_json::Value), String> {
    let mut last = String::new();
    for attempt in 0..tries {
        *attempts += 1;
        match build().send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let pid = resp
                    .headers()
                    .get("x-worker-pid")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                match resp.bytes().await {
                    Ok(body) => {
                        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                        return Ok((status, pid, json));
                    }
                    Err(e) => last = format!("body: {e:?}"),
                }
            }
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt + 1))).await;
    }
    Err(last)
}

/// One simulated user: one keep-alive connection, requests in sequence.
struct LoadClient {
    http: reqwest::Client,
    base: String,
    no: usize,
    last_pid: u32,
    stats: Arc<Mutex<LoadStats>>,
}

impl LoadClient {
    /// One request (retried as [`retrying`] says), recorded in the stats.
    async fn call(
        &mut self,
        post: Option<(String, serde_json::Value)>,
        path: &str,
    ) -> Option<(u16, serde_json::Value)> {
        let url = format!("{}{path}", self.base);
        let mut attempts = 0;
        let result = retrying(
            || match &post {
                None => self.http.get(&url),
                Some((key, body)) => self
                    .http
                    .post(&url)
                    .header("Idempotency-Key", key.as_str())
                    .json(body),
            },
            5,
            &mut attempts,
        )
        .await;
        let missed = attempts as usize - usize::from(result.is_ok());
        let mut s = self.stats.lock().expect("stats");
        s.requests += 1;
        s.attempts += attempts;
        let no = self.no;
        s.no_response_after_pid[no].extend(std::iter::repeat_n(self.last_pid, missed));
        match result {
            Ok((status, pid, json)) => {
                *s.statuses.entry(status).or_default() += 1;
                if status >= 500 {
                    s.server_errors += 1;
                    s.errors.push(format!("{path}: {status} {json}"));
                }
                if s.pids_by_client[no].last() != Some(&pid) {
                    s.pids_by_client[no].push(pid);
                }
                self.last_pid = pid;
                Some((status, json))
            }
            Err(e) => {
                s.failed += 1;
                s.errors
                    .push(format!("{path}: no response after retries: {e}"));
                None
            }
        }
    }

    /// A product view; every fifth round also a cart, an item and a checkout.
    async fn round(&mut self, round: u64) {
        let product = 1 + (round * 7 + self.no as u64) % 20;
        self.call(None, &format!("/products/{product}")).await;
        if round % 5 != 0 {
            return;
        }
        let key = format!("load-{}-{round}", self.no);
        let created = self
            .call(
                Some((format!("{key}-cart"), serde_json::json!({}))),
                "/carts",
            )
            .await;
        let Some(cart_id) = created.and_then(|(_, j)| j["cart_id"].as_i64()) else {
            return;
        };
        let item = serde_json::json!({"product_id": product, "quantity": 1});
        self.call(
            Some((format!("{key}-item"), item)),
            &format!("/carts/{cart_id}/items"),
        )
        .await;
        let body = serde_json::json!({"cart_id": cart_id});
        if let Some((201, json)) = self
            .call(Some((format!("{key}-checkout"), body)), "/checkout")
            .await
        {
            if let Some(order) = json["order_id"].as_i64() {
                self.stats
                    .lock()
                    .expect("stats")
                    .confirmed_orders
                    .push(order);
            }
        }
    }
}

/// Runs `clients` keep-alive clients until `stop` is set (or `max` has passed):
/// product views and, every fifth round, a cart + item + checkout journey, every
/// POST with an Idempotency-Key, retried when no response arrived.
pub async fn keep_alive_load(
    addr: SocketAddr,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    max: Duration,
) -> LoadStats {
    use std::sync::atomic::Ordering;
    let stats = Arc::new(Mutex::new(LoadStats {
        pids_by_client: vec![Vec::new(); clients],
        no_response_after_pid: vec![Vec::new(); clients],
        ..LoadStats::default()
    }));
    let deadline = Instant::now() + max;
    let mut tasks = tokio::task::JoinSet::new();
    for no in 0..clients {
        let stop = Arc::clone(&stop);
        let mut client = LoadClient {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: format!("http://{addr}"),
            no,
            last_pid: 0,
            stats: Arc::clone(&stats),
        };
        tasks.spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                round += 1;
                client.round(round).await;
            }
        });
    }
    tasks.join_all().await;
    Arc::try_unwrap(stats)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .expect("all client tasks done")
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
