//! The CLI's contract with a user: a bad scenario names the file, line and key and
//! exits 2; a target that never gets ready exits 3; Ctrl-C stops the load, writes
//! what was measured and exits 130; a non-loopback target is refused.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALID: &str = r#"name = "v"

[target]
ready_timeout = "1s"
stop_timeout = "3s"

[[target.modes]]
name = "m"
url = "http://127.0.0.1:9"

[load]
users = 10
timeout = "2s"

[load.arrival]
peak_rate = 10

[[journey]]
name = "get"
path = "/"
"#;

fn validate(tag: &str, text: &str) -> (i32, String, String) {
    let tmp = temp_dir(tag);
    let path = tmp.path().join("s.toml");
    std::fs::write(&path, text).expect("write");
    let out = loadgen()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run loadgen validate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn a_valid_scenario_validates() {
    let (code, err, _) = validate("ok", VALID);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_unknown_key_names_file_line_and_key() {
    let text = VALID.replace("timeout = \"2s\"", "timeout = \"2s\"\nretries = 3");
    let (code, err, path) = validate("unknown", &text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{path}:14:")), "line 14 named: {err}");
    assert!(
        err.contains("load.retries") && err.contains("unknown field"),
        "{err}"
    );
}

#[test]
fn a_bad_duration_names_file_line_and_key() {
    let text = VALID.replace("timeout = \"2s\"", "timeout = \"2 parsecs\"");
    let (code, err, path) = validate("duration", &text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{path}:13:")), "line 13 named: {err}");
    assert!(
        err.contains("load.timeout") && err.contains("invalid duration `2 parsecs`"),
        "{err}"
    );
}

#[test]
fn an_empty_journey_is_refused() {
    let cut = VALID.find("[[journey]]").expect("journey in text");
    let (code, err, path) = validate("empty", &VALID[..cut]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&path) && err.contains("key `journey`") && err.contains("journey is empty"),
        "{err}"
    );
}

#[test]
fn a_variable_never_captured_is_refused() {
    let text = VALID.replace("path = \"/\"", "path = \"/carts/${cart_id}\"");
    let (code, err, path) = validate("var", &text);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{path}:20:")) && err.contains("journey[0].path"),
        "{err}"
    );
}

#[test]
fn a_target_that_never_gets_ready_exits_3() {
    let text = VALID.replace(
        "url = \"http://127.0.0.1:9\"",
        "command = [\"sh\", \"-c\", \"sleep 30 # {port}\"]",
    );
    let run = run_scenario("never", &text, &[]);
    assert_eq!(run.code(), 3, "{}", run.describe());
    let err = String::from_utf8_lossy(&run.output.stderr);
    assert!(err.contains("did not answer 2xx within 1.0 s"), "{err}");
}

#[test]
fn a_remote_target_is_refused_without_allow_remote() {
    let text = VALID.replace("127.0.0.1:9", "10.255.255.1:80");
    let run = run_scenario("remote", &text, &[]);
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(String::from_utf8_lossy(&run.output.stderr).contains("--allow-remote"));
}

#[test]
fn ctrl_c_writes_what_was_measured_and_exits_130() {
    let server = TestServer::start(Arc::new(|_s: &Seen| Action::Answer(200)));
    let load = "users = 2000\ntimeout = \"2s\"\n[load.arrival]\npeak_rate = 50\n";
    let text = scenario(
        &server.url(),
        load,
        "[[journey]]\nname = \"get\"\npath = \"/\"\n",
    );
    let tmp = temp_dir("ctrlc");
    let path = tmp.path().join("s.toml");
    std::fs::write(&path, text).expect("write");
    let dir = tmp.path().join("out");
    let child = loadgen()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&dir)
        .arg("--quiet")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start loadgen");
    // Wait until the load has been running for a while (the server saw requests).
    let start = Instant::now();
    while server.count(|c| &c.answered) < 50 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let out = child.wait_with_output().expect("wait");
    let describe = format!("{:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{describe}");
    let rows = read_csv(&dir.join("summary.csv"));
    let all = rows
        .iter()
        .find(|r| r["step"] == "all")
        .expect("summary row");
    let requests = num(all, "requests") as u64;
    assert!(requests >= 50, "measured requests are written: {requests}");
    assert!(
        requests <= server.count(|c| &c.answered),
        "never more than the server answered"
    );
    assert!(dir.join("timeseries.csv").exists() && dir.join("latency-test.hgrm").exists());
}
