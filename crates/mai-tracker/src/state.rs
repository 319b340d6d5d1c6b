//! Shared state of the running tracker.

use crate::config::Config;
use crate::identity::IdentityReader;
use crate::journal::Journal;
use crate::key_history::KeyHistory;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use crate::writer::LedgerWriter;
use mai_core::ledger::Ledger;
use mai_core::openrouter::{KeyInfo, OpenRouterClient, Refusal, SecretKey};
use mai_core::pricing::{CommercialTerms, MarkupSchedule};
use mai_wire::tracker::{KeyState, KeyStatus, SyncState};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub struct AppState {
    pub cfg: Config,
    key: RwLock<SecretKey>,
    /// Connections for proxied traffic.
    pub upstream: Upstream,
    /// Pool for accounting calls (`/generation`, `/key`, ...), with timeouts.
    pub api_http: reqwest::Client,
    pub writer: LedgerWriter,
    pub journal: Journal,
    /// A second connection for reads (WAL lets it run beside the writer).
    pub reader: Mutex<Ledger>,
    pub metrics: Metrics,
    /// Reads who asked from Open WebUI's headers; holds the keyed JWT verifier, built
    /// once here so the hot path only clones it.
    pub identity: IdentityReader,
    /// What the last `/key` check said, in the form `/api/v1/status` reports it.
    pub key_status: Mutex<KeyStatus>,
    /// The reconciliation loop as `/api/v1/status` reports it; `provisional_pending` is
    /// read from the ledger when the status is asked, so it stays `None` here.
    pub sync: Mutex<SyncState>,
    /// The OpenRouter keys this tracker used (drift across rotations, webhook key names);
    /// stored in the ledger's meta by [`crate::key_history`].
    pub keys: Mutex<KeyHistory>,
    /// The commercial terms the console last pushed (`None` until the first push);
    /// persisted in the ledger by [`crate::terms`], loaded at start.
    terms: RwLock<Option<CommercialTerms>>,
    /// Serialises terms pushes, so the copy in memory is the one stored last.
    pub terms_push: tokio::sync::Mutex<()>,
    /// Set when the proxy noted a spending refusal ([`AppState::note_refusal`]), so the
    /// next success clears it without taking the status lock on every request.
    refused: std::sync::atomic::AtomicBool,
    /// Serialises key hand-overs ([`crate::api::put_key`]).
    pub handover_lock: tokio::sync::Mutex<()>,
    /// Serialises reconciliation runs (periodic and on demand).
    pub sync_lock: tokio::sync::Mutex<()>,
    /// Serialises backups and restores ([`crate::backup`]).
    pub backup_lock: tokio::sync::Mutex<()>,
    /// Paces the admin endpoints that start work upstream ([`crate::limits`]).
    pub admin_bucket: crate::limits::TokenBucket,
    pub started: Instant,
    /// SHA-256 of the HTTPS certificate (`/healthz` shows it), set once at start;
    /// `Some(None)` = plain HTTP.
    pub tls_fingerprint: std::sync::OnceLock<Option<String>>,
}

