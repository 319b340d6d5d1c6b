//! The operator facade both front ends call: `Ops` owns the fleet, the keychain, the
//! console cache and one HTTP pool, and exposes every operator action.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{Stream, StreamExt};
use mai_core::openrouter::{CreateKeyRequest, OpenRouterClient, SecretKey, UpdateKeyRequest};
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::RwLock;

use crate::cache::{Cache, CacheError, PullResult};
use crate::docker::{self, ContainerInfo, DockerError};
use crate::fleet::{Client, Fleet, SecretRef};
use crate::keys::{mask, KeyError, Keychain, MaskedKey, SecretKind};
use crate::refresh::{self, FleetRow, TrackerSnapshot};
use crate::tracker::{TrackerClient, TrackerError};

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
    #[error("billing is not configured: add a [billing] section with `config = \"billing.toml\"` to the fleet file")]
    NoBilling,
    #[error("month {0:?} is not a month; use YYYY-MM")]
    BadMonth(String),
    #[error(transparent)]
    Billing(#[from] mai_billing::BillingError),
}

/// Per-client result of a sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    pub client_id: String,
    pub ok: bool,
    /// `ok` | `partial` | `error` as the tracker reported, or `unreachable`.
    pub status: String,
    pub checked: Option<u64>,
    pub confirmed: Option<u64>,
    pub corrected: Option<u64>,
    pub pulled: Option<usize>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncProgress {
    pub done: usize,
    pub total: usize,
    pub outcome: SyncOutcome,
}

/// Record of a rotation, kept in the cache (no secret in it).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Rotation {
    pub client_id: String,
    pub at: DateTime<Utc>,
    pub new_label: String,
    pub new_hash: String,
    pub old_label: Option<String>,
    pub old_hash: Option<String>,
    pub old_disabled: bool,
    pub warning: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayPoint {
    pub date: NaiveDate,
    pub requests: u64,
    pub tokens: u64,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub key: String,
    pub label: String,
    pub requests: u64,
    pub tokens: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlnRate {
    pub available: bool,
    pub rate: Option<Decimal>,
    pub table_no: Option<String>,
    pub effective_date: Option<NaiveDate>,
    pub stale: bool,
    pub error: Option<String>,
}

/// Everything the client dashboard shows, read from the console cache after a pull.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub client_id: String,
    pub legal_name: String,
    pub markup: Decimal,
    /// The pull from the tracker succeeded just now (numbers are live).
    pub live: bool,
    pub pull_error: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub today: DayPoint,
    pub month_requests: u64,
    pub month_tokens: u64,
    pub month_raw_cost_usd: Decimal,
    pub month_client_cost_usd: Decimal,
    pub daily_average_client_cost_usd: Decimal,
    pub monthly_limit_usd: Option<Decimal>,
    pub days: Vec<DayPoint>,
    pub by_user: Vec<Breakdown>,
    pub by_model: Vec<Breakdown>,
    pub pln: PlnRate,
}

