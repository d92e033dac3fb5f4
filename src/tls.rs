//! TLS of the two listeners, through OpenSSL (the library the gateway already links for its
//! CA and the one PostgreSQL and Redis connections use: one TLS stack to configure and patch).
//!
//! Invariants: only TLS 1.2 and 1.3 with forward-secret AEAD suites (Mozilla's "intermediate"
//! profile); the key must match the certificate, checked at start-up, so a bad pair stops the
//! gateway instead of failing every handshake; when a client CA is configured, a handshake
//! without a certificate issued by it fails before any HTTP is read.

use std::path::{Path, PathBuf};

use openssl::error::ErrorStack;
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509;

use crate::config::TlsConfig;

/// A TLS setting that could not be used: which one, which file, and why.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting} ({}): {source}", path.display())]
    Openssl {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: ErrorStack,
    },
    #[error("{setting} ({}): {source}", path.display())]
    Read {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{setting} ({}): no PEM certificate in the file", path.display())]
    NoCertificate {
        setting: &'static str,
        path: PathBuf,
    },
}

fn at(setting: &'static str, path: &Path) -> impl FnOnce(ErrorStack) -> TlsError {
    let path = path.to_owned();
    move |source| TlsError::Openssl {
        setting,
        path,
        source,
    }
}

/// The acceptor of a listener: `config`'s certificate and key; with `client_ca`, a client
/// certificate issued by that CA is required (mTLS).
pub fn acceptor(
    config: &TlsConfig,
    client_ca: Option<&Path>,
) -> Result<SslAcceptorBuilder, TlsError> {
    let cert = config.cert_file.as_path();
    let mut builder =
        SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(at("tls", cert))?;
    builder
        .set_certificate_chain_file(cert)
        .map_err(at("tls.cert_file", cert))?;
    builder
        .set_private_key_file(&config.key_file, SslFiletype::PEM)
        .map_err(at("tls.key_file", &config.key_file))?;
    builder
        .check_private_key()
        .map_err(at("tls.key_file", &config.key_file))?;
    if let Some(ca) = client_ca {
        let setting = "tls.admin_client_ca_file";
        let pem = std::fs::read(ca).map_err(|source| TlsError::Read {
            setting,
            path: ca.to_owned(),
            source,
        })?;
        let certs = X509::stack_from_pem(&pem).map_err(at(setting, ca))?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                setting,
                path: ca.to_owned(),
            });
        }
        for cert in certs {
            // Trusted for client certificates, and named in the CertificateRequest so that a
            // client picks the right certificate.
            builder.add_client_ca(&cert).map_err(at(setting, ca))?;
            builder
                .cert_store_mut()
                .add_cert(cert)
                .map_err(at(setting, ca))?;
        }
        builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    Ok(builder)
}
