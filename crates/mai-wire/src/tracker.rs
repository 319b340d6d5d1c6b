//! The tracker's own HTTP API (`/api/v1/...`): one type per request and reply body.
//! `mai-tracker` serializes them, `mai-ops` deserializes them; `docs/tracker-api.md`'s
//! examples are checked against them (`crates/mai-wire/tests/tracker_api_doc.rs`).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::pricing::{CommercialTerms, LimitState, MarkupSegment};
use crate::usage::{ChatContext, EventState, Source, TokenCounts, UserRef};

/// Every error reply: `{"error":{"code":<http status>,"message":"..."}}`. The message
/// says what failed, on which input, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    pub code: u16,
    pub message: String,
}

/// What the tracker last learned of its OpenRouter key from `GET /key` and `/credits`.
/// The two spending refusals are apart because different people fix them (spec 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Ok,
    /// The key's own cap is spent (OpenRouter answers 403 "Key limit exceeded (… limit)"):
    /// raise the client's monthly limit in the fleet file (the key's cap follows it).
    LimitReached,
    /// The OpenRouter account's credits are spent (402 "Insufficient credits"): every
    /// key of the account stops; top up on openrouter.ai.
    AccountOutOfCredits,
    /// OpenRouter refuses the key (401/403): revoked, disabled or mistyped.
    Invalid,
    /// Not checked yet.
    Unknown,
    /// The check itself failed (network, 5xx); see `error`.
    Error,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Ok => "ok",
            KeyState::LimitReached => "limit_reached",
            KeyState::AccountOutOfCredits => "account_out_of_credits",
            KeyState::Invalid => "invalid",
            KeyState::Unknown => "unknown",
            KeyState::Error => "error",
        }
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct KeyStatus {
    /// Masked (`sk-or-v1-…abcd`); the key itself never leaves the tracker.
    pub label: String,
    /// OpenRouter's identifier of the key: SHA-256 hex of the key string (not secret,
    /// it cannot give the key back); what `/keys/{hash}` and `/activity` take.
    #[serde(default)]
    pub hash: String,
    /// The key's name on OpenRouter (what Broadcast spans carry as
    /// `trace.metadata.openrouter.api_key_name`); `null` while unknown.
    #[serde(default)]
    pub name: Option<String>,
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
    /// The Broadcast webhook; absent in replies of trackers older than it.
    #[serde(default)]
    pub webhook: WebhookState,
}

/// The Broadcast webhook (`POST /api/v1/usage-tracking/webhook/openrouter-usage`) as
/// `/status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct WebhookState {
    /// False without `MAI_WEBHOOK_SECRET`: the endpoint then answers 404.
    pub enabled: bool,
    /// The header the destination must send the secret in (its custom headers).
    pub secret_header: Option<String>,
    /// Spans are recorded only when their key name is one of these: this client's
    /// current key and the keys it used before a rotation. Empty = no span is recorded
    /// (the key's name is not known yet).
    pub key_names: Vec<String>,
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

/// Key of the `by-task` row of events whose task the chat app did not tell
/// ([`ChatContext::task`] `null`); the user's own messages are
/// [`crate::usage::TASK_CHAT`], background tasks their Open WebUI name.
pub const TASK_UNKNOWN: &str = "(unknown)";
/// Key of the `by-group` row of events without groups.
pub const NO_GROUP: &str = "(no group)";
/// Key of the `by-chat` row of events outside any chat.
pub const NO_CHAT: &str = "(no chat)";

/// One row of `by-task`, `by-group` or `by-chat`: the events sharing one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct KeyedUsage {
    /// The task kind ([`crate::usage::TASK_CHAT`], a task name or [`TASK_UNKNOWN`]), the
    /// group set ([`NO_GROUP`]) or the chat id ([`NO_CHAT`]).
    pub key: String,
    pub requests: u64,
    pub tokens: TokenCounts,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    /// Priced by markup segment (each day at its own rate), as `by-user`.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
}

/// `GET /api/v1/usage/by-task?from=&to=` (read), highest raw cost first. The rows sum
/// exactly to the range's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ByTask {
    pub org_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tasks: Vec<KeyedUsage>,
}

