//! The hostile client of `scripts/bench-hostile` (the same code as the tests':
//! `tests/support/attack.rs`), one measurement per subcommand, each bounded in count
//! and time and aimed at a loopback address the script started. It prints one
//! `key=value` line the script turns into its table.
//!
//! ```text
//! hostile trickle ADDR CART CONNS BYTES   CONNS bodies of BYTES, one byte per segment (1 ms apart)
//! hostile stalls ADDR                     time to 408 and close: truncated, no last chunk, Expect, trickle
//! hostile flood ADDR CONNS GETS           GETS normal GETs (new connection each, 20 ms apart) under CONNS slow bodies
//! hostile writes ADDR SECONDS             carts created for SECONDS: statuses seen
//! hostile first-write ADDR SECONDS        ms until a cart is created (503s meanwhile)
//! ```

#[path = "../tests/support/attack.rs"]
mod attack;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use attack::*;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hostile {}: {error}", args.join(" "));
            std::process::ExitCode::from(2)
        }
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}: {:?}", args[i]))
}

fn run(args: &[String]) -> Result<String, String> {
    let addr: SocketAddr = arg(args, 1, "ADDR")?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address"));
    }
    match args.first().map(String::as_str) {
        Some("trickle") => trickle_bodies(
            addr,
            arg(args, 2, "CART")?,
            arg(args, 3, "CONNS")?,
            arg(args, 4, "BYTES")?,
        ),
        Some("stalls") => Ok(stalls(addr)),
        Some("flood") => flood(addr, arg(args, 2, "CONNS")?, arg(args, 3, "GETS")?),
        Some("writes") => Ok(writes(addr, Duration::from_secs(arg(args, 2, "SECONDS")?))),
        Some("first-write") => first_write(addr, Duration::from_secs(arg(args, 2, "SECONDS")?)),
        _ => Err("usage: hostile trickle|stalls|flood|writes|first-write ADDR ...".to_owned()),
    }
}

fn trickle_bodies(
    addr: SocketAddr,
    cart: i64,
    conns: usize,
    bytes: usize,
) -> Result<String, String> {
    let head =
        format!("POST /carts/{cart}/items HTTP/1.1\r\nHost: x\r\nContent-Length: {bytes}\r\n\r\n");
    let mut body = br#"{"product_id": 1, "quantity": 1}"#.to_vec();
    body.resize(bytes, b' ');
    let started = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (head, body) = (head.clone(), body.clone());
            std::thread::spawn(move || {
                trickle(addr, head.as_bytes(), &body, Duration::from_millis(1))
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for thread in threads {
        let status = match thread.join() {
            Ok(Ok(answer)) => answer.status.to_string(),
            Ok(Err(e)) => format!("error {}", e.kind()),
            Err(_) => "panic".to_owned(),
        };
        *statuses.entry(status).or_insert(0) += 1;
    }
    Ok(format!(
        "took_ms={} statuses={statuses:?}",
        started.elapsed().as_millis()
    ))
}

fn stalls(addr: SocketAddr) -> String {
    let cases: [(&str, &[u8], bool); 4] = [
        ("truncated", b"POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\": 1, \"b\":", false),
        ("no_last_chunk", b"POST /carts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false),
        ("expect_no_body", b"POST /carts HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n", false),
        ("trickle_650_bps", b"POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n", true),
    ];
    let threads: Vec<_> = cases
        .iter()
        .map(|&(name, request, trickles)| {
            let request = request.to_vec();
            std::thread::spawn(move || (name, time_to_close(addr, &request, trickles)))
        })
        .collect();
    let results: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().ok())
        .map(|(name, result)| format!("{name}={result}"))
        .collect();
    results.join(" ")
}

/// `<status>@<ms>`: the answer and when the server closed the connection.
fn time_to_close(addr: SocketAddr, request: &[u8], trickles: bool) -> String {
    let Ok(mut stream) = connect(addr, Duration::from_secs(30)) else {
        return "connect-failed".to_owned();
    };
    let started = Instant::now();
    if stream.write_all(request).is_err() {
        return "send-failed".to_owned();
    }
    if trickles {
        if let Ok(mut writer) = stream.try_clone() {
            std::thread::spawn(move || {
                while writer.write_all(b" ").is_ok() {
                    std::thread::sleep(Duration::from_micros(1500));
                }
            });
        }
    }
    let mut buf = Vec::new();
    let status = match read_response(&mut stream, &mut buf) {
        Ok(Some(answer)) => answer.status.to_string(),
        Ok(None) => "closed".to_owned(),
        Err(e) => format!("error-{}", e.kind()),
    };
    let closed = wait_eof(&mut stream, &buf, Duration::from_secs(30)).is_ok();
    format!(
        "{status}@{}ms{}",
        started.elapsed().as_millis(),
        if closed { "" } else { "-still-open" }
    )
}

fn flood(addr: SocketAddr, conns: usize, gets: usize) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let until = Instant::now() + Duration::from_secs(120);
        let (stats, tasks) = slow_body_flood(addr, conns, until, Arc::clone(&stop));
        if conns > 0 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
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
        .map_err(|e| e.to_string())?;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        let failed = results.iter().filter(|r| r.is_err()).count();
        let mut ok: Vec<Duration> = results.into_iter().filter_map(Result::ok).collect();
        ok.sort();
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        Ok(format!(
            "p50_ms={} p99_ms={} max_ms={} failed={failed} flood_connections={} flood_408={}",
            ms(percentile(&ok, 50.0)),
            ms(percentile(&ok, 99.0)),
            ms(ok.last().copied().unwrap_or_default()),
            stats.connections.load(Ordering::Relaxed),
            stats.timeouts.load(Ordering::Relaxed),
        ))
    })
}

/// One `POST /carts` on `stream` (keep-alive); its status, or 0 if it failed.
fn create_cart(stream: &mut Option<std::net::TcpStream>, addr: SocketAddr) -> u16 {
    if stream.is_none() {
        *stream = connect(addr, Duration::from_secs(10)).ok();
    }
    let Some(conn) = stream.as_mut() else {
        return 0;
    };
    let sent = conn.write_all(b"POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    match sent
        .ok()
        .and_then(|()| read_response(conn, &mut Vec::new()).ok().flatten())
    {
        Some(answer) => {
            if answer.closes() {
                *stream = None;
            }
            answer.status
        }
        None => {
            *stream = None;
            0
        }
    }
}

fn writes(addr: SocketAddr, for_: Duration) -> String {
    let started = Instant::now();
    let mut stream = None;
    let mut statuses = BTreeMap::new();
    while started.elapsed() < for_ {
        *statuses.entry(create_cart(&mut stream, addr)).or_insert(0) += 1;
    }
    format!("statuses={statuses:?}")
}

fn first_write(addr: SocketAddr, within: Duration) -> Result<String, String> {
    let started = Instant::now();
    let mut stream = None;
    let mut refused = 0;
    while started.elapsed() < within {
        match create_cart(&mut stream, addr) {
            201 => {
                return Ok(format!(
                    "first_write_ms={} refused_before={refused}",
                    started.elapsed().as_millis()
                ));
            }
            _ => refused += 1,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!(
        "no cart created within {within:?} ({refused} refused)"
    ))
}
