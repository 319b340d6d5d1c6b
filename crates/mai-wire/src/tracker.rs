//! The tracker's own HTTP API (`/api/v1/...`): one type per request and reply body.
//! `mai-tracker` serializes them, `mai-ops` deserializes them; `docs/tracker-api.md`'s
//! examples are checked against them (`crates/mai-wire/tests/tracker_api_doc.rs`).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::pricing::{CommercialTerms, LimitState, MarkupSegment};
use crate::usage::{EventState, Source, TokenCounts, UserRef};

/// Every error reply: `{"error":{"code":<http status>,"message":"..."}}`. The message
/// says what failed, on which input, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    pub code: u16,
    pub message: String,
}

/// What the tracker last learned of its OpenRouter key from `GET /key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Ok,
    /// The key's own cap is spent (OpenRouter answers 403 "Key limit exceeded").
    LimitReached,
    /// OpenRouter refuses the key (401/403): revoked, disabled or mistyped.
    Invalid,
    /// Not checked yet.
    Unknown,
    /// The check itself failed (network, 5xx); see `error`.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct KeyStatus {
    /// Masked (`sk-or-v1-…abcd`); the key itself never leaves the tracker.
    pub label: String,
    pub state: KeyState,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub limit: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub limit_remaining: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub usage_daily: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub usage_monthly: Option<Decimal>,
    pub checked_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// OpenRouter's own counters minus the ledger over the same UTC windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// `/key` usage minus the ledger, current UTC day.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub day_usd: Decimal,
    /// `/key` usage minus the ledger, current UTC month.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub month_usd: Decimal,
    pub checked_at: DateTime<Utc>,
    /// Completed UTC days × models that differ from `/activity` (management key only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(optional, as = "Option<Vec<ActivityDrift>>")]
    pub activity: Vec<ActivityDrift>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ActivityDrift {
    /// A UTC day (OpenRouter's own calendar).
    pub date: NaiveDate,
    pub model: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub openrouter_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub ledger_usd: Decimal,
    pub openrouter_requests: u64,
    pub ledger_requests: u64,
}

/// The reconciliation loop as `/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SyncState {
    /// 0 when the background loop is off.
    pub interval_seconds: u64,
    pub days_back: u32,
    pub running: bool,
    pub last_run: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    /// `None` when the ledger could not be read just now.
    pub provisional_pending: Option<u64>,
    pub drift: Option<Drift>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ProxyState {
    /// Proxied requests in flight right now.
    pub inflight: u64,
}

/// `GET /api/v1/status` (read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub org_id: String,
    pub org_name: Option<String>,
    pub version: String,
    pub uptime_seconds: u64,
    /// The commercial terms the console last pushed; `null` until the first push (the
    /// tracker then prices its own reports at the default 1.3 with no limit).
    pub terms: Option<CommercialTerms>,
    pub key: KeyStatus,
    pub sync: SyncState,
    pub proxy: ProxyState,
}

/// `GET /api/v1/usage/today` (read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Today {
    pub org_id: String,
    pub date: NaiveDate,
    pub requests: u64,
    pub tokens: TokenCounts,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub markup_rate: Decimal,
    pub last_updated: DateTime<Utc>,
}

/// One day of `GET /api/v1/usage/daily`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct DayUsage {
    pub date: NaiveDate,
    pub requests: u64,
    pub tokens: TokenCounts,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
}

/// `GET /api/v1/usage/daily?from=&to=` (read): every day of the range, zeros included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Daily {
    pub org_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DayUsage>,
}

/// One user of `GET /api/v1/usage/by-user`. Unknown users have every identity field null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct UserUsage {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub requests: u64,
    pub tokens: TokenCounts,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    /// Priced by markup segment (each day at its own rate).
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
}

/// `GET /api/v1/usage/by-user?from=&to=` (read), highest raw cost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ByUser {
    pub org_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub users: Vec<UserUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ModelUsage {
    pub model: String,
    pub requests: u64,
    pub tokens: TokenCounts,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
}

/// `GET /api/v1/usage/by-model?from=&to=` (read), highest raw cost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ByModel {
    pub org_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub models: Vec<ModelUsage>,
}

/// `GET /api/v1/usage/month?month=YYYY-MM` (read), priced with the pushed terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Month {
    pub org_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The month has not ended (Warsaw time): numbers still move.
    pub provisional: bool,
    pub days_elapsed: u32,
    pub requests: u64,
    pub tokens: TokenCounts,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub daily_average_client_cost_usd: Decimal,
    pub markup_segments: Vec<MarkupSegment>,
    /// `null` when the terms set no monthly limit.
    pub limit: Option<LimitState>,
}

/// One raw ledger event as `GET /api/v1/events` exports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The ledger's change sequence: grows on every insert and correction.
    pub seq: i64,
    pub generation_id: String,
    pub org_id: String,
    pub user: UserRef,
    pub model: String,
    pub provider: Option<String>,
    pub tokens: TokenCounts,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub cost_usd: Decimal,
    pub source: Source,
    pub state: EventState,
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/events?after=<cursor>&limit=<n>` (read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next_cursor: i64,
    pub has_more: bool,
}

/// Body of `POST /api/v1/sync` (admin); an empty body means the tracker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// 1 to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub days_back: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Ok,
    /// Some lookups failed; they are listed in `errors` and asked again next run.
    Partial,
    Error,
}

/// Reply of `POST /api/v1/sync`: one reconciliation run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SyncReport {
    pub status: SyncStatus,
    pub checked: u64,
    pub confirmed: u64,
    /// Ids OpenRouter does not know yet (404 right after a request) or that failed.
    pub still_provisional: u64,
    pub corrected: u64,
    pub errors: Vec<String>,
    pub drift: Option<Drift>,
}

/// Body of `PUT /api/v1/admin/openrouter-key` (admin).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyHandover {
    pub key: String,
}

impl std::fmt::Debug for KeyHandover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHandover { key: <secret> }")
    }
}

/// Reply of `PUT /api/v1/admin/openrouter-key`: the new key's mask, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct KeyLabel {
    pub label: String,
}