/// `GET /api/v1/usage/by-group?from=&to=` (read), highest raw cost first. A user in
/// several groups counts once, under the whole set (`"Finance, Sales"`), so the rows
/// sum exactly to the range's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ByGroup {
    pub org_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub groups: Vec<KeyedUsage>,
}

/// `GET /api/v1/usage/by-chat?from=&to=` (read), highest raw cost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ByChat {
    pub org_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub chats: Vec<KeyedUsage>,
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
    /// Chat id, task and groups; left out when none is known, so events without them
    /// read as before this field existed.
    #[serde(default, skip_serializing_if = "ChatContext::is_empty")]
    #[ts(optional, as = "Option<ChatContext>")]
    pub context: ChatContext,
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
    /// The new key's name on OpenRouter (the console names the keys it creates), so the
    /// Broadcast webhook accepts its spans at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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

/// Who a privacy request (erasure, export) is about: the person's Open WebUI user id,
/// e-mail, or both (at least one). Events match when their user id equals `id` or
/// their e-mail equals `email` (ASCII case-insensitive); every event sharing a rollup
/// key (id, else e-mail) with a match belongs to the person too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PrivacySubject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// Body of `POST /api/v1/admin/privacy/erase` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    pub user: PrivacySubject,
}

/// Reply of `POST /api/v1/admin/privacy/erase`: what the erasure changed. Amounts are
/// not touched, so there are none here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ErasureReport {
    pub org_id: String,
    /// SHA-256 hex of the subject (`mai_core::ledger::subject_hash`): how audit logs
    /// name the person, never by e-mail or name.
    pub subject_hash: String,
    /// `erased-<32 hex>`: the random user id the person's usage is now kept under, so
    /// per-user totals stay whole. Not stored next to `subject_hash` anywhere.
    pub pseudonym: String,
    /// Events whose user fields (and chat id) were replaced.
    pub events: u64,
    /// Per-user daily rollup rows merged into the pseudonym's.
    pub rollup_rows: u64,
    /// Crash-journal and quarantine lines of the person removed from the tracker's files.
    pub journal_lines: u64,
    /// The ledger file was rebuilt (`VACUUM`) and its WAL truncated, so no old copy of
    /// the erased fields is left in free pages or the WAL.
    pub compacted: bool,
    pub erased_at: DateTime<Utc>,
}

/// Reply of `GET /api/v1/admin/privacy/export?user_id=&email=` (admin): one person's
/// usage (GDPR art. 15), every event and the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PrivacyExport {
    pub org_id: String,
    pub subject: PrivacySubject,
    pub generated_at: DateTime<Utc>,
    pub requests: u64,
    pub tokens: TokenCounts,
    /// What OpenRouter charged for the person's requests (USD).
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    /// Oldest first.
    pub events: Vec<Event>,
}

/// The model a probe asks when the console names none: a cheap one (the probe asks
/// for one completion token, a few millionths of a dollar).
pub const DEFAULT_PROBE_MODEL: &str = "openai/gpt-4o-mini";

/// The user a probe's usage is recorded under, so reports can tell it from people's.
pub const PROBE_USER: &str = "mai-probe";

/// Body of `POST /api/v1/admin/probe` (admin): one metered request through the
/// tracker's own proxy path, as a health check of the whole chain (key, upstream,
/// metering, ledger) after a deployment or an image update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    /// Default [`DEFAULT_PROBE_MODEL`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub model: Option<String>,
}

/// Reply of `POST /api/v1/admin/probe`: the generation as the ledger holds it. The
/// tracker answers only once the event is in its ledger (or says it is not, with 504).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ProbeReport {
    pub generation_id: String,
    /// How long OpenRouter took to answer, in ms.
    pub upstream_ms: u64,
    /// The ledger's event (its `seq` finds it in `GET /api/v1/events?after=seq-1`).
    pub event: Event,
}

/// The seed-compatible endpoints (`/api/v1/usage-tracking/...`), kept byte-compatible
/// with the system the tracker replaces: their money is a JSON **number** written from
/// the exact decimal text ([`crate::money::json_number`]), not our string convention.
/// The console never calls them, so they have no TypeScript declarations.
pub mod seed {
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;
    use serde::{Deserialize, Serialize};

