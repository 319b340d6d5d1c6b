//! HTTP client of one client's tracker, exactly per docs/tracker-api.md.

use std::time::Duration;

use chrono::NaiveDate;

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("tracker {url} did not answer within {timeout_ms} ms; check that it runs and the network path")]
    Timeout { url: String, timeout_ms: u64 },
    #[error("tracker {url} is unreachable: {message}; check the tracker_url in the fleet file and that the tracker runs")]
    Unreachable { url: String, message: String },
    #[error("tracker {url} refused the token (401); set the right token for this client")]
    Unauthorized { url: String },
    #[error("tracker {url} answered {status}: {message}")]
    Api {
        url: String,
        status: u16,
        message: String,
    },
    #[error("tracker {url} sent a reply the console cannot read: {message}; are the tracker and console versions compatible?")]
    Decode { url: String, message: String },
    #[error("tracker {url} presented a certificate with SHA-256 fingerprint {got}, but the fleet file pins {pinned} (tracker_cert_sha256); if the tracker's certificate was renewed on purpose, check the new fingerprint at the tracker (its start-up log or /healthz, read on the host) and update the fleet file; otherwise something is intercepting the connection")]
    CertMismatch {
        url: String,
        got: String,
        pinned: String,
    },
    #[error("cannot do an admin action on tracker {url}: {message}; set the client's tracker_admin_token")]
    NoAdminToken { url: String, message: String },
    #[error("backup from tracker {url} is not usable: {message}")]
    Backup { url: String, message: String },
}

impl TrackerError {
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TrackerError::Timeout { .. } | TrackerError::Unreachable { .. }
        )
    }
}

// The bodies are mai-wire's types, the same ones the tracker serializes.
pub use mai_wire::tracker::{
    ByChat, ByGroup, ByModel, ByTask, ByUser, Daily, DayUsage, Event, EventPage, KeyState,
    KeyStatus, KeyedUsage, Month, Status, SyncReport, SyncState, SyncStatus, Today,
};
pub use mai_wire::tracker::{EraseRequest, ErasureReport, PrivacyExport, PrivacySubject};
use mai_wire::tracker::{ErrorBody, KeyHandover, KeyLabel, SyncRequest};
pub use mai_wire::tracker::{
    RestoreReport, BACKUP_EVENTS_HEADER, BACKUP_ORG_HEADER, BACKUP_SHA256_HEADER,
};

/// What [`TrackerClient::backup_to`] wrote, verified against the tracker's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDownload {
    pub sha256: String,
    pub size_bytes: u64,
    /// Events in the backup, as the tracker counted them.
    pub events: u64,
    pub org_id: String,
}

