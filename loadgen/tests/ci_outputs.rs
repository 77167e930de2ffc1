//! What a run leaves for CI systems, read with the libraries those formats are read
//! with: summary.json validates against the committed JSON schema (and a broken one
//! does not), the `--junit` file parses as JUnit XML with one failure per breached
//! threshold carrying the measured value, `GITHUB_STEP_SUMMARY` gets the Markdown,
//! `/metrics` parses as Prometheus text while the run goes, and `loadgen compare` and
//! `loadgen history` read what runs recorded.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const JOURNEY: &str = r#"
[[journey]]
name = "browse"
path = "/products"
think = "10ms..30ms"

[[journey]]
name = "checkout"
method = "POST"
path = "/checkout"
body = '{"cart_id": 1}'
idempotency_key = true
"#;

fn ok_server() -> TestServer {
    TestServer::start(Arc::new(|_: &Seen| Action::Answer(200)))
}

/// A scenario against `url` with these thresholds.
fn with_thresholds(url: &str, thresholds: &str, load: &str) -> String {
    format!(
        "thresholds = [{thresholds}]\n{}",
        scenario(url, load, JOURNEY)
    )
}

const SHORT_LOAD: &str = "users = 40\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 80\n";

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/summary.schema.json"),
    )
    .expect("the committed schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON schema")
}

fn errors(validator: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// One way to break a document.
type Breakage = fn(&mut serde_json::Value);

#[test]
fn summary_json_validates_against_its_schema_and_a_broken_one_does_not() {
    let server = ok_server();
    let text = with_thresholds(
        &server.url(),
        r#""test.dropped == 0", "test.p99 < baseline * 1.25""#,
        SHORT_LOAD,
    );
    let run = run_scenario("summary-json", &text, &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.dir.join("summary.json")).expect("summary.json written"),
    )
    .expect("summary.json is JSON");
    let validator = schema();
    let found = errors(&validator, &doc);
    assert!(
        found.is_empty(),
        "summary.json breaks its schema: {found:#?}"
    );

    // The figures are the CSV's: the `all` row's requests and the no-baseline verdict.
    let all = run.summary("test", "all");
    let row = doc["summary"]
        .as_array()
        .expect("summary rows")
        .iter()
        .find(|r| r["mode"] == "test" && r["step"] == "all")
        .expect("the all row");
    assert_eq!(row["requests"].as_f64(), Some(num(&all, "requests")));
    assert_eq!(row["requests"].as_u64(), Some(80), "40 users x 2 steps");
    assert_eq!(doc["thresholds"][1]["verdict"], "no_baseline");
    assert_eq!(doc["verdict"], "pass");

    // Broken on purpose, one way at a time: each must fail validation.
    let breakages: [(&str, Breakage); 4] = [
        ("a figure as text", |d| {
            d["summary"][0]["p99_ms"] = "fast".into()
        }),
        ("a missing column", |d| {
            d["summary"][0]
                .as_object_mut()
                .expect("row")
                .remove("dropped");
        }),
        ("an unknown verdict", |d| d["verdict"] = "maybe".into()),
        ("another schema version", |d| d["schema_version"] = 2.into()),
    ];
    for (what, break_it) in breakages {
        let mut broken = doc.clone();
        break_it(&mut broken);
        assert!(
            !errors(&validator, &broken).is_empty(),
            "{what}: a broken summary.json passed validation"
        );
    }
}

