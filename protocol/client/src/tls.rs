//! Which servers a `wss://` client trusts, turned into a rustls client configuration.
//!
//! The default trusts the Mozilla root programme as packaged by `webpki-roots`: the same
//! set on every machine, no file to find. A private CA is a PEM file ([`Trust::CaFile`]);
//! load tests against self-signed servers may skip the certificate check
//! ([`Trust::Insecure`]; the handshake signature is still verified). The crypto provider
//! is ring, as the server's.
//!
//! Must not read any file other than the one it is given.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which server certificates to accept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// Certificates that chain to a root of the Mozilla programme (`webpki-roots`).
    #[default]
    WebPkiRoots,
    /// Certificates that chain to the CA certificates in this PEM file (one or more).
    CaFile(PathBuf),
    /// Any certificate for any name. For load tests against self-signed servers only: the
    /// connection is encrypted to whoever holds the key, not authenticated.
    Insecure,
}

/// Why a TLS configuration could not be built. Fix the option and try again.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no PEM certificate.
    #[error("{path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// rustls refused the configuration (no protocol versions in common).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl Trust {
    /// The rustls client configuration for this trust.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let roots = match self {
            Trust::Insecure => {
                let config = builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                    .with_no_client_auth();
                return Ok(Arc::new(config));
            }
            Trust::WebPkiRoots => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Trust::CaFile(path) => ca_file(path)?,
        };
        Ok(Arc::new(
            builder.with_root_certificates(roots).with_no_client_auth(),
        ))
    }
}

fn ca_file(path: &PathBuf) -> Result<RootCertStore, TlsError> {
    let bad = |why: String| TlsError::CaFile {
        path: path.clone(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad("no usable CA certificate".into()));
    }
    Ok(roots)
}

/// [`Trust::Insecure`]: any certificate for any name is accepted, but the handshake
/// signatures are still verified, so the connection is at least to whoever holds that key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trust_builds_and_a_bad_ca_file_says_why() {
        assert!(Trust::WebPkiRoots.client_config().is_ok());
        assert!(Trust::Insecure.client_config().is_ok());
        let missing = Trust::CaFile("/nonexistent/ca.pem".into()).client_config();
        assert!(
            matches!(&missing, Err(TlsError::CaFile { path, .. }) if path.ends_with("ca.pem")),
            "{missing:?}"
        );
        let dir =
            std::env::temp_dir().join(format!("rallypoint-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = Trust::CaFile(empty).client_config().unwrap_err();
        assert!(
            err.to_string().contains("no usable CA certificate"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
