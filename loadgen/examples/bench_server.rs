//! A minimal HTTP/1.1 server for `scripts/bench-loadgen`: one current-thread hyper
//! runtime per process, SO_REUSEPORT so several copies share a port (enough file
//! descriptors for 30,000 connections), shop-like answers (`POST /carts` -> 201 with
//! a cart id, `POST /checkout` -> 201, anything else -> 200 with a 47-byte JSON
//! product) and `X-Worker-Pid`. Benchmark use only: it has no drain and no state.
//!
//! Usage: bench_server 127.0.0.1:PORT   (stops on SIGINT or SIGTERM)

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

const PRODUCT: &[u8] = br#"{"id":1,"name":"Widget","price_cents":1999,"s":1}"#;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body): (StatusCode, &'static [u8]) = match (req.method(), req.uri().path()) {
        (&Method::POST, "/carts") => (StatusCode::CREATED, br#"{"cart_id":1}"#),
        (&Method::POST, "/checkout") => (
            StatusCode::CREATED,
            br#"{"order_id":1,"status":"confirmed","total_cents":1999}"#,
        ),
        _ => (StatusCode::OK, PRODUCT),
    };
    // Read the request body so the connection can be reused.
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Full::new(Bytes::from_static(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    h.insert("x-worker-pid", std::process::id().into());
    h.insert("x-server-version", "bench".parse().expect("static header"));
    Ok(resp)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("usage: bench_server 127.0.0.1:PORT")?
        .parse()?;
    let _ =
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 20_000, 20_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service_fn(handle))
                            .await;
                    });
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        Ok::<(), std::io::Error>(())
    })?;
    Ok(())
}
