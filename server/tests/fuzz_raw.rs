//! A bounded property test over raw requests, on stable Rust (no `cargo fuzz`): the
//! committed corpus (`tests/fuzz-corpus/*.http`, each file's name says the answer it
//! must get) is replayed against the real binary, then mutated at random (bit flips,
//! inserted tokens such as `Transfer-Encoding: chunked` or a 20-digit length, cut,
//! duplicated and spliced ranges, inputs sent in two parts) for a bounded number of
//! cases and seconds. Every input must keep these properties: no 5xx; every answer
//! carries `X-Worker-Pid` and, if an error, a JSON error body; nothing is answered
//! after a `Connection: close`; no answer is cut short; the server ends the
//! connection by itself within 5 s (its timers are 1 s here); and afterwards the
//! server serves, has not panicked, and the audit invariants hold. Defaults suit
//! `cargo test` (about 10 s); `scripts/test` runs longer with a fresh seed:
//! `FUZZ_SEED`, `FUZZ_CASES`, `FUZZ_SECONDS`. An input that breaks a property is
//! saved (the message names the file) for the corpus.

mod support;

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

const READ_LIMIT: Duration = Duration::from_secs(5);
const PROBE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

async fn fuzz_server(dir: &TempDir) -> Server {
    let db = dir.path().join("shop.db");
    let db = db.to_str().expect("utf-8 path");
    let timers = ["--header-timeout", "1s", "--body-timeout", "1s"];
    let mut args = vec![
        "--mode",
        "single",
        "--db",
        db,
        "--products",
        "5",
        "--checkout-io",
        "0",
    ];
    args.extend(timers);
    Server::start(&args).await
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "http"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).unwrap_or_else(|err| panic!("{name}: {err}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "the corpus in {} is missing",
        dir.display()
    );
    files
}

/// How an exchange ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Closed,
    /// No more bytes for the quiet period (only asked for before a probe).
    Quiet,
    Broken(String),
}

/// Reads answers until the server closes (EOF or reset), `wait` passes without a
/// byte, or something is wrong.
fn read_all(stream: &mut TcpStream, buf: &mut Vec<u8>, wait: Duration) -> (Vec<RawResponse>, End) {
    let mut answers = Vec::new();
    if let Err(e) = stream.set_read_timeout(Some(wait)) {
        return (answers, End::Broken(e.to_string()));
    }
    loop {
        match read_response(stream, buf) {
            Ok(Some(answer)) => answers.push(answer),
            Ok(None) => return (answers, End::Closed),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (answers, End::Closed),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let end = if buf.is_empty() {
                    End::Quiet
                } else {
                    End::Broken(format!(
                        "stalled inside an answer: {:?}",
                        String::from_utf8_lossy(buf)
                    ))
                };
                return (answers, end);
            }
            Err(e) => return (answers, End::Broken(e.to_string())),
        }
    }
}

/// The properties every answer to every input keeps.
fn check_answers(answers: &[RawResponse]) -> Result<(), String> {
    for (i, answer) in answers.iter().enumerate() {
        if answer.status >= 500 {
            return Err(format!(
                "answer {i} is a {}: {}",
                answer.status,
                answer.text()
            ));
        }
        if answer.header("x-worker-pid").is_none() {
            return Err(format!("answer {i} has no X-Worker-Pid: {answer:?}"));
        }
        let json: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
        if answer.status >= 400 && !json.as_ref().is_some_and(|j| j["error"].is_string()) {
            return Err(format!(
                "answer {i} ({}) has no JSON error: {answer:?}",
                answer.status
            ));
        }
        if answer.closes() && i + 1 < answers.len() {
            return Err(format!("answer {} came after a Connection: close", i + 1));
        }
    }
    Ok(())
}

/// Sends `input` (in two parts if `split`), half-closes if asked, and reads until
/// the server closes.
fn exchange(
    addr: SocketAddr,
    input: &[u8],
    half_close: bool,
    split: Option<usize>,
) -> Result<Vec<RawResponse>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (first, second) = input.split_at(split.unwrap_or(input.len()).min(input.len()));
    // A server may answer and close before everything is sent: not a failure.
    if stream.write_all(first).is_ok() && !second.is_empty() {
        std::thread::sleep(Duration::from_millis(10));
        let _ = stream.write_all(second);
    }
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut buf = Vec::new();
    let (answers, end) = read_all(&mut stream, &mut buf, READ_LIMIT);
    check_answers(&answers)?;
    match end {
        End::Closed => Ok(answers),
        End::Quiet => Err(format!(
            "neither answered nor closed within {READ_LIMIT:?} ({} answers)",
            answers.len()
        )),
        End::Broken(why) => Err(format!("{why} (after {} answers)", answers.len())),
    }
}

