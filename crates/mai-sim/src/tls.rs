//! HTTPS for the simulators, as the real services are reached: TLS with ALPN offering
//! `h2` and `http/1.1`, so an HTTP/2-capable client multiplexes its streams over one
//! connection the way it would against openrouter.ai.
//!
//! The certificate chain is made up at start: a throw-away CA and a leaf for
//! `localhost` / `127.0.0.1` signed by it. Clients trust the CA's PEM
//! ([`TlsIdentity::ca_pem`]); nothing is read from or written to disk unless asked.

use anyhow::Context as _;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Streams one HTTP/2 connection may carry at once (SETTINGS_MAX_CONCURRENT_STREAMS).
/// What openrouter.ai advertises is not documented; 100 is the RFC 9113 floor
/// recommendation and the cap OpenAI's edge is reported to use, so clients are tested
/// against a limit they will meet.
pub const DEFAULT_H2_MAX_STREAMS: u32 = 100;

/// A server certificate and the CA that signed it.
pub struct TlsIdentity {
    ca_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl TlsIdentity {
    /// A fresh CA and a leaf certificate for `localhost` and `127.0.0.1`.
    pub fn generate() -> anyhow::Result<TlsIdentity> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().context("generating the test CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mai-sim test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = KeyPair::generate().context("generating the server key")?;
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("building the TLS server configuration")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsIdentity {
            ca_pem: ca.pem(),
            config: Arc::new(config),
        })
    }

    /// The CA certificate (PEM) a client must trust to reach this server.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

/// Serves `app` over TLS (HTTP/1.1 or HTTP/2 by ALPN) until `stop` fires, then lets
/// open connections finish their responses.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    identity: &TlsIdentity,
    h2_max_streams: u32,
    mut stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.config.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(h2_max_streams);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait and go on accepting.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Small SSE writes must not wait for Nagle + delayed ACK.
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(app));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    // Asks each connection to finish its open responses; returns when all have ended.
    graceful.shutdown().await;
    Ok(())
}