#[test]
fn junit_has_one_failure_per_breached_threshold_with_the_measured_value() {
    let server = ok_server();
    let tmp = temp_dir("junit");
    let junit = tmp.path().join("ci/junit.xml");
    let step_summary = tmp.path().join("step-summary.md");
    std::fs::write(&step_summary, "earlier step\n").expect("seed the summary file");
    // Two breached (no request may be sent; p50 under a microsecond), two held.
    let text = with_thresholds(
        &server.url(),
        r#""test.requests < 1", "test.p50 < 0.001ms", "test.dropped == 0", "test.p99 < 60s""#,
        SHORT_LOAD,
    );
    let path = tmp.path().join("junit.toml");
    std::fs::write(&path, text).expect("write scenario");
    let out = loadgen()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--quiet")
        .arg("--junit")
        .arg(&junit)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .expect("run loadgen");
    assert_eq!(
        out.status.code(),
        Some(1),
        "thresholds breached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::File::open(&junit).expect("the JUnit file was written");
    let suites = junit_parser::from_reader(BufReader::new(file)).expect("valid JUnit XML");
    let cases: Vec<&junit_parser::TestCase> =
        suites.suites.iter().flat_map(|s| s.cases.iter()).collect();
    let thresholds: Vec<_> = cases
        .iter()
        .filter(|c| c.classname.as_deref() == Some("loadgen.test.thresholds"))
        .collect();
    assert_eq!(
        thresholds.len(),
        4,
        "one test case per threshold: {cases:#?}"
    );
    let failed: Vec<&str> = thresholds
        .iter()
        .filter(|c| c.status.is_failure())
        .map(|c| c.original_name.as_str())
        .collect();
    assert_eq!(failed, ["test.requests < 1", "test.p50 < 0.001ms"]);
    assert_eq!(suites.failures, 2, "the suites' failure count");
    let requests = thresholds
        .iter()
        .find(|c| c.original_name == "test.requests < 1")
        .expect("case");
    let message = &requests.status.failure_as_ref().message;
    assert!(
        message.contains("measured 80"),
        "the failure carries the measured value: {message}"
    );
    let harness: Vec<_> = cases
        .iter()
        .filter(|c| c.classname.as_deref() == Some("loadgen.test.harness"))
        .collect();
    assert_eq!(harness.len(), 1, "one harness case: {cases:#?}");
    assert!(harness[0].status.is_success(), "measured faithfully");
    // Invariants are test cases too (none here: an external server has no audit).
    let summary = std::fs::read_to_string(&step_summary).expect("step summary");
    assert!(
        summary.starts_with("earlier step\n"),
        "appended, not replaced"
    );
    assert!(
        summary.contains("| `test.requests < 1` | 80 | fail |"),
        "the Markdown lists the breach: {summary}"
    );
}

#[test]
fn a_history_that_cannot_be_written_fails_the_run_in_every_file_it_leaves() {
    let server = ok_server();
    let tmp = temp_dir("history-unwritable");
    let junit = tmp.path().join("junit.xml");
    // The history's folder is a regular file: SQLite cannot open it.
    let blocker = tmp.path().join("not-a-folder");
    std::fs::write(&blocker, "").expect("write the blocker file");
    let path = tmp.path().join("unwritable.toml");
    std::fs::write(
        &path,
        with_thresholds(&server.url(), r#""test.dropped == 0""#, SHORT_LOAD),
    )
    .expect("write scenario");
    let out_dir = tmp.path().join("out");
    let out = loadgen()
        .env_remove("LOADGEN_NO_HISTORY")
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .arg("--quiet")
        .arg("--history")
        .arg(blocker.join("history.sqlite"))
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("run loadgen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "a harness failure: {stderr}");
    assert!(stderr.contains("history"), "names the history: {stderr}");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("summary.json")).expect("summary.json written"),
    )
    .expect("summary.json is JSON");
    assert_eq!(doc["verdict"], "harness_failed", "summary.json: {doc}");
    let file = std::fs::File::open(&junit).expect("the JUnit file was written");
    let suites = junit_parser::from_reader(BufReader::new(file)).expect("valid JUnit XML");
    assert_eq!(
        suites.errors, 1,
        "the harness case is an error: {suites:#?}"
    );
    assert_eq!(suites.failures, 0, "the threshold itself held");
}

/// A `loadgen run` process with its stderr read line by line.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get_metrics(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    body.to_string()
}

