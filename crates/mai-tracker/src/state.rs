//! Shared state of the running tracker.

use crate::config::Config;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use crate::writer::LedgerWriter;
use chrono::{DateTime, Utc};
use mai_core::ledger::Ledger;
use mai_core::openrouter::{OpenRouterClient, SecretKey};
use rust_decimal::Decimal;
use serde::Serialize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// What the last `/key` check said.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub label: String,
    /// ok | limit_reached | invalid | unknown | error
    pub state: &'static str,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub limit: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub limit_remaining: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub usage_daily: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub usage_monthly: Option<Decimal>,
    pub checked_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// OpenRouter `/key` usage minus the ledger, current UTC day / month.
    #[serde(with = "rust_decimal::serde::str")]
    pub day_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub month_usd: Decimal,
    pub checked_at: DateTime<Utc>,
    /// Per UTC day × model differences against `/activity` (management key only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<ActivityDrift>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActivityDrift {
    pub date: chrono::NaiveDate,
    pub model: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub openrouter_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub ledger_usd: Decimal,
    pub openrouter_requests: u64,
    pub ledger_requests: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub running: bool,
    pub last_run: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub drift: Option<Drift>,
}

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
    pub key_status: Mutex<KeyStatus>,
    pub sync: Mutex<SyncStatus>,
    /// Serialises reconciliation runs (periodic and on demand).
    pub sync_lock: tokio::sync::Mutex<()>,
    pub started: Instant,
}

impl AppState {
    pub fn new(
        cfg: Config,
        writer: LedgerWriter,
        journal: Journal,
        reader: Ledger,
    ) -> anyhow::Result<Arc<AppState>> {
        let upstream = Upstream::new(
            cfg.upstream_streams_per_connection,
            cfg.upstream_ca_pem.as_deref(),
        )?;
        let mut api_http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15));
        for c in upstream.extra_roots() {
            api_http = api_http.add_root_certificate(c.clone());
        }
        let api_http = api_http.build()?;
        let key = cfg.openrouter_api_key.clone();
        Ok(Arc::new(AppState {
            key_status: Mutex::new(KeyStatus {
                label: key.label(),
                state: "unknown",
                limit: None,
                limit_remaining: None,
                usage_daily: None,
                usage_monthly: None,
                checked_at: None,
                error: None,
            }),
            key: RwLock::new(key),
            cfg,
            upstream,
            api_http,
            writer,
            journal,
            reader: Mutex::new(reader),
            metrics: Metrics::default(),
            sync: Mutex::new(SyncStatus::default()),
            sync_lock: tokio::sync::Mutex::new(()),
            started: Instant::now(),
        }))
    }

    pub fn key(&self) -> SecretKey {
        self.key.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_key(&self, k: SecretKey) {
        let label = k.label();
        *self.key.write().unwrap_or_else(|p| p.into_inner()) = k;
        let mut s = self.key_status.lock().unwrap_or_else(|p| p.into_inner());
        s.label = label;
        s.state = "unknown";
        s.checked_at = None;
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