/// A file as a stream of 64 KiB chunks (an upload body).
fn tokio_util_stream(
    f: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(f), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
use mai_wire::CommercialTerms;

/// How long the console waits for a key hand-over's reply: longer than the tracker's own
/// check of the new key (its `GET /key` times out at 15 s), so a slow OpenRouter ends in
/// the tracker's answer rather than in a console timeout with the outcome unknown.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(45);

/// A tracker's HTTP client. Two tokens, two roles (docs/tracker-api.md): the read token
/// goes with every routine call (status, usage, events), the admin token only with the
/// calls that change the tracker (sync, terms push, key hand-over), so a refresh loop
/// that leaks (a proxy log, a captured request) leaks only read access.
#[derive(Clone)]
pub struct TrackerClient {
    http: reqwest::Client,
    base: url::Url,
    token: String,
    /// The admin token, or why there is none.
    admin: Result<String, String>,
    timeout: Duration,
}

impl std::fmt::Debug for TrackerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackerClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl TrackerClient {
    /// A client whose `token` is used for every call, admin ones included (tests, tools
    /// holding one token); see [`TrackerClient::with_admin_token`].
    pub fn new(http: reqwest::Client, base: url::Url, token: String, timeout: Duration) -> Self {
        TrackerClient {
            http,
            base,
            admin: Ok(token.clone()),
            token,
            timeout,
        }
    }

    /// Sets the token of the admin calls (`Err`: why there is none); the token given to
    /// [`TrackerClient::new`] stays the one of the reads.
    pub fn with_admin_token(mut self, admin: Result<String, String>) -> Self {
        self.admin = admin;
        self
    }

    fn admin_token(&self, url: &str) -> Result<&str, TrackerError> {
        self.admin
            .as_deref()
            .map_err(|m| TrackerError::NoAdminToken {
                url: url.to_string(),
                message: m.clone(),
            })
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        timeout: Duration,
    ) -> Result<T, TrackerError> {
        let token = self.token.clone();
        self.send_with(req, url, timeout, &token).await
    }

    async fn send_admin<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        timeout: Duration,
    ) -> Result<T, TrackerError> {
        let token = self.admin_token(url)?.to_string();
        self.send_with(req, url, timeout, &token).await
    }

    async fn send_with<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        timeout: Duration,
        token: &str,
    ) -> Result<T, TrackerError> {
        let fut = async {
            let resp = req
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| send_error(url, e))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| TrackerError::Unreachable {
                url: url.to_string(),
                message: e.without_url().to_string(),
            })?;
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(TrackerError::Unauthorized {
                    url: url.to_string(),
                });
            }
            if !status.is_success() {
                let message = serde_json::from_slice::<ErrorBody>(&bytes)
                    .map(|b| b.error.message)
                    .unwrap_or_else(|_| {
                        String::from_utf8_lossy(&bytes).chars().take(300).collect()
                    });
                return Err(TrackerError::Api {
                    url: url.to_string(),
                    status: status.as_u16(),
                    message,
                });
            }
            serde_json::from_slice(&bytes).map_err(|e| TrackerError::Decode {
                url: url.to_string(),
                message: e.to_string(),
            })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(TrackerError::Timeout {
                url: url.to_string(),
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, TrackerError> {
        let url = self.url(path);
        self.send(self.http.get(&url), &url, self.timeout).await
    }

    pub async fn status(&self) -> Result<Status, TrackerError> {
        self.get("/api/v1/status").await
    }
    pub async fn today(&self) -> Result<Today, TrackerError> {
        self.get("/api/v1/usage/today").await
    }
    pub async fn daily(&self, from: NaiveDate, to: NaiveDate) -> Result<Daily, TrackerError> {
        self.get(&format!("/api/v1/usage/daily?from={from}&to={to}"))
            .await
    }
    pub async fn by_user(&self, from: NaiveDate, to: NaiveDate) -> Result<ByUser, TrackerError> {
        self.get(&format!("/api/v1/usage/by-user?from={from}&to={to}"))
            .await
    }
    pub async fn by_model(&self, from: NaiveDate, to: NaiveDate) -> Result<ByModel, TrackerError> {
        self.get(&format!("/api/v1/usage/by-model?from={from}&to={to}"))
            .await
    }
    pub async fn by_task(&self, from: NaiveDate, to: NaiveDate) -> Result<ByTask, TrackerError> {
        self.get(&format!("/api/v1/usage/by-task?from={from}&to={to}"))
            .await
    }
    pub async fn by_group(&self, from: NaiveDate, to: NaiveDate) -> Result<ByGroup, TrackerError> {
        self.get(&format!("/api/v1/usage/by-group?from={from}&to={to}"))
            .await
    }
    pub async fn by_chat(&self, from: NaiveDate, to: NaiveDate) -> Result<ByChat, TrackerError> {
        self.get(&format!("/api/v1/usage/by-chat?from={from}&to={to}"))
            .await
    }
    /// `month` as `YYYY-MM`.
    pub async fn month(&self, month: &str) -> Result<Month, TrackerError> {
        self.get(&format!("/api/v1/usage/month?month={month}"))
            .await
    }
    pub async fn events(&self, after: i64, limit: u32) -> Result<EventPage, TrackerError> {
        self.get(&format!("/api/v1/events?after={after}&limit={limit}"))
            .await
    }

    /// Reconciliation can take a while: it gets a longer timeout than reads.
    pub async fn sync(
        &self,
        days_back: u32,
        timeout: Duration,
    ) -> Result<SyncReport, TrackerError> {
        let url = self.url("/api/v1/sync");
        let req = self.http.post(&url).json(&SyncRequest {
            days_back: Some(days_back),
        });
        self.send_admin(req, &url, timeout).await
    }

    /// Pushes the client's commercial terms (from the fleet file, their owner); the
    /// tracker prices its own reports with them from now on.
    pub async fn put_terms(
        &self,
        terms: &CommercialTerms,
    ) -> Result<CommercialTerms, TrackerError> {
        let url = self.url("/api/v1/admin/terms");
        let req = self.http.put(&url).json(terms);
        self.send_admin(req, &url, self.timeout).await
    }

    /// Hot-swaps the upstream OpenRouter key; the reply carries only the masked label.
    /// Hands a new key over; `name` is its OpenRouter name (what Broadcast spans carry).
    pub async fn put_openrouter_key(
        &self,
        key: &str,
        name: Option<&str>,
    ) -> Result<String, TrackerError> {
        let url = self.url("/api/v1/admin/openrouter-key");
        let req = self.http.put(&url).json(&KeyHandover {
            key: key.to_string(),
            name: name.map(str::to_owned),
        });
        let l: KeyLabel = self
            .send_admin(req, &url, self.timeout.max(HANDOVER_TIMEOUT))
            .await?;
        Ok(l.label)
    }

    /// One metered request through the tracker (`POST /api/v1/admin/probe`), answered
    /// once it is in the tracker's ledger: the health gate of updates. The tracker waits
    /// for OpenRouter and its ledger (up to 10 s), so this gets a longer timeout.
    pub async fn probe(
        &self,
        model: Option<&str>,
    ) -> Result<mai_wire::tracker::ProbeReport, TrackerError> {
        let url = self.url("/api/v1/admin/probe");
        let req = self.http.post(&url).json(&mai_wire::tracker::ProbeRequest {
            model: model.map(str::to_owned),
        });
        self.send_admin(req, &url, self.timeout.max(Duration::from_secs(30)))
            .await
    }

    /// `GET /readyz`: whether the tracker is ready to serve (its ledger writable).
    pub async fn ready(&self) -> Result<(), TrackerError> {
        let url = self.url("/readyz");
        let r = tokio::time::timeout(self.timeout, self.http.get(&url).send())
            .await
            .map_err(|_| TrackerError::Timeout {
                url: url.clone(),
                timeout_ms: self.timeout.as_millis() as u64,
            })?
            .map_err(|e| send_error(&url, e))?;
        if r.status().is_success() {
            return Ok(());
        }
        let status = r.status().as_u16();
        Err(TrackerError::Api {
            url,
            status,
            message: r.text().await.unwrap_or_default().trim().to_string(),
        })
    }

    /// Downloads the tracker's ledger backup (`GET /api/v1/admin/backup`) into `dest`,
    /// which must not exist, streaming to disk and hashing on the way; `progress` gets
    /// (bytes so far, total). The file is synced and kept only when its SHA-256 and size
    /// equal the reply's headers (else it is removed and the error says so).
    pub async fn backup_to(
        &self,
        dest: &std::path::Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<BackupDownload, TrackerError> {
        use sha2::Digest;
        use tokio::io::AsyncWriteExt;
        let url = self.url("/api/v1/admin/backup");
        let token = self.admin_token(&url)?.to_string();
        let bad = |message: String| TrackerError::Backup {
            url: url.clone(),
            message,
        };
        let resp = tokio::time::timeout(
            self.timeout.max(Duration::from_secs(120)),
            self.http.get(&url).bearer_auth(&token).send(),
        )
        .await
        .map_err(|_| TrackerError::Timeout {
            url: url.clone(),
            timeout_ms: self.timeout.max(Duration::from_secs(120)).as_millis() as u64,
        })?
        .map_err(|e| send_error(&url, e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(TrackerError::Unauthorized { url });
        }
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            return Err(TrackerError::Api {
                url,
                status: status.as_u16(),
                message,
            });
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let want_sha = header(BACKUP_SHA256_HEADER)
            .ok_or_else(|| bad(format!("the reply has no {BACKUP_SHA256_HEADER} header; is the tracker older than backups?")))?;
        let want_size = resp
            .content_length()
            .ok_or_else(|| bad("the reply has no Content-Length".into()))?;
        let events = header(BACKUP_EVENTS_HEADER)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let org = header(BACKUP_ORG_HEADER).unwrap_or_default();
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .await
            .map_err(|e| bad(format!("cannot create {}: {e}", dest.display())))?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        let mut resp = resp;
        let idle = self.timeout.max(Duration::from_secs(30));
        let outcome: Result<(), TrackerError> = async {
            loop {
                let chunk = tokio::time::timeout(idle, resp.chunk())
                    .await
                    .map_err(|_| TrackerError::Timeout {
                        url: url.clone(),
                        timeout_ms: idle.as_millis() as u64,
                    })?
                    .map_err(|e| bad(format!("the download broke off after {size} bytes: {}", e.without_url())))?;
                let Some(chunk) = chunk else { break };
                hasher.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| bad(format!("writing {}: {e}", dest.display())))?;
                progress(size, want_size);
            }
            file.sync_all()
                .await
                .map_err(|e| bad(format!("syncing {}: {e}", dest.display())))?;
            let got = hex::encode(hasher.finalize_reset());
            if size != want_size || !got.eq_ignore_ascii_case(&want_sha) {
                return Err(bad(format!(
                    "received {size} bytes with SHA-256 {got}, the tracker announced {want_size} bytes with SHA-256 {want_sha}; the file was damaged on the way: run the backup again"
                )));
            }
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = outcome {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(e);
        }
        Ok(BackupDownload {
            sha256: want_sha.to_ascii_lowercase(),
            size_bytes: size,
            events,
            org_id: org,
        })
    }

    /// Uploads a backup file onto this tracker (`POST /api/v1/admin/restore`), streamed,
    /// with its SHA-256 for the tracker to verify. The tracker refuses (409) when its
    /// ledger already holds events.
    pub async fn restore_from(
        &self,
        file: &std::path::Path,
        sha256: &str,
    ) -> Result<RestoreReport, TrackerError> {
        let url = self.url("/api/v1/admin/restore");
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| TrackerError::Backup {
                url: url.clone(),
                message: format!("cannot read {}: {e}", file.display()),
            })?;
        let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
        let stream = tokio_util_stream(f);
        let req = self
            .http
            .post(&url)
            .header(BACKUP_SHA256_HEADER, sha256)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .header(reqwest::header::CONTENT_TYPE, "application/vnd.sqlite3")
            .body(reqwest::Body::wrap_stream(stream));
        self.send_admin(req, &url, self.timeout.max(Duration::from_secs(600)))
            .await
    }

    /// Erases one person's personal data on the tracker (GDPR art. 17). The tracker
    /// rebuilds its ledger file afterwards, so this gets a long timeout.
    pub async fn privacy_erase(
        &self,
        subject: &PrivacySubject,
    ) -> Result<ErasureReport, TrackerError> {
        let url = self.url("/api/v1/admin/privacy/erase");
        let req = self.http.post(&url).json(&EraseRequest {
            user: subject.clone(),
        });
        self.send_admin(req, &url, self.timeout.max(Duration::from_secs(120)))
            .await
    }

    /// One person's events and totals (GDPR art. 15).
    pub async fn privacy_export(
        &self,
        subject: &PrivacySubject,
    ) -> Result<PrivacyExport, TrackerError> {
        let mut url = url::Url::parse(&self.url("/api/v1/admin/privacy/export")).map_err(|e| {
            TrackerError::Unreachable {
                url: self.base.to_string(),
                message: e.to_string(),
            }
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(id) = &subject.id {
                q.append_pair("user_id", id);
            }
            if let Some(e) = &subject.email {
                q.append_pair("email", e);
            }
        }
        // The query holds the person's e-mail: errors name the path only.
        let shown = self.url("/api/v1/admin/privacy/export");
        self.send_admin(
            self.http.get(url),
            &shown,
            self.timeout.max(Duration::from_secs(30)),
        )
        .await
    }
}

/// What a failed request says, with its causes: reqwest's own message ("error sending
/// request") hides the TLS or connect error that tells the operator what to fix. A
/// pinned certificate that does not match becomes [`TrackerError::CertMismatch`].
fn send_error(url: &str, e: reqwest::Error) -> TrackerError {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        // The TLS error arrives as itself or inside an io::Error (whose `source` skips it).
        // (io::Errors may nest).
        let mut inner: &(dyn std::error::Error + 'static) = s;
        while let Some(i) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = i;
        }
        let tls = inner.downcast_ref::<rustls::Error>();
        if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))) = tls {
            if let Some(p) = o.0.downcast_ref::<PinMismatch>() {
                return TrackerError::CertMismatch {
                    url: url.to_string(),
                    got: p.got.clone(),
                    pinned: p.pinned.clone(),
                };
            }
        }
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        src = s.source();
    }
    TrackerError::Unreachable {
        url: url.to_string(),
        message,
    }
}

