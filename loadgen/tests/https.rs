//! HTTPS targets on loopback, with a CA and a server certificate made in the test
//! (rcgen): with `[request] ca_file` naming the CA every request succeeds over TLS;
//! without it the certificate is not trusted and every first request ends
//! `tls_error` (dropped, never `refused`, not retried). Connection setup (connect and
//! handshake) is recorded apart from request latency in modes.csv.

mod common;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA (PEM) and a server certificate and key it signed for 127.0.0.1 and localhost.
fn certificates() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "stampede test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("server cert");
    (
        ca_cert.pem(),
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A TLS server on a free loopback port answering every GET with 200 and a small
/// JSON body, keep-alive; counts finished handshakes and requests. Stops on drop.
struct TlsServer {
    port: u16,
    handshakes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsServer {
    fn start(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> TlsServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let (handshakes, requests) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (h, r) = (handshakes.clone(), requests.clone());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let (tcp, _) = tokio::select! {
                        _ = &mut stopped => return,
                        a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    };
                    let (acceptor, h, r) = (acceptor.clone(), h.clone(), r.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        h.fetch_add(1, Ordering::SeqCst);
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        loop {
                            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                                buf.drain(..end + 4);
                                if !head.contains("/healthz") {
                                    r.fetch_add(1, Ordering::SeqCst);
                                }
                                let body = r#"{"ok": true}"#;
                                let answer = format!(
                                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                );
                                if tls.write_all(answer.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                            match tls.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    });
                }
            });
        });
        TlsServer {
            port,
            handshakes,
            requests,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const JOURNEY: &str = r#"
[[journey]]
name = "list"
path = "/products"

[[journey]]
name = "view"
path = "/products/${rand:1..5}"
repeat = 2
"#;

#[test]
fn an_https_target_is_loaded_with_its_ca_file_and_counts_tls_error_without() {
    let (ca_pem, cert, key) = certificates();
    let server = TlsServer::start(cert, key);
    let tmp = temp_dir("https-ca");
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, ca_pem).expect("write ca");
    let url = format!("https://127.0.0.1:{}", server.port);
    let load = "users = 10\ntimeout = \"5s\"\n[load.arrival]\npeak_rate = 100\n";

    let trusted = format!("[request]\nca_file = \"{}\"\n{JOURNEY}", ca_path.display());
    let run = run_scenario("https-ok", &scenario(&url, load, &trusted), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let all = run.summary("test", "all");
    assert_eq!(num(&all, "ok"), 30.0, "{}", run.describe());
    assert_eq!(num(&all, "tls_error"), 0.0);
    assert_eq!(server.requests.load(Ordering::SeqCst), 30);
    let modes = run.csv("modes.csv");
    assert_eq!(
        num(&modes[0], "connections"),
        10.0,
        "one connection per user"
    );
    assert!(num(&modes[0], "connect_p50_ms") > 0.0, "{:?}", modes[0]);
    assert!(num(&modes[0], "connect_max_ms") >= num(&modes[0], "connect_p50_ms"));

    server.requests.store(0, Ordering::SeqCst);
    let retrying = format!("{load}[load.retry]\ncount = 2\nbackoff = \"10ms\"\n");
    let run = run_scenario("https-untrusted", &scenario(&url, &retrying, JOURNEY), &[]);
    assert!([0, 1].contains(&run.code()), "{}", run.describe());
    let all = run.summary("test", "all");
    assert_eq!(num(&all, "tls_error"), 10.0, "{}", run.describe());
    assert_eq!(num(&all, "refused"), 0.0);
    assert_eq!(
        num(&all, "dropped"),
        10.0,
        "a certificate not trusted is no answer"
    );
    assert_eq!(num(&all, "attempts"), 10.0, "and it is not retried");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        0,
        "nothing is sent to a server whose certificate failed"
    );
    assert_eq!(run.csv("modes.csv")[0]["users_aborted"], "10");
    assert!(server.handshakes.load(Ordering::SeqCst) >= 10);
}

#[test]
fn a_ca_file_that_is_not_a_certificate_is_refused_by_file_line_and_key() {
    let tmp = temp_dir("https-bad-ca");
    let path = tmp.path().join("s.toml");
    std::fs::write(tmp.path().join("ca.pem"), "not a certificate").expect("write");
    let text = scenario(
        "https://127.0.0.1:9",
        "users = 1\n[load.arrival]\npeak_rate = 1\n",
        &format!("[request]\nca_file = \"ca.pem\"\n{JOURNEY}"),
    );
    std::fs::write(&path, text).expect("write");
    let out = loadgen().arg("validate").arg(&path).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("request.ca_file"), "{err}");
    assert!(err.contains("s.toml:"), "{err}");
    assert!(err.contains("holds no certificate"), "{err}");
}
