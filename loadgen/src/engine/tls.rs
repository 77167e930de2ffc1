//! HTTPS for loadgen's lean client: one rustls client configuration per engine (the
//! `ring` provider; no OpenSSL), trusting the Mozilla roots (`webpki-roots`) and,
//! with `[request] ca_file`, the certificates of that PEM file too (a private CA).
//! The handshake runs over the user's TCP connection; a failed handshake that rustls
//! reports (an untrusted or misnamed certificate, a TLS alert) is `tls_error`, never
//! `refused`; the connection dying under it is `closed`. Only HTTP/1.1 is offered
//! (ALPN).

use crate::engine::conn::NoAnswer;
use crate::outcome::Class;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The certificates of a PEM file; an error says what is wrong with it.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{}` is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "`{}` holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The client configuration: Mozilla's roots, plus `ca_file`'s certificates.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("`{}`: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name the certificate must carry: the `Host` value without its port.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let name = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_string()).map_err(|e| format!("`{name}`: {e}"))
}

/// Runs the TLS handshake over `tcp`.
pub async fn handshake(
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, NoAnswer> {
    TlsConnector::from(config.clone())
        .connect(name.clone(), tcp)
        .await
        .map_err(|e| {
            let tls = e
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if tls {
                NoAnswer {
                    class: Class::TlsError,
                    why: None,
                }
            } else {
                Class::Closed.into()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_name_is_the_host_without_its_port() {
        assert_eq!(
            server_name("localhost:8443").map(|n| n.to_str().into_owned()),
            Ok("localhost".to_string())
        );
        assert!(matches!(
            server_name("127.0.0.1:443"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]:443"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad name:1").is_err());
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").expect("write");
        let err = client_config(Some(&path)).err().unwrap_or_default();
        assert!(err.contains("holds no certificate"), "{err}");
        let err = client_config(Some(&dir.path().join("missing.pem")))
            .err()
            .unwrap_or_default();
        assert!(err.contains("cannot read"), "{err}");
        assert!(client_config(None).is_ok());
    }
}