#[test]
fn metrics_parse_as_prometheus_text_while_the_run_goes() {
    let server = ok_server();
    let tmp = temp_dir("metrics");
    // 4 s of arrivals: long enough to scrape twice mid-run.
    let load = "users = 80\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 20\n";
    let path = tmp.path().join("metrics.toml");
    std::fs::write(&path, scenario(&server.url(), load, JOURNEY)).expect("write");
    let child = loadgen()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--quiet")
        .arg("--metrics-listen")
        .arg("127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let mut running = Running { child };
    let stderr = running.child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("loadgen: live metrics at http://")
                .and_then(|r| r.strip_suffix("/metrics"))
                .map(str::to_string)
        })
        .expect("loadgen says where the metrics are");
    let requests = |body: &str| -> (f64, prometheus_parse::Scrape) {
        let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
            .expect("Prometheus text");
        let ok = scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric.starts_with("loadgen_requests") && s.labels.get("class") == Some("ok")
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("requests are a counter: {other:?}"),
            })
            .sum();
        (ok, scrape)
    };
    // Mid-run: wait until some seconds were merged, then scrape twice.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (first, scrape) = loop {
        let (ok, scrape) = requests(&get_metrics(&addr));
        if ok > 0.0 {
            break (ok, scrape);
        }
        assert!(Instant::now() < deadline, "no request counted in 20 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    let users = scrape
        .samples
        .iter()
        .find(|s| s.metric == "loadgen_users_active")
        .expect("users active gauge");
    assert_eq!(users.labels.get("mode"), Some("test"));
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "loadgen_latency_seconds"
                && s.labels.get("quantile") == Some("0.99")),
        "latency quantiles: {:?}",
        scrape.samples
    );
    std::thread::sleep(Duration::from_millis(1500));
    let (second, _) = requests(&get_metrics(&addr));
    assert!(
        second > first,
        "the counter grows while the run goes: {first} then {second}"
    );
    let status = running.child.wait().expect("loadgen ends");
    assert_eq!(status.code(), Some(0));
    let all = read_csv(&tmp.path().join("out/summary.csv"));
    let total: f64 = all
        .iter()
        .filter(|r| r["step"] == "all")
        .map(|r| num(r, "ok"))
        .sum();
    assert!(second <= total, "scraped {second} of {total}");
}

#[test]
fn compare_and_history_read_what_runs_recorded() {
    let server = ok_server();
    let tmp = temp_dir("compare");
    let history = tmp.path().join("h.sqlite");
    let path = tmp.path().join("cmp.toml");
    std::fs::write(&path, scenario(&server.url(), SHORT_LOAD, JOURNEY)).expect("write");
    for run in ["a", "b"] {
        let out = loadgen()
            .env_remove("LOADGEN_NO_HISTORY")
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(tmp.path().join(run))
            .arg("--quiet")
            .arg("--history")
            .arg(&history)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let out = loadgen()
        .arg("compare")
        .arg(tmp.path().join("a"))
        .arg(tmp.path().join("b"))
        .arg("--out")
        .arg(tmp.path().join("cmp"))
        .output()
        .expect("compare");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let md = std::fs::read_to_string(tmp.path().join("cmp/compare.md")).expect("compare.md");
    assert!(md.contains("## test: step all"), "{md}");
    assert!(md.contains("| requests | 80 | 80 | 0 | +0.0% |"), "{md}");
    assert!(tmp.path().join("cmp/compare.html").exists());
    assert!(tmp.path().join("cmp/compare-percentiles.png").exists());

    let out = loadgen()
        .arg("history")
        .arg("test")
        .arg("--history")
        .arg(&history)
        .arg("--chart")
        .arg(tmp.path().join("trend.png"))
        .output()
        .expect("history");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        table.lines().filter(|l| l.contains(" test ")).count(),
        2,
        "{table}"
    );
    assert!(tmp.path().join("trend.png").exists());
    // The later run's report shows the trend drawn from the history.
    let report = std::fs::read_to_string(tmp.path().join("b/report.md")).expect("report");
    assert!(report.contains("trend.png"), "the report shows the trend");

    // A run id of the history works as well as a folder; an unknown one is a usage error.
    let b: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("b/summary.json")).expect("b"),
    )
    .expect("json");
    let id = b["run_id"].as_str().expect("run id");
    let out = loadgen()
        .arg("compare")
        .arg(tmp.path().join("a"))
        .arg(id)
        .arg("--history")
        .arg(&history)
        .arg("--out")
        .arg(tmp.path().join("cmp2"))
        .output()
        .expect("compare by id");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = loadgen()
        .arg("compare")
        .arg(tmp.path().join("a"))
        .arg("20990101-000000-000000")
        .arg("--history")
        .arg(&history)
        .output()
        .expect("compare unknown");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
