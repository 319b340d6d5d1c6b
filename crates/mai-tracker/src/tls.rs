//! HTTPS on the tracker's listener, so the console's tokens and the usage data do not
//! cross a network in clear text (issue #12).
//!
//! The certificate is the operator's (`MAI_TRACKER_TLS_CERT` / `_KEY`, PEM) or, by
//! default, one the tracker makes itself at first start: self-signed (rcgen, an ECDSA
//! P-256 key), stored next to the ledger on the data volume (`tracker-tls-cert.pem`,
//! `tracker-tls-key.pem`, both mode 0600) and reused after restarts, so its fingerprint
//! stays what the console pins. The console trusts it by its SHA-256 fingerprint
//! (`tracker_cert_sha256` in the fleet file, the way SSH trusts a host key), which the
//! tracker logs at start and shows at `/healthz`; no CA is involved.

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names of the made-up certificate and key, in the ledger's directory.
pub const SELF_SIGNED_CERT: &str = "tracker-tls-cert.pem";
pub const SELF_SIGNED_KEY: &str = "tracker-tls-key.pem";

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// The operator's PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// Made at first start in `dir` (the ledger's directory) and reused.
    SelfSigned { dir: PathBuf },
}

/// The server's TLS configuration and what identifies it.
pub struct TlsServer {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the end-entity certificate's DER, `AB:CD:…` (what the console pins).
    pub fingerprint: String,
    /// The certificate file in use.
    pub cert_path: PathBuf,
}

/// `AB:CD:…`: the form `openssl x509 -fingerprint -sha256` prints.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl TlsServer {
    /// Loads the certificate, making the self-signed one first when there is none.
    pub fn load(src: &TlsSource) -> anyhow::Result<TlsServer> {
        let (cert_path, key_path) = match src {
            TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
            TlsSource::SelfSigned { dir } => {
                let cert = dir.join(SELF_SIGNED_CERT);
                let key = dir.join(SELF_SIGNED_KEY);
                if !cert.exists() || !key.exists() {
                    make_self_signed(&cert, &key)?;
                }
                (cert, key)
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .with_context(|| {
                format!(
                    "reading the TLS certificate {} (MAI_TRACKER_TLS_CERT)",
                    cert_path.display()
                )
            })?
            .collect::<Result<_, _>>()
            .with_context(|| format!("parsing the PEM certificate {}", cert_path.display()))?;
        let Some(leaf) = chain.first() else {
            anyhow::bail!(
                "{} holds no certificate (MAI_TRACKER_TLS_CERT wants a PEM chain, the server's first)",
                cert_path.display()
            );
        };
        let fingerprint = fingerprint(leaf.as_ref());
        let key = PrivateKeyDer::from_pem_file(&key_path).with_context(|| {
            format!(
                "reading the TLS private key {} (MAI_TRACKER_TLS_KEY)",
                key_path.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the TLS certificate and key do not go together")?;
        // The listener speaks HTTP/1.1 only (crate::server).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsServer {
            config: Arc::new(config),
            fingerprint,
            cert_path,
        })
    }
}

/// A self-signed certificate for `localhost` / loopback (the console pins it, so its
/// names do not matter), key written 0600 before the certificate, each through a
/// temporary file renamed into place, so a crash leaves no half-written file behind.
fn make_self_signed(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let dir = cert.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {} for the TLS certificate", dir.display()))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ck = rcgen::generate_simple_self_signed(names).context("making a TLS certificate")?;
    write_private(key, ck.key_pair.serialize_pem().as_bytes())?;
    write_private(cert, ck.cert.pem().as_bytes())?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("storing {}", path.display()))?;
    Ok(())
}

/// A client connection that accepts only the certificate with `fingerprint`: the
/// `healthcheck` subcommand's way to reach its own HTTPS listener.
pub fn loopback_client(fingerprint: &str) -> anyhow::Result<rustls::ClientConnection> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        fingerprint: fingerprint.to_owned(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::try_from("localhost")?,
    )?)
}

#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity.as_ref()) == self.fingerprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not this tracker's certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn self_signed_is_made_once_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let src = TlsSource::SelfSigned {
            dir: dir.path().to_path_buf(),
        };
        let a = TlsServer::load(&src).unwrap();
        for f in [SELF_SIGNED_CERT, SELF_SIGNED_KEY] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let b = TlsServer::load(&src).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "reused after a restart");
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
    }
}
