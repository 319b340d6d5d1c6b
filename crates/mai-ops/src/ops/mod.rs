//! The operator facade both front ends call. `Ops` is the small shared context (fleet,
//! keychain, console cache, one HTTP pool); each domain adds its methods in its own
//! module, with the decisions kept in plain functions so they are tested without I/O:
//!
//! - [`sync`] — reconciliation on the trackers and pulls into the cache;
//! - [`keys`] — secrets in the keychain and key rotation;
//! - [`dashboard`] — one client's usage from the cache, with the PLN display rate;
//! - [`billing`] — mai-billing's report, invoice export and NBP invoice rate, with their
//!   files found through the fleet file;
//! - [`fleet`] — the fleet table and container actions;
//! - [`privacy`] — one person's erasure and export (GDPR), audited;
//! - [`ksef`] — the KSeF token (keychain, audited) and the month's invoices in KSeF.
//! - [`lifecycle`] — onboarding and offboarding a client on a Docker host, audited.
//! - [`alerts`] — every refresh evaluated into alerts (kept in the cache), ack, mute, webhook.
//! - [`backup`] — ledger backups, their restore onto a new tracker, rebuilds without one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

use crate::cache::{Cache, CacheError};
use crate::docker::DockerError;
use crate::fleet::{Client, Fleet, SecretRef};
use crate::keys::{KeyError, Keychain, SecretKind};
use crate::refresh::TrackerSnapshot;
use crate::tracker::{TrackerClient, TrackerError};

pub mod alerts;
pub mod backup;
pub mod billing;
pub mod change;
pub mod dashboard;
pub mod fleet;
pub mod keys;
pub mod ksef;
pub mod lifecycle;
mod memo;
pub mod overview;
pub mod privacy;
pub mod sync;
pub mod update;
pub mod usage_export;

pub use billing::{
    default_invoice_dir, BillingFiles, BillingOverrides, ClientExport, InvoiceExportRequest,
    InvoiceExportResult,
};
pub use dashboard::{Breakdown, Dashboard, DayPoint, PlnRate};
pub use keys::Rotation;
pub use ksef::KsefConnection;
pub use sync::{SyncOutcome, SyncProgress};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("unknown client {0:?}; it is not in the fleet file (ids are case-sensitive)")]
    UnknownClient(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    UsageExport(#[from] usage_export::UsageExportError),
    #[error("cannot read the tracker token of {client}: {message}")]
    Token { client: String, message: String },
    #[error("OpenRouter {step} failed for {client}: {message}")]
    OpenRouter {
        client: String,
        step: &'static str,
        message: String,
    },
    #[error("the OS keychain is not available, so {0} cannot be done; start a Secret Service (gnome-keyring) and retry")]
    NoKeychain(String),
    #[error(
        "billing is not configured in the fleet file {}: add a [billing] section with \
         `config = \"billing.toml\"` (the seller and invoice numbering; see fleet.example.toml)",
        .0.display()
    )]
    NoBilling(std::path::PathBuf),
    #[error("month {0:?} is not a month; use YYYY-MM")]
    BadMonth(String),
    #[error(transparent)]
    Billing(#[from] mai_billing::BillingError),
    /// A key rotation stopped before the old key was disabled: the client keeps working
    /// on the key it has; the message says what happened to each key and what to do.
    #[error("key rotation for {client} stopped: {message}")]
    Rotation { client: String, message: String },
    /// A privacy request that cannot be carried out as asked (no id or e-mail given,
    /// or only part of it was done); the message says what to do.
    #[error("{0}")]
    Privacy(String),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(
        "KSeF is not configured in the fleet file {}: add a [ksef] section with \
         environment = \"test\", \"demo\" or \"prd\" (see fleet.example.toml)",
        .0.display()
    )]
    NoKsef(std::path::PathBuf),
    /// A KSeF setting or argument that cannot be used; the message names it and the fix.
    #[error("{0}")]
    Ksef(String),
    /// What KSeF (or the way to it) answered: the message names the step, KSeF's codes
    /// and what to do.
    #[error(transparent)]
    KsefClient(#[from] mai_ksef::KsefError),
    /// Onboarding or offboarding a client (ops::lifecycle); boxed, its messages are long.
    #[error(transparent)]
    Lifecycle(Box<lifecycle::LifecycleError>),
    /// A client change with wrong fields; nothing was changed.
    #[error("client {client}: nothing was changed: {}", .errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidChange {
        client: String,
        errors: Vec<mai_wire::change::FieldError>,
    },
    #[error("client {0}: nothing to change: give a new markup (with its first day), monthly limit or invoice field that differs from the current one")]
    NothingToChange(String),
    /// A client change that stopped; the message says what was and was not changed.
    #[error("client {client}: {message}")]
    Change { client: String, message: String },
    /// An in-place edit of the fleet file that could not be made; nothing was written.
    #[error(transparent)]
    FleetEdit(#[from] crate::fleet_edit::FleetEditError),
    /// A backup, restore or rebuild that could not be done; the message says what and
    /// what to do.
    #[error("backup: {0}")]
    Backup(String),
    /// A fleet update that cannot start as asked; nothing was changed.
    #[error("fleet update: {0}")]
    Update(String),
    /// An alert action that cannot be done as asked (unknown id, bad period).
    #[error("alerts: {0}")]
    Alert(String),
}