pub struct Ops {
    pub fleet: Fleet,
    keychain: Option<Keychain>,
    keychain_error: Option<String>,
    pub cache: Cache,
    http: reqwest::Client,
    last_good: RwLock<HashMap<String, TrackerSnapshot>>,
    /// Docker is skipped when false (machines without an engine).
    pub docker_enabled: bool,
    nbp: Option<mai_core::nbp::NbpClient>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("clients", &self.fleet.clients.len())
            .finish_non_exhaustive()
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(4)
        .user_agent(concat!("mai-console/", env!("CARGO_PKG_VERSION")))
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
            last_good: RwLock::new(HashMap::new()),
            docker_enabled: true,
            nbp,
        }
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

    async fn token(&self, c: &Client) -> Result<String, OpsError> {
        let err = |message: String| OpsError::Token {
            client: c.id.clone(),
            message,
        };
        match &c.tracker_token {
            SecretRef::Env(v) => {
                std::env::var(v).map_err(|_| err(format!("environment variable {v} is not set")))
            }
            SecretRef::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| err(format!("cannot read {}: {e}", p.display()))),
            SecretRef::Keychain => {
                let k = self.keychain("reading the tracker token")?.clone();
                let id = c.id.clone();
                tokio::task::spawn_blocking(move || k.get(SecretKind::TrackerToken, &id))
                    .await
                    .map_err(|e| err(e.to_string()))?
                    .map_err(OpsError::from)
            }
        }
    }

    pub async fn tracker(&self, id: &str) -> Result<TrackerClient, OpsError> {
        let c = self.client(id)?;
        let token = self.token(c).await?;
        Ok(TrackerClient::new(
            self.http.clone(),
            c.tracker_url.clone(),
            token,
            Duration::from_millis(c.tracker_timeout_ms),
        ))
    }

    /// The fleet table. Remembers every good tracker answer (in memory and in the cache)
    /// so the next refresh can show the age of the last good data.
    pub async fn refresh(&self) -> Vec<FleetRow> {
        let mut trackers = HashMap::new();
        for c in &self.fleet.clients {
            trackers.insert(
                c.id.clone(),
                self.tracker(&c.id).await.map_err(|e| e.to_string()),
            );
        }
        {
            let mut lg = self.last_good.write().await;
            for c in &self.fleet.clients {
                if !lg.contains_key(&c.id) {
                    if let Ok(Some(j)) = self.cache.get_meta(&format!("last_good:{}", c.id)).await {
                        if let Ok(s) = serde_json::from_str::<TrackerSnapshot>(&j) {
                            lg.insert(c.id.clone(), s);
                        }
                    }
                }
            }
        }
        let last_good = self.last_good.read().await.clone();
        let (rows, fresh) = refresh::refresh_all(refresh::RefreshInput {
            fleet: &self.fleet,
            trackers: &trackers,
            last_good: &last_good,
            docker: self.docker_enabled,
        })
        .await;
        // Persist last-good snapshots so a console restarted while a host is down still
        // shows that host's last numbers with their age.
        let mut lg = self.last_good.write().await;
        for (id, snap) in fresh {
            if let Ok(j) = serde_json::to_string(&snap) {
                let _ = self.cache.set_meta(&format!("last_good:{id}"), &j).await;
            }
            lg.insert(id, snap);
        }
        rows
    }

    /// Pulls new events of one client into the console cache.
    ///
    /// The event API has no ledger identity, so a tracker whose ledger was replaced (new
    /// container, restored backup) restarts its sequence below our cursor and an
    /// incremental pull would silently skip events. Guard: take the tracker's today totals
    /// *before* pulling; if the cache still has fewer requests or less cost for today
    /// afterwards, pull again from the start (upserts by generation id keep it idempotent).
    pub async fn pull(&self, id: &str) -> Result<PullResult, OpsError> {
        let c = self.client(id)?;
        let t = self.tracker(id).await?;
        let today = mai_core::time::warsaw_today();
        self.cache.ensure_markup(&c.id, c.markup, today).await?;
        let before = t.today().await.ok().filter(|r| r.date == today);
        let first = self.cache.pull(&c.id, &t).await?;
        let Some(remote) = before else {
            return Ok(first);
        };
        let org = c.id.clone();
        let local = self.cache.with(move |l| l.day(&org, today)).await?;
        if remote.requests > local.requests || remote.raw_cost_usd > local.cost_usd {
            tracing::warn!(client = %c.id, remote_requests = remote.requests, local_requests = local.requests,
                "the cache misses events the tracker has (ledger replaced?); pulling from the start");
            self.cache
                .set_meta(&format!("cursor:{}", c.id), "0")
                .await?;
            return Ok(self.cache.pull(&c.id, &t).await?);
        }
        Ok(first)
    }

    /// Reconciliation on the tracker, then a pull into the cache.
    pub async fn sync_one(&self, id: &str) -> SyncOutcome {
        let mut out = SyncOutcome {
            client_id: id.to_string(),
            ok: false,
            status: "error".into(),
            checked: None,
            confirmed: None,
            corrected: None,
            pulled: None,
            error: None,
        };
        let t = match self.tracker(id).await {
            Ok(t) => t,
            Err(e) => {
                out.error = Some(e.to_string());
                return out;
            }
        };
        match t.sync(1, Duration::from_secs(120)).await {
            Ok(r) => {
                out.ok = r.status != "error";
                out.status = r.status;
                out.checked = r.checked;
                out.confirmed = r.confirmed;
                out.corrected = r.corrected;
                if !r.errors.is_empty() {
                    out.error = Some(format!("{} lookups failed", r.errors.len()));
                }
            }
            Err(e) => {
                out.status = if e.is_unreachable() {
                    "unreachable".into()
                } else {
                    "error".into()
                };
                out.error = Some(e.to_string());
                return out;
            }
        }
        match self.pull(id).await {
            Ok(p) => out.pulled = Some(p.pulled),
            Err(e) => {
                out.ok = false;
                out.error = Some(format!(
                    "sync ran but the pull into the console cache failed: {e}"
                ));
            }
        }
        out
    }

    /// Syncs many clients concurrently; `progress` is called after each one finishes.
    pub async fn sync_many(
        &self,
        ids: &[String],
        mut progress: impl FnMut(SyncProgress),
    ) -> Vec<SyncOutcome> {
        let total = ids.len();
        let mut s = futures::stream::iter(
            ids.iter()
                .cloned()
                .map(|id| async move { self.sync_one(&id).await }),
        )
        .buffer_unordered(self.fleet.console.concurrency.clamp(1, 8));
        let mut all = Vec::new();
        while let Some(o) = s.next().await {
            all.push(o.clone());
            progress(SyncProgress {
                done: all.len(),
                total,
                outcome: o,
            });
        }
        all.sort_by_key(|o| ids.iter().position(|i| *i == o.client_id));
        all
    }

    pub async fn restart(&self, id: &str, role: &str) -> Result<ContainerInfo, OpsError> {
        let c = self.client(id)?;
        let host = self.fleet.host(&c.host).expect("validated at parse");
        let d = docker::connect(host).await?;
        Ok(docker::restart(&d, &host.name, &c.id, role, 10).await?)
    }

    pub async fn logs(
        &self,
        id: &str,
        role: &str,
        tail: u32,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<String, DockerError>> + use<>, OpsError> {
        let c = self.client(id)?;
        let host = self.fleet.host(&c.host).expect("validated at parse");
        let d = docker::connect(host).await?;
        Ok(docker::logs(&d, &host.name, &c.id, role, tail, follow).await?)
    }

    pub async fn keys_list(&self) -> Result<Vec<MaskedKey>, OpsError> {
        let k = self.keychain("listing keys")?.clone();
        let ids: Vec<String> = self.fleet.clients.iter().map(|c| c.id.clone()).collect();
        Ok(tokio::task::spawn_blocking(move || k.list_masked(&ids))
            .await
            .map_err(|e| OpsError::NoKeychain(e.to_string()))??)
    }

    /// Stores a secret; returns its masked form.
    pub async fn key_set(
        &self,
        id: &str,
        kind: SecretKind,
        secret: String,
    ) -> Result<String, OpsError> {
        self.client(id)?;
        let k = self.keychain("storing a key")?.clone();
        let id2 = id.to_string();
        let masked = mask(&secret);
        tokio::task::spawn_blocking(move || k.set(kind, &id2, &secret))
            .await
            .map_err(|e| OpsError::NoKeychain(e.to_string()))??;
        Ok(masked)
    }

    pub async fn key_delete(&self, id: &str, kind: SecretKind) -> Result<(), OpsError> {
        self.client(id)?;
        let k = self.keychain("deleting a key")?.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || k.delete(kind, &id))
            .await
            .map_err(|e| OpsError::NoKeychain(e.to_string()))??;
        Ok(())
    }

    pub async fn set_management_key(&self, key: String) -> Result<String, OpsError> {
        let k = self.keychain("storing the management key")?.clone();
        let masked = mask(&key);
        tokio::task::spawn_blocking(move || k.set_management_key(&key))
            .await
            .map_err(|e| OpsError::NoKeychain(e.to_string()))??;
        Ok(masked)
    }

    /// Rotation: create a new key with the client's limit, hand it to the tracker (which
    /// swaps it for new requests while in-flight ones finish on the old key), store it in
    /// the keychain, disable the old key, and record the rotation.
    pub async fn rotate(&self, id: &str) -> Result<Rotation, OpsError> {
        let c = self.client(id)?.clone();
        let kc = self.keychain("rotating a key")?.clone();
        let kc2 = kc.clone();
        let mgmt = tokio::task::spawn_blocking(move || kc2.management_key())
            .await
            .map_err(|e| OpsError::NoKeychain(e.to_string()))??;
        let orc = |step: &'static str| {
            let id = c.id.clone();
            move |e: mai_core::openrouter::OpenRouterError| OpsError::OpenRouter {
                client: id.clone(),
                step,
                message: e.to_string(),
            }
        };
        let or = OpenRouterClient::with_http(
            self.http.clone(),
            self.fleet.openrouter.base_url.as_str(),
            SecretKey::new(mgmt),
        )
        .map_err(orc("client setup"))?;
        let kc3 = kc.clone();
        let cid = c.id.clone();
        let old_key = tokio::task::spawn_blocking(move || kc3.get(SecretKind::OpenRouter, &cid))
            .await
            .map_err(|e| OpsError::NoKeychain(e.to_string()))?
            .ok();
        let old_label = old_key.as_deref().map(mask);
        // Find the old key's hash by its label (the API never returns plaintext).
        let mut warning = None;
        let old_hash = match &old_key {
            Some(k) => match or.keys_list_all(false).await {
                Ok(list) => {
                    let head: String = k.chars().take(12).collect();
                    let tail: String = k
                        .chars()
                        .rev()
                        .take(3)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    let matches: Vec<_> = list
                        .iter()
                        .filter(|a| {
                            a.label.as_deref().is_some_and(|l| {
                                let lh: String = l.chars().take(12).collect();
                                lh == head && l.ends_with(&tail)
                            })
                        })
                        .collect();
                    match matches.as_slice() {
                        [one] => Some(one.hash.clone()),
                        [] => {
                            warning = Some("the old key was not found among the account's keys; disable it by hand on openrouter.ai".to_string());
                            None
                        }
                        _ => {
                            warning = Some("several keys match the old key's label; disable the old one by hand on openrouter.ai".to_string());
                            None
                        }
                    }
                }
                Err(e) => {
                    warning = Some(format!(
                        "could not list keys to find the old one ({e}); disable it by hand"
                    ));
                    None
                }
            },
            None => None,
        };
        let created = or
            .keys_create(&CreateKeyRequest {
                name: format!("mai-{}-{}", c.id, Utc::now().format("%Y%m%d%H%M%S")),
                limit: c
                    .monthly_limit_usd
                    .map(|l| l / c.markup)
                    .map(|l| l.round_dp(2)),
                limit_reset: c.monthly_limit_usd.map(|_| "monthly".to_string()),
                ..Default::default()
            })
            .await
            .map_err(orc("create key"))?;
        let new_key = created.key.expose().to_string();
        let t = self.tracker(&c.id).await?;
        if let Err(e) = t.put_openrouter_key(&new_key).await {
            // The tracker still uses the old key: undo by disabling the new one.
            let _ = or
                .keys_update(
                    &created.info.hash,
                    &UpdateKeyRequest {
                        disabled: Some(true),
                        ..Default::default()
                    },
                )
                .await;
            return Err(e.into());
        }
        let kc4 = kc.clone();
        let cid = c.id.clone();
        let nk = new_key.clone();
        tokio::task::spawn_blocking(move || kc4.set(SecretKind::OpenRouter, &cid, &nk))
            .await
            .map_err(|e| OpsError::NoKeychain(e.to_string()))??;
        let mut old_disabled = false;
        if let Some(h) = &old_hash {
            match or.keys_update(h, &UpdateKeyRequest { disabled: Some(true), ..Default::default() }).await {
                Ok(_) => old_disabled = true,
                Err(e) => warning = Some(format!("the new key is live but disabling the old one failed ({e}); disable it by hand")),
            }
        }
        let rot = Rotation {
            client_id: c.id.clone(),
            at: Utc::now(),
            new_label: mask(&new_key),
            new_hash: created.info.hash.clone(),
            old_label,
            old_hash,
            old_disabled,
            warning,
        };
        let key = format!("rotations:{}", c.id);
        let mut all: Vec<Rotation> = self
            .cache
            .get_meta(&key)
            .await?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        all.push(rot.clone());
        self.cache
            .set_meta(&key, &serde_json::to_string(&all).expect("plain struct"))
            .await?;
        tracing::info!(client = %c.id, new = %rot.new_label, old = ?rot.old_label, "OpenRouter key rotated");
        Ok(rot)
    }

    pub async fn rotations(&self, id: &str) -> Result<Vec<Rotation>, OpsError> {
        Ok(self
            .cache
            .get_meta(&format!("rotations:{id}"))
            .await?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }

    /// USD→PLN display rate (NBP table C ask), or why it is unavailable.
    pub async fn pln_rate(&self) -> PlnRate {
        let none = |e: String| PlnRate {
            available: false,
            rate: None,
            table_no: None,
            effective_date: None,
            stale: false,
            error: Some(e),
        };
        let Some(nbp) = &self.nbp else {
            return none("NBP client not configured".into());
        };
        match tokio::time::timeout(Duration::from_secs(8), nbp.display_rate("USD")).await {
            Ok(Ok(r)) => PlnRate {
                available: true,
                rate: Some(r.ask),
                table_no: Some(r.table_no),
                effective_date: Some(r.effective_date),
                stale: r.stale,
                error: None,
            },
            Ok(Err(e)) => none(e.to_string()),
            Err(_) => none("NBP did not answer within 8 s".into()),
        }
    }

    /// Client dashboard: pull (best effort), then read the cache.
    pub async fn dashboard(&self, id: &str) -> Result<Dashboard, OpsError> {
        let c = self.client(id)?.clone();
        let (pull, pln) = tokio::join!(self.pull(id), self.pln_rate());
        let (live, pull_error) = match pull {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        self.cache
            .ensure_markup(&c.id, c.markup, mai_core::time::warsaw_today())
            .await?;
        let today = mai_core::time::warsaw_today();
        let from = today - chrono::Duration::days(29);
        let ym = mai_core::time::YearMonth::of(today);
        let org = c.id.clone();
        let (daily, users, models, month, schedule) = self
            .cache
            .with(move |l| {
                Ok((
                    l.daily(&org, from, today)?,
                    l.by_user(&org, ym.first_day(), today)?,
                    l.by_model(&org, ym.first_day(), today)?,
                    l.month_summary(&org, ym, today)?,
                    l.markup_schedule(&org)?,
                ))
            })
            .await?;
        let price =
            |d: NaiveDate, raw: Decimal| mai_core::pricing::client_cost(raw, schedule.rate_on(d));
        let days: Vec<DayPoint> = daily
            .iter()
            .map(|(d, t)| DayPoint {
                date: *d,
                requests: t.requests,
                tokens: t.tokens.total(),
                raw_cost_usd: t.cost_usd,
                client_cost_usd: price(*d, t.cost_usd),
            })
            .collect();
        let today_point = days.last().cloned().unwrap_or(DayPoint {
            date: today,
            requests: 0,
            tokens: 0,
            raw_cost_usd: Decimal::ZERO,
            client_cost_usd: Decimal::ZERO,
        });
        let rate = schedule.rate_on(today);
        let by_user = users
            .into_iter()
            .map(|u| Breakdown {
                key: u.user.key().to_string(),
                label: u
                    .user
                    .name
                    .clone()
                    .or(u.user.email.clone())
                    .or(u.user.id.clone())
                    .unwrap_or_else(|| "(unknown user)".into()),
                requests: u.totals.requests,
                tokens: u.totals.tokens.total(),
                prompt_tokens: u.totals.tokens.prompt,
                completion_tokens: u.totals.tokens.completion,
                raw_cost_usd: u.totals.cost_usd,
                client_cost_usd: mai_core::pricing::client_cost(u.totals.cost_usd, rate),
            })
            .collect();
        let by_model = models
            .into_iter()
            .map(|m| Breakdown {
                key: m.model.clone(),
                label: m.model,
                requests: m.totals.requests,
                tokens: m.totals.tokens.total(),
                prompt_tokens: m.totals.tokens.prompt,
                completion_tokens: m.totals.tokens.completion,
                raw_cost_usd: m.totals.cost_usd,
                client_cost_usd: mai_core::pricing::client_cost(m.totals.cost_usd, rate),
            })
            .collect();
        Ok(Dashboard {
            client_id: c.id.clone(),
            legal_name: c.legal_name.clone(),
            markup: c.markup,
            live,
            pull_error,
            updated_at: Utc::now(),
            today: today_point,
            month_requests: month.totals.requests,
            month_tokens: month.totals.tokens.total(),
            month_raw_cost_usd: month.totals.cost_usd,
            month_client_cost_usd: month.client_cost_usd,
            daily_average_client_cost_usd: month.daily_average_client_cost_usd,
            monthly_limit_usd: c.monthly_limit_usd,
            days,
            by_user,
            by_model,
            pln,
        })
    }
}

impl Ops {
    /// mai-billing's month report over the console cache (the ledger billing reads).
    pub async fn billing_report(
        &self,
        month: &str,
    ) -> Result<mai_billing::report::MonthReport, OpsError> {
        let b = self.fleet.billing.as_ref().ok_or(OpsError::NoBilling)?;
        let ym: mai_core::time::YearMonth = month
            .parse()
            .map_err(|_| OpsError::BadMonth(month.to_string()))?;
        let cfg = mai_billing::config::BillingConfig::load(&b.config)?;
        let nbp = mai_core::nbp::NbpClient::new(mai_core::nbp::NbpConfig {
            base_url: self.fleet.nbp_base_url.clone(),
            cache_path: Some(self.fleet.console.data_dir.join("nbp-cache.sqlite")),
            timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .map_err(mai_billing::BillingError::from)?;
        let billing =
            mai_billing::service::Billing::new(cfg, nbp, self.cache_path(), b.store.clone());
        Ok(billing.report(ym, None).await?)
    }

    fn billing_service(&self) -> Result<mai_billing::service::Billing, OpsError> {
        let b = self.fleet.billing.as_ref().ok_or(OpsError::NoBilling)?;
        let cfg = mai_billing::config::BillingConfig::load(&b.config)?;
        let nbp = mai_core::nbp::NbpClient::new(mai_core::nbp::NbpConfig {
            base_url: self.fleet.nbp_base_url.clone(),
            cache_path: Some(self.fleet.console.data_dir.join("nbp-cache.sqlite")),
            timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .map_err(mai_billing::BillingError::from)?;
        Ok(mai_billing::service::Billing::new(
            cfg,
            nbp,
            self.cache_path(),
            b.store.clone(),
        ))
    }

    /// Exports a month's invoices (CSV, PDF or KSeF XML) to a folder, `progress` called as
    /// mai-billing works; the result is regrouped per client for the console.
    pub async fn billing_export(
        &self,
        req: &InvoiceExportRequest,
        progress: &mut (dyn FnMut(mai_billing::ExportProgress) + Send),
    ) -> Result<InvoiceExportResult, OpsError> {
        let ym: mai_core::time::YearMonth = req
            .month
            .parse()
            .map_err(|_| OpsError::BadMonth(req.month.clone()))?;
        let billing = self.billing_service()?;
        let out_dir = match &req.out_dir {
            Some(d) => d.clone(),
            None => default_invoice_dir(std::env::var_os("HOME").map(Into::into), ym),
        };
        let export = mai_billing::ExportRequest {
            month: ym,
            format: req.format,
            client: req.client.clone().filter(|c| !c.is_empty()),
            out_dir: out_dir.clone(),
            dialect: req.dialect,
            issue_date: None,
        };
        let summary = billing.export(&export, progress).await?;
        // Which file and number belong to which client: the store knows every issued
        // invoice of the month (also those issued by an earlier export).
        let store_path = billing.store_path.clone();
        let invoices = tokio::task::spawn_blocking(move || {
            mai_billing::BillingStore::open(&store_path)?.invoices_for_month(ym)
        })
        .await
        .map_err(|e| {
            mai_billing::BillingError::InvalidData(format!("internal error: a task failed: {e}"))
        })??;
        Ok(group_export(out_dir, req.format, summary, &invoices))
    }

    pub fn cache_path(&self) -> std::path::PathBuf {
        self.fleet.console.data_dir.join("console-cache.sqlite")
    }
}

/// Shared handle for the Tauri state and maictl.
pub type SharedOps = Arc<Ops>;

/// What the console asks to export.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct InvoiceExportRequest {
    /// `YYYY-MM`.
    pub month: String,
    pub format: mai_billing::ExportFormat,
    /// One client (org id), or all when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Default: `~/mai-invoices/YYYY-MM`.
    #[serde(default)]
    pub out_dir: Option<std::path::PathBuf>,
    #[serde(default)]
    pub dialect: mai_billing::export::csv::CsvDialect,
}

/// One client's part of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientExport {
    pub org_id: String,
    pub invoice_number: Option<String>,
    /// Issued by this export (false: issued earlier and rendered again).
    pub newly_issued: bool,
    pub files: Vec<std::path::PathBuf>,
    /// Why the client was not exported (e.g. the missing invoice data).
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceExportResult {
    pub out_dir: std::path::PathBuf,
    pub format: mai_billing::ExportFormat,
    /// Every file written (a CSV export writes one file for all clients).
    pub files: Vec<std::path::PathBuf>,
    pub clients: Vec<ClientExport>,
}

/// `~/mai-invoices/YYYY-MM` (relative `mai-invoices/YYYY-MM` without a home directory).
pub fn default_invoice_dir(
    home: Option<std::path::PathBuf>,
    month: mai_core::time::YearMonth,
) -> std::path::PathBuf {
    home.unwrap_or_default()
        .join("mai-invoices")
        .join(month.to_string())
}

/// Regroups mai-billing's flat summary per client: invoice files are matched to the
/// month's issued invoices by file stem (the file name is derived from the number).
fn group_export(
    out_dir: std::path::PathBuf,
    format: mai_billing::ExportFormat,
    summary: mai_billing::ExportSummary,
    invoices: &[mai_billing::IssuedInvoice],
) -> InvoiceExportResult {
    let mut clients: Vec<ClientExport> = Vec::new();
    for inv in invoices {
        let stem = inv.file_stem();
        let files: Vec<_> = summary
            .files
            .iter()
            .filter(|f| f.file_stem().and_then(|s| s.to_str()) == Some(stem.as_str()))
            .cloned()
            .collect();
        if files.is_empty() && !summary.issued.contains(&inv.number) {
            continue;
        }
        clients.push(ClientExport {
            org_id: inv.statement.org_id.clone(),
            invoice_number: Some(inv.number.clone()),
            newly_issued: summary.issued.contains(&inv.number),
            files,
            skipped: None,
        });
    }
    for s in &summary.skipped {
        clients.push(ClientExport {
            org_id: s.org_id.clone(),
            invoice_number: None,
            newly_issued: false,
            files: vec![],
            skipped: Some(s.reason.clone()),
        });
    }
    clients.sort_by(|a, b| a.org_id.cmp(&b.org_id));
    InvoiceExportResult {
        out_dir,
        format,
        files: summary.files,
        clients,
    }
}