/// The certificate a pinned tracker presented was not the pinned one.
#[derive(Debug)]
struct PinMismatch {
    got: String,
    pinned: String,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "certificate SHA-256 {} is not the pinned {}",
            self.got, self.pinned
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Accepts exactly one certificate: the one whose SHA-256 (of its DER bytes) the fleet
/// file pins, like an SSH host key in known_hosts (or HPKP's pins, on the certificate
/// instead of its key).
///
/// Why a pin and not a CA: each tracker makes its own self-signed certificate at first
/// start (crates/mai-tracker/README.md, TLS), usually on a private address no public CA
/// would certify, and running a private CA would put one more secret (the CA key) on
/// the operator's machine whose theft would let anyone impersonate every tracker. A pin
/// trusts one certificate for one client, learned out of band (the tracker's start-up
/// log or `/healthz` read on its host) and changed only by editing the fleet file.
///
/// The host name is not checked (the pin names the certificate, whatever address the
/// fleet file uses), expiry neither (a self-signed pinned certificate is revoked by
/// removing the pin); the handshake signature is, with the certificate's key, so only
/// the holder of the private key can present it.
#[derive(Debug)]
pub struct PinnedCert {
    pin: [u8; 32],
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl PinnedCert {
    pub fn new(pin: crate::fleet::CertFingerprint) -> PinnedCert {
        PinnedCert {
            pin: pin.0,
            provider: std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha2::{Digest, Sha256};
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(std::sync::Arc::new(
                    PinMismatch {
                        got: crate::fleet::CertFingerprint(got).to_string(),
                        pinned: crate::fleet::CertFingerprint(self.pin).to_string(),
                    },
                ))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An HTTP client that talks only to the server holding the pinned certificate.
pub fn pinned_http_client(
    pin: crate::fleet::CertFingerprint,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(PinnedCert::new(pin)))
        .with_no_client_auth();
    // The tracker serves HTTP/1.1 only.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    builder
        .use_preconfigured_tls(tls)
        .https_only(true)
        .build()
        .map_err(|e| e.to_string())
}