impl From<lifecycle::LifecycleError> for OpsError {
    fn from(e: lifecycle::LifecycleError) -> Self {
        OpsError::Lifecycle(Box::new(e))
    }
}

pub struct Ops {
    pub fleet: Fleet,
    keychain: Option<Keychain>,
    keychain_error: Option<String>,
    pub cache: Cache,
    http: reqwest::Client,
    /// HTTP clients pinned to one tracker's certificate, by client id.
    pinned: std::sync::Mutex<HashMap<String, reqwest::Client>>,
    last_good: RwLock<HashMap<String, TrackerSnapshot>>,
    /// Docker is skipped when false (machines without an engine).
    pub docker_enabled: bool,
    nbp: Option<mai_core::nbp::NbpClient>,
    /// Files billing uses instead of the fleet file's (maictl's flags); empty in the console.
    pub billing_overrides: BillingOverrides,
    /// A fixed Warsaw day instead of the clock's: which month is "this month" for the
    /// fleet row, the dashboard and billing (tests, re-running a past close).
    pub today: Option<chrono::NaiveDate>,
    /// Told about raised and cleared alerts (the console's notifications); kept by
    /// [`Ops::reloaded`]. Set with [`Ops::set_alert_sink`].
    alert_sink: std::sync::RwLock<Option<alerts::AlertSink>>,
    /// One alert evaluation at a time (read, evaluate, write the cache's state).
    alert_lock: tokio::sync::Mutex<()>,
    /// The last display rate asked of NBP and when ([`Ops::pln_rate`]).
    pln_memo: memo::Memo<PlnRate>,
    /// The OpenRouter account's last credits and when ([`Ops::credits`]).
    credits_memo: memo::Memo<mai_wire::overview::AccountCredits>,
    /// Webhook deliveries in flight ([`Ops::flush_alert_webhooks`]).
    webhook_tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("clients", &self.fleet.clients.len())
            .finish_non_exhaustive()
    }
}

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(4)
        .user_agent(concat!("mai-console/", env!("CARGO_PKG_VERSION")))
}

fn http_client() -> reqwest::Client {
    http_builder()
        .build()
        .expect("static reqwest configuration")
}

impl Ops {
    /// Opens the cache under the fleet's data dir. A missing keychain is not fatal here
    /// (status still works with env/file tokens); key actions then fail clearly.
    pub fn new(fleet: Fleet, keychain: Result<Keychain, KeyError>) -> Result<Ops, OpsError> {
        let cache = Cache::open(&fleet.console.data_dir.join("console-cache.sqlite"))?;
        Ok(Self::with_cache(fleet, keychain, cache))
    }

