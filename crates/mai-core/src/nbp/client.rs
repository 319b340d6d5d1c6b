//! HTTP adapter: fetches NBP series with retries, applies the rules, uses the cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Warsaw;
use reqwest::StatusCode;

use super::rules::{display_window, invoice_window, pick_last_before};
use super::wire::{check_series, parse_series, Series};
use super::{normalise_code, DisplayRate, InvoiceRate, NbpError, RateCache, Table};

/// Production NBP API.
pub const DEFAULT_BASE_URL: &str = "https://api.nbp.pl/api";
/// Environment variable overriding the base URL (tests point it at the simulator).
pub const ENV_BASE_URL: &str = "NBP_BASE_URL";

/// Settings of [`NbpClient`].
#[derive(Debug, Clone)]
pub struct NbpConfig {
    /// Explicit base URL (wins); else `NBP_BASE_URL`; else [`DEFAULT_BASE_URL`].
    pub base_url: Option<String>,
    /// SQLite cache file; `None` keeps the cache in memory for this client only.
    pub cache_path: Option<PathBuf>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per query, counting the first (5xx, 429, timeouts and bad bodies retry).
    pub max_attempts: u32,
    /// First backoff; doubled after each failed attempt.
    pub initial_backoff: Duration,
    /// Upper bound on any wait, including a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for NbpConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            cache_path: None,
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl NbpConfig {
    /// The base URL after applying config > environment > default, without a trailing `/`.
    pub fn resolved_base_url(&self) -> Result<String, NbpError> {
        let raw = match &self.base_url {
            Some(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => match std::env::var(ENV_BASE_URL) {
                Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
                _ => DEFAULT_BASE_URL.to_string(),
            },
        };
        let parsed = url::Url::parse(&raw).map_err(|e| NbpError::BaseUrl {
            value: raw.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(NbpError::BaseUrl {
                value: raw,
                reason: "the scheme must be https (or http for a local simulator)".into(),
            });
        }
        Ok(raw.trim_end_matches('/').to_string())
    }
}

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Client of tables A and C. Cheap to clone.
#[derive(Clone)]
pub struct NbpClient {
    http: reqwest::Client,
    base: String,
    cache: RateCache,
    cfg: NbpConfig,
    clock: Clock,
}

impl std::fmt::Debug for NbpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbpClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// What one query is for, so errors can name it.
struct Query<'a> {
    table: Table,
    code: &'a str,
    from: NaiveDate,
    to: NaiveDate,
    needed: String,
}

impl NbpClient {
    pub fn new(cfg: NbpConfig) -> Result<Self, NbpError> {
        let base = cfg.resolved_base_url()?;
        let cache = match &cfg.cache_path {
            Some(p) => RateCache::open(p)?,
            None => RateCache::open_in_memory()?,
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .user_agent(concat!("mai-fleet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NbpError::Http(e.to_string()))?;
        Ok(Self {
            http,
            base,
            cache,
            cfg,
            clock: Arc::new(Utc::now),
        })
    }

    /// Replaces the clock used for "today" (Warsaw) — for tests and simulations.
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn today(&self) -> NaiveDate {
        (self.clock)().with_timezone(&Warsaw).date_naive()
    }

    /// Invoice rate for a monthly-settled period: reference = period end, or the issue
    /// date if the invoice is issued earlier (art. 31a ust. 1–2).
    pub async fn invoice_rate_for_period(
        &self,
        code: &str,
        period_last_day: NaiveDate,
        issue_date: NaiveDate,
    ) -> Result<InvoiceRate, NbpError> {
        self.invoice_rate(
            code,
            super::invoice_reference_date(period_last_day, issue_date),
        )
        .await
    }

    /// Table A mid of the last working day strictly before `reference`.
    pub async fn invoice_rate(
        &self,
        code: &str,
        reference: NaiveDate,
    ) -> Result<InvoiceRate, NbpError> {
        let code = normalise_code(code)?;
        // The answer is final only once the whole window [D-14, D-1] lies before today;
        // before that, D-1's table may still appear, so no answer is given at all.
        let today = self.today();
        if reference > today {
            return Err(NbpError::NotFinal {
                code,
                reference,
                today,
            });
        }
        {
            if let Some(hit) = self.cache.get_invoice_rate(&code, reference)? {
                tracing::debug!(%code, %reference, table_no = %hit.table_no, "NBP invoice rate from cache");
                return Ok(hit);
            }
        }
        let (from, to) = invoice_window(reference);
        let q = Query {
            table: Table::A,
            code: &code,
            from,
            to,
            needed: format!(
                "the invoice rate (table A mid of the last working day before {reference})"
            ),
        };
        let series = self.fetch_series(&q).await?;
        let row = series
            .as_ref()
            .and_then(|s| pick_last_before(s, reference))
            .ok_or_else(|| NbpError::NoRate {
                table: Table::A,
                code: code.clone(),
                needed: q.needed.clone(),
                from,
                to,
            })?;
        let mid = row.mid.ok_or_else(|| NbpError::NoRate {
            table: Table::A,
            code: code.clone(),
            needed: q.needed.clone(),
            from,
            to,
        })?;
        let rate = InvoiceRate {
            code: code.clone(),
            mid,
            table_no: row.no.clone(),
            effective_date: row.effective_date,
            reference_date: reference,
        };
        self.cache.put_invoice_rate(&rate)?;
        tracing::info!(%code, %reference, table_no = %rate.table_no, effective = %rate.effective_date, mid = %rate.mid, "NBP invoice rate");
        Ok(rate)
    }

    /// Latest published table C rate (up to 7 days back). If NBP cannot be reached, the
    /// last good value is returned with `stale = true`; with none, the error.
    pub async fn display_rate(&self, code: &str) -> Result<DisplayRate, NbpError> {
        let code = normalise_code(code)?;
        let today = self.today();
        let (from, to) = display_window(today);
        let q = Query {
            table: Table::C,
            code: &code,
            from,
            to,
            needed: format!("the display rate (latest table C ask on or before {today})"),
        };
        match self.fetch_series(&q).await {
            Ok(Some(series)) => {
                let row = series
                    .rows
                    .iter()
                    .filter(|r| r.effective_date <= today)
                    .max_by_key(|r| r.effective_date);
                let row = match row {
                    Some(r) => r,
                    None => return self.stale_or(q.into_no_rate(&code)),
                };
                let (Some(bid), Some(ask)) = (row.bid, row.ask) else {
                    return self.stale_or(q.into_no_rate(&code));
                };
                let rate = DisplayRate {
                    code: code.clone(),
                    ask,
                    bid,
                    table_no: row.no.clone(),
                    effective_date: row.effective_date,
                    fetched_at: (self.clock)(),
                    stale: false,
                };
                self.cache.put_last_good_display(&rate)?;
                Ok(rate)
            }
            Ok(None) => self.stale_or(q.into_no_rate(&code)),
            Err(e @ NbpError::Unavailable { .. }) => self.stale_or(e),
            Err(e) => Err(e),
        }
    }

    fn stale_or(&self, err: NbpError) -> Result<DisplayRate, NbpError> {
        let code = match &err {
            NbpError::NoRate { code, .. } | NbpError::Unavailable { code, .. } => code.clone(),
            _ => return Err(err),
        };
        match self.cache.get_last_good_display(&code)? {
            Some(mut last) => {
                tracing::warn!(%code, error = %err, table_no = %last.table_no, "NBP display rate: using the last good value (stale)");
                last.stale = true;
                Ok(last)
            }
            None => Err(err),
        }
    }

    /// GET a per-currency range. `Ok(None)` is NBP's 404 "Brak danych" (a normal answer).
    async fn fetch_series(&self, q: &Query<'_>) -> Result<Option<Series>, NbpError> {
        let url = format!(
            "{}/exchangerates/rates/{}/{}/{}/{}/?format=json",
            self.base,
            q.table.letter().to_ascii_lowercase(),
            q.code.to_ascii_lowercase(),
            q.from,
            q.to
        );
        let attempts = self.cfg.max_attempts.max(1);
        let mut backoff = self.cfg.initial_backoff;
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            let mut wait = backoff;
            match self
                .http
                .get(&url)
                .header("Accept", "application/json")
                .send()
                .await
            {
                Err(e) => {
                    last_error = if e.is_timeout() {
                        format!("timed out after {:?}", self.cfg.timeout)
                    } else if e.is_connect() {
                        format!("connection failed: {e}")
                    } else {
                        format!("request failed: {e}")
                    };
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = match resp.text().await {
                        Ok(b) => b,
                        Err(e) => {
                            last_error = format!("reading the body failed: {e}");
                            self.pause(attempt, attempts, wait, &url, &last_error).await;
                            backoff = backoff.saturating_mul(2);
                            continue;
                        }
                    };
                    if status == StatusCode::NOT_FOUND {
                        tracing::debug!(%url, "NBP: no data (404)");
                        return Ok(None);
                    }
                    if status.is_success() {
                        match parse_series(&body)
                            .and_then(|s| check_series(&s, q.table, q.code).map(|()| s))
                        {
                            Ok(s) if s.rows.is_empty() => {
                                last_error = "HTTP 200 with an empty rates array".into();
                            }
                            Ok(s) => return Ok(Some(s)),
                            Err(e) => last_error = format!("unusable reply: {e}"),
                        }
                    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        last_error = format!("HTTP {} {}", status.as_u16(), snippet(&body));
                        if let Some(ra) = retry_after {
                            wait = ra;
                        }
                    } else {
                        return Err(NbpError::Rejected {
                            url,
                            status: status.as_u16(),
                            body: snippet(&body),
                            needed: q.needed.clone(),
                        });
                    }
                }
            }
            self.pause(attempt, attempts, wait, &url, &last_error).await;
            backoff = backoff.saturating_mul(2);
        }
        Err(NbpError::Unavailable {
            table: q.table,
            code: q.code.to_string(),
            needed: q.needed.clone(),
            from: q.from,
            to: q.to,
            url,
            attempts,
            last_error,
        })
    }

    async fn pause(&self, attempt: u32, attempts: u32, wait: Duration, url: &str, err: &str) {
        if attempt < attempts {
            let wait = wait.min(self.cfg.max_backoff);
            tracing::warn!(%url, attempt, error = %err, wait_ms = wait.as_millis() as u64, "NBP request failed; retrying");
            // Backoff between retries of a remote call (not test synchronisation).
            tokio::time::sleep(wait).await;
        }
    }
}

impl Query<'_> {
    fn into_no_rate(self, code: &str) -> NbpError {
        NbpError::NoRate {
            table: self.table,
            code: code.to_string(),
            needed: self.needed,
            from: self.from,
            to: self.to,
        }
    }
}

/// First line of an error body, bounded (NBP errors are short plain text).
fn snippet(body: &str) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    let mut s: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        s.push('…');
    }
    s
}