    /// Overall outcome of `POST /sync/openrouter-usage`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum RunStatus {
        /// The run finished, possibly with some lookups left for the next run.
        Success,
        Error,
    }

    /// Outcome of the run for the one organisation a tracker serves.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum OrgStatus {
        Success,
        /// Some lookups failed; they are asked again on the next run.
        Partial,
        Error,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct OrgResult {
        pub organization: String,
        /// Generations confirmed against OpenRouter by this run.
        pub synced_generations: u64,
        pub status: OrgStatus,
    }

    /// Reply of `POST /api/v1/usage-tracking/sync/openrouter-usage` (admin); the body
    /// is [`super::SyncRequest`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SyncReply {
        pub status: RunStatus,
        pub results: Vec<OrgResult>,
        /// Always 1: a tracker serves one organisation.
        pub total_organizations: u64,
    }

    /// Reply of `GET /api/v1/usage-tracking/usage/real-time/{client_org_id}` (read):
    /// today (Warsaw) so far.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RealTime {
        pub client_org_id: String,
        pub date: NaiveDate,
        /// prompt + completion tokens.
        pub tokens: u64,
        pub requests: u64,
        /// What the client pays (USD, with markup): priced by the pushed terms.
        #[serde(with = "crate::money::json_number")]
        pub cost: Decimal,
        /// What OpenRouter charged (USD).
        #[serde(with = "crate::money::json_number")]
        pub raw_cost: Decimal,
        pub last_updated: DateTime<Utc>,
    }

    /// Body of `POST /api/v1/usage-tracking/usage/manual-record` (admin): an audited
    /// correction. Unknown fields are refused rather than ignored: a misspelt field of
    /// a money correction (`cost_usd` for `cost`, a `created_at` we would not honour)
    /// must not be recorded as something else than was meant.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ManualRecord {
        pub model: String,
        /// Prompt tokens when `prompt_tokens` is absent.
        #[serde(default)]
        pub tokens: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub prompt_tokens: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub completion_tokens: Option<u64>,
        /// USD, not negative: a correction adds a charge, it does not refund.
        #[serde(with = "crate::money::json_number")]
        pub cost: Decimal,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_id: Option<String>,
        /// Kept in the ledger's audit log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub note: Option<String>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum RecordedStatus {
        Recorded,
    }

    /// Reply (`201`) of `POST /usage/manual-record`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Recorded {
        pub status: RecordedStatus,
        /// `man-<unix seconds>-<16 hex digits>`.
        pub generation_id: String,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum WebhookStatus {
        Ok,
    }

    /// Reply of `POST /webhook/openrouter-usage` (the body is OTLP/JSON, OpenRouter's
    /// Broadcast format, parsed by the tracker itself).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebhookReply {
        pub status: WebhookStatus,
        /// Spans that changed the ledger (new generations, or more authoritative ones).
        pub recorded: u64,
        /// Spans of generations the ledger already had as they are.
        pub duplicates: u64,
    }
}

/// Header of `GET /api/v1/admin/backup`'s reply and `POST /api/v1/admin/restore`'s
/// request: the SHA-256 (lower-case hex) of the body, the ledger file. The size is the
/// `Content-Length`. A client hashes what it received and compares both before it keeps
/// the file.
pub const BACKUP_SHA256_HEADER: &str = "x-mai-backup-sha256";
/// Header of `GET /api/v1/admin/backup`'s reply: events in the backed-up ledger.
pub const BACKUP_EVENTS_HEADER: &str = "x-mai-backup-events";
/// Header of `GET /api/v1/admin/backup`'s reply: the org the ledger belongs to.
pub const BACKUP_ORG_HEADER: &str = "x-mai-backup-org";

/// Reply of `POST /api/v1/admin/restore` (admin): the ledger now in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RestoreReport {
    pub org_id: String,
    /// Events of the restored ledger.
    pub events: u64,
    /// SHA-256 of the received file, as verified.
    pub sha256: String,
    pub size_bytes: u64,
    pub restored_at: DateTime<Utc>,
}