    pub fn with_cache(fleet: Fleet, keychain: Result<Keychain, KeyError>, cache: Cache) -> Ops {
        let (keychain, keychain_error) = match keychain {
            Ok(k) => (Some(k), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let nbp = mai_core::nbp::NbpClient::new(mai_core::nbp::NbpConfig {
            base_url: fleet.nbp_base_url.clone(),
            cache_path: Some(fleet.console.data_dir.join("nbp-cache.sqlite")),
            timeout: Duration::from_secs(5),
            max_attempts: 2,
            ..Default::default()
        })
        .ok();
        Ops {
            fleet,
            keychain,
            keychain_error,
            cache,
            http: http_client(),
            pinned: Default::default(),
            last_good: RwLock::new(HashMap::new()),
            docker_enabled: true,
            nbp,
            billing_overrides: BillingOverrides::default(),
            today: None,
            alert_sink: Default::default(),
            alert_lock: Default::default(),
            pln_memo: Default::default(),
            credits_memo: Default::default(),
            webhook_tasks: Default::default(),
        }
    }

    /// Today in Warsaw, or the fixed day (see [`Ops::today`]).
    pub fn today(&self) -> chrono::NaiveDate {
        self.today.unwrap_or_else(mai_core::time::warsaw_today)
    }

    pub fn client(&self, id: &str) -> Result<&Client, OpsError> {
        self.fleet
            .client(id)
            .ok_or_else(|| OpsError::UnknownClient(id.to_string()))
    }

    fn keychain(&self, what: &str) -> Result<&Keychain, OpsError> {
        self.keychain.as_ref().ok_or_else(|| {
            OpsError::NoKeychain(format!(
                "{what} ({})",
                self.keychain_error.clone().unwrap_or_default()
            ))
        })
    }

    pub fn keychain_error(&self) -> Option<&str> {
        self.keychain_error.as_deref()
    }

    /// Reads one of a client's tracker tokens; `kind` names the keychain entry.
    async fn secret(
        &self,
        c: &Client,
        r: &SecretRef,
        kind: SecretKind,
    ) -> Result<String, OpsError> {
        let err = |message: String| OpsError::Token {
            client: c.id.clone(),
            message,
        };
        match r {
            SecretRef::Env(v) => {
                std::env::var(v).map_err(|_| err(format!("environment variable {v} is not set")))
            }
            SecretRef::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| err(format!("cannot read {}: {e}", p.display()))),
            SecretRef::Keychain => {
                let k = self.keychain("reading the tracker token")?.clone();
                let id = c.id.clone();
                tokio::task::spawn_blocking(move || k.get(kind, &id))
                    .await
                    .map_err(|e| err(e.to_string()))?
                    .map_err(OpsError::from)
            }
        }
    }

    /// The client of one tracker: routine reads carry the read token; the admin token
    /// is read too but sent only by the admin calls (sync, key hand-over, terms). A
    /// missing admin token does not stop reads: admin calls then fail naming why.
    pub async fn tracker(&self, id: &str) -> Result<TrackerClient, OpsError> {
        let c = self.client(id)?;
        let admin = self
            .secret(c, &c.tracker_admin_token, SecretKind::TrackerToken)
            .await;
        let read = match &c.tracker_read_token {
            Some(r) => self.secret(c, r, SecretKind::TrackerReadToken).await?,
            // Fleet files from before the read token: poll with the admin token (the
            // fleet file's warning says to add one).
            None => match &admin {
                Ok(t) => t.clone(),
                Err(_) => {
                    self.secret(c, &c.tracker_admin_token, SecretKind::TrackerToken)
                        .await?
                }
            },
        };
        let http = match self.http_for(c) {
            Ok(h) => h,
            Err(e) => return Err(OpsError::Tracker(e)),
        };
        Ok(TrackerClient::new(
            http,
            c.tracker_url.clone(),
            read,
            Duration::from_millis(c.tracker_timeout_ms),
        )
        .with_admin_token(admin.map_err(|e| e.to_string())))
    }

    /// The HTTP client of a tracker: the shared pool, or one pinned to the tracker's
    /// certificate (`tracker_cert_sha256`), built once per client and kept.
    fn http_for(&self, c: &Client) -> Result<reqwest::Client, TrackerError> {
        let Some(pin) = c.tracker_cert_sha256 else {
            return Ok(self.http.clone());
        };
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = pinned.get(&c.id) {
            return Ok(h.clone());
        }
        let h = crate::tracker::pinned_http_client(pin, http_builder()).map_err(|message| {
            TrackerError::Unreachable {
                url: c.tracker_url.to_string(),
                message,
            }
        })?;
        pinned.insert(c.id.clone(), h.clone());
        Ok(h)
    }

    /// The console cache's ledger file, which billing reads as its usage ledger.
    pub fn cache_path(&self) -> std::path::PathBuf {
        self.fleet.console.data_dir.join("console-cache.sqlite")
    }
}

/// Shared handle for the Tauri state and maictl.
pub type SharedOps = Arc<Ops>;

/// Keychain calls block on D-Bus, so they run off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, OpsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OpsError::NoKeychain(e.to_string()))?
        .map_err(OpsError::from)
}
