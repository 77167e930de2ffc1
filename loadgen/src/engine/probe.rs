//! The readiness probe of an `https://` target: one GET over TLS on a fresh
//! connection with the lean client, true on a 2xx. It asks only whether the server
//! answers, so it does not check the certificate: a server whose certificate loadgen
//! does not trust is ready, and its requests then end `tls_error`, counted, instead
//! of the run stopping at "never ready".

use crate::engine::h1::H1;
use crate::engine::tls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

/// Accepts any certificate, still checking the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

fn probe_config() -> Option<Arc<ClientConfig>> {
    let provider = rustls::crypto::ring::default_provider();
    let algorithms = provider.signature_verification_algorithms;
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(algorithms)))
        .with_no_client_auth();
    Some(Arc::new(config))
}

/// One GET of `path` over TLS; true on a 2xx within 2 s.
pub async fn probe_tls(addr: SocketAddr, host: &str, path: &str) -> bool {
    let attempt = async {
        let config = probe_config()?;
        let name = tls::server_name(host).ok()?;
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let stream = tls::handshake(&config, &name, tcp).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        let (answer, _) = H1::new(stream)
            .exchange(request.as_bytes(), false)
            .await
            .ok()?;
        Some(answer.is_success())
    };
    matches!(
        timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}