/// A corpus file: its first answer must have the status in its name, and keep the
/// connection usable (`keep`) or close it (`close`).
fn corpus_case(addr: SocketAddr, name: &str, input: &[u8]) -> Result<(), String> {
    let expect = name.split("--").next().unwrap_or("any");
    let mut parts = expect.split('-');
    let status: Option<u16> = parts.next().and_then(|s| s.parse().ok());
    let connection = parts.next().unwrap_or("any");
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.write_all(input).map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let (answers, end) = if connection == "keep" {
        // Everything answered, the connection idle: it must take one more request.
        let (mut answers, end) = read_all(&mut stream, &mut buf, Duration::from_millis(300));
        if end != End::Quiet {
            return Err(format!("a keep-alive answer, then {end:?}: {answers:?}"));
        }
        stream.write_all(PROBE).map_err(|e| format!("probe: {e}"))?;
        let _ = stream.set_read_timeout(Some(READ_LIMIT));
        match read_response(&mut stream, &mut buf) {
            Ok(Some(probe)) => answers.push(probe),
            other => {
                return Err(format!(
                    "no answer to a request after {answers:?}: {other:?}"
                ));
            }
        }
        // The server closes this idle connection at its 1 s keep-alive limit.
        let (more, end) = read_all(&mut stream, &mut buf, READ_LIMIT);
        answers.extend(more);
        (answers, end)
    } else {
        // A case that expects the server to close is left to do so; one with no
        // expectation half-closes (the server must then end it at once).
        if connection == "any" && status != Some(408) {
            let _ = stream.shutdown(Shutdown::Write);
        }
        read_all(&mut stream, &mut buf, READ_LIMIT)
    };
    check_answers(&answers)?;
    if end != End::Closed {
        return Err(format!("ended with {end:?} after {answers:?}"));
    }
    let Some(first) = answers.first().cloned() else {
        // Closing without an answer is allowed only where nothing is expected.
        return match status {
            Some(_) => Err("no answer at all".to_owned()),
            None => Ok(()),
        };
    };
    if status.is_some_and(|s| s != first.status) {
        return Err(format!("expected {expect}, got {first:?}"));
    }
    match connection {
        "close" if !first.closes() || answers.len() > 1 => {
            Err(format!("expected an answer that closes: {answers:?}"))
        }
        "keep" => {
            let probe = answers.last().ok_or("no answer")?;
            if probe.status == 200 && probe.text().contains("\"status\":\"ok\"") && !first.closes()
            {
                Ok(())
            } else {
                Err(format!(
                    "the connection did not stay usable: the probe got {} {:?} after {} answers",
                    probe.status,
                    probe.text(),
                    answers.len()
                ))
            }
        }
        _ => Ok(()),
    }
}

/// After a run: the server serves, has not panicked, and the invariants hold.
async fn still_sound(server: &mut Server) {
    let c = client();
    let health = get(&c, server, "/healthz").await;
    assert_eq!(health.status, 200, "{health:?}");
    audit_holds(&c, server).await;
    let log = server.log.lines();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "the server panicked:\n{}",
        log.join("\n")
    );
    let exited = server
        .child
        .as_mut()
        .and_then(|c| c.try_wait().ok().flatten());
    assert!(exited.is_none(), "the server exited: {exited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_input_gets_its_expected_answer() {
    let dir = temp_dir("fuzz-corpus");
    let mut server = fuzz_server(&dir).await;
    let addr = server.addr;
    let failures = tokio::task::spawn_blocking(move || {
        let cases = corpus();
        let threads: Vec<_> = cases
            .into_iter()
            .map(|(name, input)| {
                std::thread::spawn(move || (corpus_case(addr, &name, &input), name))
            })
            .collect();
        threads
            .into_iter()
            .filter_map(|t| match t.join() {
                Ok((Ok(()), _)) => None,
                Ok((Err(why), name)) => Some(format!("{name}: {why}")),
                Err(_) => Some("a client thread panicked".to_owned()),
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("corpus");
    assert!(
        failures.is_empty(),
        "{} corpus inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    still_sound(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_keep_every_property() {
    let seed = env_u64("FUZZ_SEED", 0x5EED_1234_ABCD_0001).max(1);
    let cases = env_u64("FUZZ_CASES", 600);
    let budget = Duration::from_secs(env_u64("FUZZ_SECONDS", 8));
    let dir = temp_dir("fuzz-mutations");
    let mut server = fuzz_server(&dir).await;
    let addr = server.addr;
    let saved = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let (ran, failures) = tokio::task::spawn_blocking(move || {
        let corpus: Vec<Vec<u8>> = corpus().into_iter().map(|(_, bytes)| bytes).collect();
        let next = Arc::new(Mutex::new((Rng(seed), 0u64)));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + budget;
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (corpus, next, failures) =
                    (corpus.clone(), Arc::clone(&next), Arc::clone(&failures));
                std::thread::spawn(move || {
                    loop {
                        let (n, input, half_close, split) = {
                            let Ok(mut guard) = next.lock() else { return };
                            let (rng, count) = &mut *guard;
                            if *count >= cases || Instant::now() >= deadline {
                                return;
                            }
                            *count += 1;
                            let input = mutated(rng, &corpus);
                            let split = (rng.below(10) == 0).then(|| rng.below(input.len() + 1));
                            (*count, input, rng.below(5) != 0, split)
                        };
                        if let Err(why) = exchange(addr, &input, half_close, split) {
                            if let Ok(mut list) = failures.lock() {
                                list.push((n, why, input));
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
        let ran = next.lock().map(|g| g.1).unwrap_or(0);
        let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
        (ran, failures)
    })
    .await
    .expect("mutations");
    eprintln!(
        "FIGURE fuzz: {ran} mutated inputs from seed {seed:#x}, {} broke a property",
        failures.len()
    );
    if !failures.is_empty() {
        let _ = std::fs::create_dir_all(&saved);
        let report: Vec<String> = failures
            .iter()
            .take(10)
            .map(|(n, why, input)| {
                let file = saved.join(format!("{seed:x}-{n}.http"));
                let _ = std::fs::write(&file, input);
                format!("case {n} ({}): {why}", file.display())
            })
            .collect();
        panic!(
            "seed {seed:#x}: {} of {ran} inputs broke a property:\n{}",
            failures.len(),
            report.join("\n")
        );
    }
    assert!(ran >= cases.min(50), "only {ran} cases ran in {budget:?}");
    still_sound(&mut server).await;
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={text:?}: {e}"))
        }
        Err(_) => default,
    }
}
