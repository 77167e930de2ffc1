//! The throughput ceiling for `scripts/bench-server`: a minimal hyper 1.x server with
//! the same runtime shape as one `shop-server` process (one current-thread event
//! loop, HTTP/1.1 keep-alive, header timer) that answers every request with a fixed
//! 47-byte JSON product and no database. Usage: `minimal [ADDR]` (default
//! 127.0.0.1:0); it prints `listening on ADDR` on stderr.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, body::Incoming, header};
use hyper_util::rt::{TokioIo, TokioTimer};

const BODY: &[u8] = br#"{"id":1,"name":"Product 1","price_cents":81180}"#;

async fn answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut reply = Response::new(Full::new(Bytes::from_static(BODY)));
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(reply)
}

fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("listening on {}", listener.local_addr()?);
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service_fn(answer));
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}
