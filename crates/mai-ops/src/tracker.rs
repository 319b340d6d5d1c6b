//! HTTP client of one client's tracker, exactly per docs/tracker-api.md.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

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
}

impl TrackerError {
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TrackerError::Timeout { .. } | TrackerError::Unreachable { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenCounts {
    pub prompt: u64,
    pub completion: u64,
    pub reasoning: u64,
    pub cached: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyStatus {
    pub label: Option<String>,
    pub state: Option<String>,
    pub limit: Option<Decimal>,
    pub limit_remaining: Option<Decimal>,
    pub usage_daily: Option<Decimal>,
    pub usage_monthly: Option<Decimal>,
    pub checked_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drift {
    pub day_usd: Option<Decimal>,
    pub month_usd: Option<Decimal>,
    pub checked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncStatus {
    pub interval_seconds: Option<u64>,
    pub days_back: Option<u32>,
    pub running: Option<bool>,
    pub last_run: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub provisional_pending: Option<u64>,
    pub drift: Option<Drift>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub org_id: String,
    pub org_name: Option<String>,
    pub version: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub markup_rate: Option<Decimal>,
    pub key: Option<KeyStatus>,
    pub sync: Option<SyncStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Today {
    pub org_id: String,
    pub date: NaiveDate,
    pub requests: u64,
    pub tokens: TokenCounts,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
    pub markup_rate: Option<Decimal>,
    pub last_updated: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Day {
    pub date: NaiveDate,
    pub requests: u64,
    pub tokens: TokenCounts,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Daily {
    pub org_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<Day>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRow {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub requests: u64,
    pub tokens: TokenCounts,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ByUser {
    pub org_id: String,
    pub users: Vec<UserRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRow {
    pub model: String,
    pub requests: u64,
    pub tokens: TokenCounts,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ByModel {
    pub org_id: String,
    pub models: Vec<ModelRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitInfo {
    pub monthly_limit_usd: Decimal,
    pub used_usd: Decimal,
    pub percent_used: Decimal,
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Month {
    pub org_id: String,
    pub month: String,
    pub provisional: bool,
    pub days_elapsed: u32,
    pub requests: u64,
    pub tokens: TokenCounts,
    pub raw_cost_usd: Decimal,
    pub client_cost_usd: Decimal,
    pub profit_usd: Decimal,
    pub daily_average_client_cost_usd: Decimal,
    pub limit: Option<LimitInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventUser {
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// One raw ledger event as the tracker exports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub generation_id: String,
    pub org_id: String,
    pub user: EventUser,
    pub model: String,
    pub provider: Option<String>,
    pub tokens: TokenCounts,
    pub cost_usd: Decimal,
    pub source: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next_cursor: i64,
    pub has_more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResult {
    pub status: String,
    pub checked: Option<u64>,
    pub confirmed: Option<u64>,
    pub still_provisional: Option<u64>,
    pub corrected: Option<u64>,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

#[derive(Clone)]
pub struct TrackerClient {
    http: reqwest::Client,
    base: url::Url,
    token: String,
    timeout: Duration,
}

impl std::fmt::Debug for TrackerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackerClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}
#[derive(Deserialize)]
struct ErrorInner {
    message: String,
}

impl TrackerClient {
    pub fn new(http: reqwest::Client, base: url::Url, token: String, timeout: Duration) -> Self {
        TrackerClient {
            http,
            base,
            token,
            timeout,
        }
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
        let fut = async {
            let resp = req.bearer_auth(&self.token).send().await.map_err(|e| {
                TrackerError::Unreachable {
                    url: url.to_string(),
                    message: e.without_url().to_string(),
                }
            })?;
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
    ) -> Result<SyncResult, TrackerError> {
        let url = self.url("/api/v1/sync");
        let req = self
            .http
            .post(&url)
            .json(&serde_json::json!({ "days_back": days_back }));
        self.send(req, &url, timeout).await
    }

    /// Hot-swaps the upstream OpenRouter key; the reply carries only the masked label.
    pub async fn put_openrouter_key(&self, key: &str) -> Result<String, TrackerError> {
        #[derive(Deserialize)]
        struct Label {
            label: String,
        }
        let url = self.url("/api/v1/admin/openrouter-key");
        let req = self.http.put(&url).json(&serde_json::json!({ "key": key }));
        let l: Label = self
            .send(req, &url, self.timeout.max(Duration::from_secs(15)))
            .await?;
        Ok(l.label)
    }
}