impl AppState {
    pub fn new(
        cfg: Config,
        writer: LedgerWriter,
        journal: Journal,
        reader: Ledger,
        terms: Option<CommercialTerms>,
        keys: KeyHistory,
    ) -> anyhow::Result<Arc<AppState>> {
        let upstream = Upstream::new(
            cfg.upstream_streams_per_connection,
            cfg.upstream_ca_pem.as_deref(),
            cfg.limits.upstream_idle,
        )?;
        let mut api_http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15));
        for c in upstream.extra_roots() {
            api_http = api_http.add_root_certificate(c.clone());
        }
        let api_http = api_http.build()?;
        let key = cfg.openrouter_api_key.clone();
        let admin_bucket = crate::limits::TokenBucket::new(
            cfg.limits.admin_burst,
            cfg.limits.admin_per_minute,
            Instant::now(),
        );
        let identity = IdentityReader::new(
            cfg.openwebui_headers.clone(),
            cfg.openwebui_jwt_secret.as_ref().map(|s| s.expose()),
        );
        Ok(Arc::new(AppState {
            key_status: Mutex::new(KeyStatus {
                label: key.label(),
                hash: key.hash(),
                name: keys.current().and_then(|k| k.name.clone()),
                state: KeyState::Unknown,
                limit: None,
                limit_remaining: None,
                usage_daily: None,
                usage_monthly: None,
                checked_at: None,
                error: None,
            }),
            key: RwLock::new(key),
            sync: Mutex::new(SyncState {
                interval_seconds: cfg.sync_interval.map_or(0, |i| i.as_secs()),
                days_back: cfg.sync_days_back,
                running: false,
                last_run: None,
                last_success: None,
                last_error: None,
                next_run: None,
                provisional_pending: None,
                drift: None,
            }),
            keys: Mutex::new(keys),
            terms: RwLock::new(terms),
            terms_push: tokio::sync::Mutex::new(()),
            tls_fingerprint: std::sync::OnceLock::new(),
            cfg,
            upstream,
            api_http,
            writer,
            journal,
            reader: Mutex::new(reader),
            metrics: Metrics::default(),
            identity,
            sync_lock: tokio::sync::Mutex::new(()),
            backup_lock: tokio::sync::Mutex::new(()),
            handover_lock: tokio::sync::Mutex::new(()),
            refused: std::sync::atomic::AtomicBool::new(false),
            admin_bucket,
            started: Instant::now(),
        }))
    }

    pub fn key(&self) -> SecretKey {
        self.key.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Swaps the key for new requests (in-flight ones finish on the old one). The
    /// caller has stored the key and the key history first. `checked` is the new key's
    /// `GET /key` answer read by the hand-over: the status then shows the new key as
    /// checked, which is what the console waits for before it disables the old key.
    pub fn set_key(&self, k: SecretKey, name: Option<String>, checked: Option<&KeyInfo>) {
        let (label, hash) = (k.label(), k.hash());
        *self.key.write().unwrap_or_else(|p| p.into_inner()) = k;
        let mut s = self.key_status.lock().unwrap_or_else(|p| p.into_inner());
        s.label = label;
        s.hash = hash;
        s.name = name;
        s.error = None;
        match checked {
            Some(i) => {
                s.state = if i
                    .limit_remaining
                    .is_some_and(|r| r <= rust_decimal::Decimal::ZERO)
                {
                    KeyState::LimitReached
                } else {
                    KeyState::Ok
                };
                s.limit = i.limit;
                s.limit_remaining = i.limit_remaining;
                s.usage_daily = i.usage_daily;
                s.usage_monthly = i.usage_monthly;
                s.checked_at = Some(chrono::Utc::now());
            }
            None => {
                s.state = KeyState::Unknown;
                s.checked_at = None;
            }
        }
    }

    /// The proxy saw OpenRouter refuse to spend: the status says which limit at once
    /// (`limit_reached` = the key's cap, `account_out_of_credits` = the account's
    /// credits), with the advice, until a success or the next `/key` check says otherwise.
    pub fn note_refusal(&self, r: &Refusal, message: &str) {
        let state = match r {
            Refusal::KeyLimitExceeded { .. } => KeyState::LimitReached,
            Refusal::AccountOutOfCredits => KeyState::AccountOutOfCredits,
        };
        {
            let mut s = self.key_status.lock().unwrap_or_else(|p| p.into_inner());
            if s.state != state {
                tracing::warn!(state = %state, advice = r.advice(), "OpenRouter refused to spend");
            }
            s.state = state;
            s.error = Some(message.to_owned());
            s.checked_at = Some(chrono::Utc::now());
        }
        self.refused
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A metered request succeeded: a refusal the proxy noted is over (the cap was raised
    /// or the account topped up). One atomic load on the hot path; the lock only after a
    /// refusal.
    pub fn note_spending_works(&self) {
        use std::sync::atomic::Ordering;
        if !self.refused.load(Ordering::Relaxed) || !self.refused.swap(false, Ordering::Relaxed) {
            return;
        }
        let mut s = self.key_status.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(
            s.state,
            KeyState::LimitReached | KeyState::AccountOutOfCredits
        ) {
            s.state = KeyState::Ok;
            s.error = None;
            s.checked_at = Some(chrono::Utc::now());
        }
    }

    pub fn key_history(&self) -> KeyHistory {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the key history under its lock and stores it through the writer when
    /// `f` says it changed. Errors are the writer's; the copy in memory is kept either
    /// way (it is what the running tracker uses) and stored again at the next change.
    pub async fn update_keys(
        &self,
        f: impl FnOnce(&mut KeyHistory) -> bool,
    ) -> Result<(), crate::writer::WriterError> {
        let stored = {
            let mut h = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if !f(&mut h) {
                return Ok(());
            }
            h.to_stored()
        };
        self.writer
            .set_meta(crate::key_history::META_KEY, stored)
            .await
    }

    /// The key names the Broadcast webhook accepts spans of (see [`KeyHistory::names`]).
    pub fn webhook_key_names(&self) -> Vec<String> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).names()
    }

    /// The pushed commercial terms, `None` before the first push.
    pub fn terms(&self) -> Option<CommercialTerms> {
        self.terms.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The markup schedule every price of this tracker uses: the pushed one, else the
    /// product default (1.3 flat).
    pub fn schedule(&self) -> MarkupSchedule {
        crate::terms::schedule_of(
            self.terms
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref(),
        )
    }

    /// Replaces the terms in memory; the caller has stored them in the ledger first.
    pub fn set_terms(&self, t: CommercialTerms) {
        *self.terms.write().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    /// Client of the accounting endpoints with the current inference key.
    pub fn openrouter(&self) -> OpenRouterClient {
        OpenRouterClient::with_http(
            self.api_http.clone(),
            &self.cfg.openrouter_base_url,
            self.key(),
        )
        .expect("base URL validated at start-up")
    }

    /// Client with the management key, when one is configured.
    pub fn management(&self) -> Option<OpenRouterClient> {
        let k = self.cfg.provisioning_key.clone()?;
        OpenRouterClient::with_http(self.api_http.clone(), &self.cfg.openrouter_base_url, k).ok()
    }

    /// Runs a read on the reader connection off the async threads.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Ledger) -> Result<T, mai_core::ledger::LedgerError> + Send + 'static,
    ) -> Result<T, mai_core::ledger::LedgerError> {
        let st = self.clone();
        tokio::task::spawn_blocking(move || {
            let l = st.reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&l)
        })
        .await
        .expect("ledger read task panicked")
    }
}
