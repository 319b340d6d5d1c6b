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
use mai_wire::CommercialTerms;

/// How long the console waits for a key hand-over's reply: longer than the tracker's own
/// check of the new key (its `GET /key` times out at 15 s), so a slow OpenRouter ends in
/// the tracker's answer rather than in a console timeout with the outcome unknown.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(45);

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
        self.send(req, &url, timeout).await
    }

    /// Pushes the client's commercial terms (from the fleet file, their owner); the
    /// tracker prices its own reports with them from now on.
    pub async fn put_terms(
        &self,
        terms: &CommercialTerms,
    ) -> Result<CommercialTerms, TrackerError> {
        let url = self.url("/api/v1/admin/terms");
        let req = self.http.put(&url).json(terms);
        self.send(req, &url, self.timeout).await
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
            .send(req, &url, self.timeout.max(HANDOVER_TIMEOUT))
            .await?;
        Ok(l.label)
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
        self.send(req, &url, self.timeout.max(Duration::from_secs(120)))
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
        self.send(
            self.http.get(url),
            &shown,
            self.timeout.max(Duration::from_secs(30)),
        )
        .await
    }
}
