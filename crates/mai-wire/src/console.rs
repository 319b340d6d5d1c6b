//! The console's IPC: what the Tauri commands return to the web view, the structs it
//! sends as arguments, and the payloads of the events the console emits.
//!
//! mai-ops builds these values and mai-billing re-exports the plain billing enums from
//! here, so the Rust side has one definition per shape; `ui/src/lib/wire.ts` is generated
//! from the same types, so the UI cannot drift from them. Command errors stay plain
//! strings: the UI only shows them, and each already says what failed and what to do.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::pricing::LimitState;
use crate::tracker::{KeyState, SyncStatus};
use crate::usage::UnknownVariant;

// ---------------------------------------------------------------------------------------
// App shell

/// One client as menus list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClientRef {
    pub id: String,
    pub legal_name: String,
}

/// `app_info`: what the shell knows before any tracker is asked. A fleet file that failed
/// to load is reported here (`load_error`) rather than failing every command, so the UI
/// can show the file's own error message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AppInfo {
    pub version: String,
    pub fleet_path: Option<String>,
    pub load_error: Option<String>,
    pub keychain_error: Option<String>,
    pub clients: Vec<ClientRef>,
    pub update_endpoint: Option<String>,
    /// The fleet file has a `[billing]` section (report and export available).
    pub billing_available: bool,
    /// The fleet file has a `[ksef]` section too (sending invoices to KSeF available).
    pub ksef_available: bool,
}

/// `check_update`: a result either way; a failed check is `error`, not a command error,
/// so the Settings view shows it next to the current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UpdateCheck {
    pub available: bool,
    pub version: Option<String>,
    pub notes: Option<String>,
    pub current: String,
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Fleet table

/// What a client container is for, from its `mai.role` label. The console acts only on
/// these two; a container with another role is not one of ours to show or restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ContainerRole {
    /// The chat app (Open WebUI). Also a container without a role label.
    #[default]
    Chat,
    /// The client's mai-tracker.
    Tracker,
}

impl ContainerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerRole::Chat => "chat",
            ContainerRole::Tracker => "tracker",
        }
    }
}

impl fmt::Display for ContainerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the `mai.role` label (and maictl's `--role`).
impl FromStr for ContainerRole {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chat" => Ok(ContainerRole::Chat),
            "tracker" => Ok(ContainerRole::Tracker),
            _ => Err(UnknownVariant {
                field: "role",
                value: s.into(),
                expected: "chat or tracker",
            }),
        }
    }
}

/// A container's state as the Docker Engine API reports it. An enum, not Docker's
/// string, because the set is closed: bollard (our only source) parses the engine's
/// answer into exactly these states and fails on anything else, so an `Other(String)`
/// fallback could never be filled. `unknown` stands for an empty or missing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Stopping,
    Exited,
    Dead,
    Unknown,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Stopping => "stopping",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown => "unknown",
        }
    }

    /// Docker's state word; an empty or unrecognised one is `Unknown` (shown, and
    /// alerted on as not running, rather than hiding the container).
    pub fn from_docker(s: &str) -> ContainerState {
        match s {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "stopping" => ContainerState::Stopping,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => ContainerState::Unknown,
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of a container's Docker healthcheck. A container without one has no
/// health at all (`null`), which is not the same as unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ContainerHealth {
    Starting,
    Healthy,
    Unhealthy,
}

impl ContainerHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerHealth::Starting => "starting",
            ContainerHealth::Healthy => "healthy",
            ContainerHealth::Unhealthy => "unhealthy",
        }
    }

    /// Docker's health word; `none`, empty and unknown words mean no healthcheck.
    pub fn from_docker(s: &str) -> Option<ContainerHealth> {
        match s {
            "starting" => Some(ContainerHealth::Starting),
            "healthy" => Some(ContainerHealth::Healthy),
            "unhealthy" => Some(ContainerHealth::Unhealthy),
            _ => None,
        }
    }
}

impl fmt::Display for ContainerHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the fleet table shows about one container (also `restart_container`'s reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    /// The `mai.client` label.
    pub client: String,
    pub role: ContainerRole,
    pub image: String,
    /// The `mai.version` label, else the image tag.
    pub version: Option<String>,
    pub state: ContainerState,
    pub health: Option<ContainerHealth>,
    pub started_at: Option<DateTime<Utc>>,
    pub restart_count: Option<i64>,
}

/// Ordered by severity, so alerts sort with the worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum AlertLevel {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Alert {
    pub level: AlertLevel,
    pub message: String,
}

/// How the tracker's last reconciliation went, as the fleet table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SyncView {
    Ok,
    Error,
    Running,
    /// No run finished yet, or the tracker was never reached.
    Unknown,
}

/// How clients run on a Docker host (`[[hosts]] mode` of the fleet file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    /// Standalone engine: a client is two containers. The default.
    #[default]
    Plain,
    /// The engine is a Docker Swarm manager: a client is two services, its secrets are
    /// Docker secrets, placed by the client's `placement` constraints.
    Swarm,
}

impl HostMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HostMode::Plain => "plain",
            HostMode::Swarm => "swarm",
        }
    }
}

/// One client in the fleet table (`fleet_status`). Every price is computed by the
/// console from the fleet file's terms; only raw (OpenRouter) costs come from trackers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FleetRow {
    pub client_id: String,
    pub legal_name: String,
    pub host: String,
    /// The host's mode (absent: plain); the table marks Swarm clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub host_mode: Option<HostMode>,
    /// Today's markup rate (the fleet file's schedule).
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub markup: Decimal,
    /// The chat container (role `chat`), if Docker answered and one exists.
    pub container: Option<ContainerInfo>,
    pub tracker_container: Option<ContainerInfo>,
    pub docker_error: Option<String>,
    pub uptime_seconds: Option<i64>,
    pub tracker_reachable: bool,
    pub tracker_error: Option<String>,
    pub tracker_version: Option<String>,
    pub last_sync_state: SyncView,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_error: Option<String>,
    pub today_requests: Option<u64>,
    pub today_tokens: Option<u64>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub today_raw_cost_usd: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub today_client_cost_usd: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub month_client_cost_usd: Option<Decimal>,
    /// The Warsaw month so far, raw (OpenRouter) cost.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub month_raw_cost_usd: Option<Decimal>,
    /// The month's client cost against the fleet file's monthly limit, if it has one.
    pub limit: Option<LimitState>,
    /// Month-end client cost at the month's pace so far, against the limit.
    #[serde(default)]
    pub projection: Option<crate::overview::Projection>,
    pub key_state: Option<KeyState>,
    pub key_label: Option<String>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub key_limit_remaining_usd: Option<Decimal>,
    /// Worst first.
    pub alerts: Vec<Alert>,
    /// When the numbers shown were fetched; older than this refresh when the tracker is down.
    pub data_fetched_at: Option<DateTime<Utc>>,
    pub data_age_seconds: Option<i64>,
    pub refreshed_at: DateTime<Utc>,
}

/// Payload of the `log-line` event: one chunk of a container's log stream started by
/// `logs_start`, which returned `stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LogLine {
    pub stream: u32,
    pub line: String,
}

// ---------------------------------------------------------------------------------------
// Sync

/// The tracker's own status of the run, or `unreachable` when it could not be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SyncOutcomeStatus {
    Ok,
    Partial,
    Error,
    Unreachable,
}

impl SyncOutcomeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcomeStatus::Ok => "ok",
            SyncOutcomeStatus::Partial => "partial",
            SyncOutcomeStatus::Error => "error",
            SyncOutcomeStatus::Unreachable => "unreachable",
        }
    }
}

impl fmt::Display for SyncOutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<SyncStatus> for SyncOutcomeStatus {
    fn from(s: SyncStatus) -> Self {
        match s {
            SyncStatus::Ok => SyncOutcomeStatus::Ok,
            SyncStatus::Partial => SyncOutcomeStatus::Partial,
            SyncStatus::Error => SyncOutcomeStatus::Error,
        }
    }
}

/// Per-client result of a sync (`sync_clients`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SyncOutcome {
    pub client_id: String,
    /// The sync ran and its events reached the console cache.
    pub ok: bool,
    pub status: SyncOutcomeStatus,
    pub checked: Option<u64>,
    pub confirmed: Option<u64>,
    pub corrected: Option<u64>,
    /// Events pulled into the console cache.
    pub pulled: Option<u64>,
    pub error: Option<String>,
}

impl SyncOutcome {
    /// A sync that could not start (unknown client, no token): nothing was asked.
    pub fn failed(client_id: &str, error: String) -> SyncOutcome {
        SyncOutcome {
            client_id: client_id.to_string(),
            ok: false,
            status: SyncOutcomeStatus::Error,
            checked: None,
            confirmed: None,
            corrected: None,
            pulled: None,
            error: Some(error),
        }
    }
}

/// Payload of the `sync-progress` event, sent as each client's sync finishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SyncProgress {
    pub done: usize,
    pub total: usize,
    pub outcome: SyncOutcome,
}

// ---------------------------------------------------------------------------------------
// Keys

/// Which secret of a client (`key_set`, `key_delete` and the key listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    /// A client's OpenRouter inference key.
    OpenRouter,
    /// The admin token of a client's tracker (sent only with admin actions).
    TrackerToken,
    /// The read token of a client's tracker (routine polling).
    TrackerReadToken,
}

/// A stored secret as the console may show it: masked, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MaskedKey {
    pub client: String,
    pub kind: SecretKind,
    /// Absent (`null`) when nothing is stored.
    pub masked: Option<String>,
    pub error: Option<String>,
}

/// Record of a key rotation (`key_rotate`), also kept in the console cache; it holds
/// labels and OpenRouter's key hashes (identifiers), never a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Rotation {
    pub client_id: String,
    pub at: DateTime<Utc>,
    pub new_label: String,
    pub new_hash: String,
    pub old_label: Option<String>,
    pub old_hash: Option<String>,
    /// The old key was disabled on OpenRouter (else `warning` says what to do by hand).
    pub old_disabled: bool,
    pub warning: Option<String>,
    /// What the operator still has to re-point by hand after a good rotation (the
    /// Broadcast destination's API-key filter); empty in records older than it.
    #[serde(default)]
    pub follow_up: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Privacy (GDPR art. 15 and 17)

/// `privacy_erase`: one person's personal data erased on the client's tracker and in
/// the console cache. Totals, invoices and other users are untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PrivacyErasure {
    pub client_id: String,
    /// How the audit log names the person (SHA-256 hex of the id and e-mail asked for).
    pub subject_hash: String,
    /// The random user id the person's usage is now listed under (`erased-…`).
    pub pseudonym: String,
    /// Events changed on the tracker and in the console cache.
    pub tracker_events: u64,
    pub cache_events: u64,
    /// Crash-journal lines of the person the tracker removed.
    pub journal_lines: u64,
    /// Both ledger files were rebuilt, so no old copy of the fields is left in them.
    pub compacted: bool,
    pub at: DateTime<Utc>,
    /// The audit log the action was written to.
    pub audit_log: String,
}

/// `privacy_export`: one person's usage on one client, from the tracker (or, when it
/// is unreachable, from the console cache: `from_cache`, with `warning` saying why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PrivacyExportResult {
    pub client_id: String,
    pub from_cache: bool,
    pub warning: Option<String>,
    pub export: crate::tracker::PrivacyExport,
    /// The audit log the action was written to.
    pub audit_log: String,
}

// ---------------------------------------------------------------------------------------
// Client dashboard

/// One Warsaw day of a client's usage, priced at that day's markup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DayPoint {
    pub date: NaiveDate,
    pub requests: u64,
    pub tokens: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
}

/// One user's or one model's month so far, priced by markup segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Breakdown {
    /// The grouping key: user id (else e-mail, else "") or model name.
    pub key: String,
    pub label: String,
    pub requests: u64,
    pub tokens: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
}

/// The USD→PLN display rate (NBP table C ask), for showing PLN next to USD; never an
/// invoice rate. Without one (`available` false) the UI shows USD only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PlnRate {
    pub available: bool,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub rate: Option<Decimal>,
    pub table_no: Option<String>,
    pub effective_date: Option<NaiveDate>,
    /// The last known rate, NBP being unreachable now.
    pub stale: bool,
    pub error: Option<String>,
    /// NBP has not answered yet (the fleet view shows its rows without waiting for it,
    /// and asks again shortly); `available` is false.
    #[serde(default)]
    pub pending: bool,
}

impl PlnRate {
    pub fn unavailable(error: String) -> PlnRate {
        PlnRate {
            available: false,
            rate: None,
            table_no: None,
            effective_date: None,
            stale: false,
            error: Some(error),
            pending: false,
        }
    }

    /// NBP asked, its answer not in yet.
    pub fn pending() -> PlnRate {
        PlnRate {
            pending: true,
            ..PlnRate::unavailable("asking NBP for the display rate".into())
        }
    }
}

/// Everything the client dashboard shows (`client_dashboard`), read from the console
/// cache after a pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Dashboard {
    pub client_id: String,
    pub legal_name: String,
    /// Today's markup rate; days and breakdowns are priced at their own days' rates.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub markup: Decimal,
    /// The pull from the tracker succeeded just now (numbers are live).
    pub live: bool,
    pub pull_error: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub today: DayPoint,
    pub month_requests: u64,
    pub month_tokens: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub month_raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub month_client_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub daily_average_client_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub monthly_limit_usd: Option<Decimal>,
    /// The last 30 days, oldest first, zeros included.
    pub days: Vec<DayPoint>,
    pub by_user: Vec<Breakdown>,
    pub by_model: Vec<Breakdown>,
    /// The month by task kind: `chat` (the users' own messages), each Open WebUI
    /// background task (`title_generation`, ...) and `(unknown)` (the chat app did not
    /// send `X-Mai-Task`); sums to the month.
    pub by_task: Vec<Breakdown>,
    /// Background tasks' share of the client cost of the events whose task is known
    /// (0.25 = a quarter), rounded half up to 4 decimals; `null` when no event of the
    /// month has a known task.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub background_share: Option<Decimal>,
    /// The month by group set (department), `(no group)` included; sums to the month.
    pub by_group: Vec<Breakdown>,
    /// The month's most expensive chats (at most [`TOP_CHATS`]); `(no chat)` is a row
    /// when requests came outside any chat.
    pub top_chats: Vec<Breakdown>,
    /// How many chats (and the `(no chat)` row) the month has in all.
    pub chat_count: u64,
    pub pln: PlnRate,
}

/// Most chats the dashboard lists.
pub const TOP_CHATS: usize = 10;

// ---------------------------------------------------------------------------------------
// Billing

/// Where a client's month stands in billing (mai-billing's report row status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    /// The month is still open: numbers move.
    Provisional,
    /// Closed, complete invoice data, not issued yet.
    ReadyToIssue,
    /// Issued: the numbers are frozen.
    Issued,
    /// Closed, but invoice data is missing (see `missing`).
    MissingData,
    /// Nothing to bill.
    NoUsage,
}

/// An NBP table A mid rate, the rate invoices use (VAT Act art. 31a).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TableARate {
    /// PLN per 1 unit, at NBP's published scale (e.g. `3.9850`).
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub mid: Decimal,
    /// e.g. `247/A/NBP/2025`.
    pub table_no: String,
    pub effective_date: NaiveDate,
}

/// One client's row of the month report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BillingRow {
    pub org_id: String,
    pub name: Option<String>,
    pub status: BillingStatus,
    pub invoice_number: Option<String>,
    /// The month's usage as the ledger has it now.
    pub requests: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    /// Ledger now minus what the issued invoices billed for this month (USD, exact):
    /// positive goes onto the next invoice, negative needs a correction invoice.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub late_usage_usd: Decimal,
    /// What an invoice still lacks.
    pub missing: Vec<String>,
    /// Fees, profit after fees and margins; `None` without an invoice statement (no NBP
    /// rate).
    pub profit: Option<BillingProfit>,
    /// The month's amounts round to 0.00 in the invoice currency: it is not invoiced
    /// (status `no_usage`), its usage is carried or waived per the billing file.
    pub zero_amounts: bool,
}

/// One client's month once OpenRouter's fees are paid (mai-billing's `ClientProfit`,
/// with the statement's net and profit it is taken from, so the UI divides nothing).
/// Margins are percent of the net invoice value in PLN: a 1.3× markup is a 23.08 %
/// margin before fees, not 30 %.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BillingProfit {
    /// The invoice's net value in PLN.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub net_pln: Decimal,
    /// Net − OpenRouter cost − hosting, PLN: the profit before fees.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_pln: Decimal,
    /// The client's usage goes through the operator's own provider keys (BYOK).
    pub byok: bool,
    /// All OpenRouter fees of the client's usage (credit purchase + BYOK), USD, exact.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub fees_usd: Decimal,
    /// The fees at the invoice's USD rate, rounded once.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub fees_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_after_fees_usd: Decimal,
    /// `profit_pln − fees_pln`: what reaches the bank.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_after_fees_pln: Decimal,
    /// `profit_pln / net_pln × 100`, 0.01; `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub margin_before_fees_percent: Option<Decimal>,
    /// `profit_after_fees_pln / net_pln × 100`, 0.01; `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub effective_margin_percent: Option<Decimal>,
}

/// Sums over the rows that have an invoice statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BillingTotals {
    pub requests: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_net_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub net_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub vat_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub gross_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub late_usage_usd: Decimal,
    /// OpenRouter's fees of the rows; `profit_usd` / `profit_pln` above are before them.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub fees_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub fees_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_after_fees_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub profit_after_fees_pln: Decimal,
    /// `profit_pln / net_pln × 100`, 0.01; `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub margin_before_fees_percent: Option<Decimal>,
    /// `profit_after_fees_pln / net_pln × 100`, 0.01; `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub effective_margin_percent: Option<Decimal>,
}

/// `billing_report`: the console's view of mai-billing's month report (its
/// `MonthReport`, converted in one place, `From<&MonthReport>` in mai-billing). The full
/// report also carries each invoice statement, which the console does not show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BillingReport {
    /// `YYYY-MM`.
    pub month: String,
    /// The Warsaw day the report was made on.
    pub today: NaiveDate,
    /// The month has not ended (Warsaw): everything is provisional.
    pub provisional: bool,
    /// The USD rate rows that are not frozen are converted at.
    pub usd_rate: Option<TableARate>,
    /// Why there are no PLN figures for rows that are not frozen.
    pub rate_error: Option<String>,
    pub clients: Vec<BillingRow>,
    pub totals: BillingTotals,
    /// How the month's OpenRouter fee rate was found (recorded purchases, a typical
    /// top-up, or the percentage alone), in words.
    pub fees_basis: String,
    /// The last day to issue the month's invoices (VAT Act art. 106i ust. 1).
    pub issue_deadline: NaiveDate,
    /// Set when invoices are still to be issued and the deadline is near or past.
    pub deadline_warning: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One spreadsheet of the month for all clients.
    Csv,
    /// One PDF invoice per client.
    Pdf,
    /// One KSeF FA(3) XML invoice per client.
    Ksef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CsvDialect {
    /// `;` and decimal comma (Polish spreadsheets).
    #[default]
    Polish,
    /// `,` and decimal dot.
    Plain,
}

/// What the console asks to export (`billing_export`'s `request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct InvoiceExportRequest {
    /// `YYYY-MM`.
    pub month: String,
    pub format: ExportFormat,
    /// One client (org id), or all when absent or empty.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub client: Option<String>,
    /// Default: `~/mai-invoices/YYYY-MM`.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub out_dir: Option<PathBuf>,
    /// Only CSV uses it.
    #[serde(default)]
    pub dialect: CsvDialect,
    /// Issue date of invoices issued by this export. Default: today in Warsaw.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub issue_date: Option<NaiveDate>,
    /// Issue even though the month has usage OpenRouter has not confirmed yet (the
    /// invoice lists those events). Without it such an export is refused, naming them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub allow_unconfirmed: Option<bool>,
}

/// One client's part of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClientExport {
    pub org_id: String,
    pub invoice_number: Option<String>,
    /// Issued by this export (false: issued earlier and rendered again).
    pub newly_issued: bool,
    pub files: Vec<PathBuf>,
    /// Why the client was not exported (e.g. the missing invoice data).
    pub skipped: Option<String>,
}

/// `billing_export`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct InvoiceExportResult {
    pub out_dir: PathBuf,
    pub format: ExportFormat,
    /// Every file written (a CSV export writes one file for all clients).
    pub files: Vec<PathBuf>,
    pub clients: Vec<ClientExport>,
}

/// Progress of an export, for a progress bar: the payload of the
/// `billing-export-progress` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExportProgress {
    Started {
        total: usize,
    },
    Issued {
        number: String,
        org_id: String,
    },
    Wrote {
        path: PathBuf,
        done: usize,
        total: usize,
    },
    Skipped {
        org_id: String,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enums_cross_as_the_words_the_ui_matches_on() {
        assert_eq!(json!(ContainerRole::Tracker), json!("tracker"));
        assert_eq!(json!(ContainerState::Running), json!("running"));
        assert_eq!(json!(SecretKind::OpenRouter), json!("open-router"));
        assert_eq!(json!(SecretKind::TrackerToken), json!("tracker-token"));
        assert_eq!(json!(BillingStatus::MissingData), json!("missing_data"));
        assert_eq!(json!(SyncOutcomeStatus::Unreachable), json!("unreachable"));
        assert_eq!(
            json!(ExportProgress::Started { total: 2 }),
            json!({"event": "started", "total": 2})
        );
    }

    #[test]
    fn docker_words_map_onto_the_closed_sets() {
        for s in [
            ContainerState::Created,
            ContainerState::Running,
            ContainerState::Paused,
            ContainerState::Restarting,
            ContainerState::Removing,
            ContainerState::Stopping,
            ContainerState::Exited,
            ContainerState::Dead,
        ] {
            assert_eq!(ContainerState::from_docker(s.as_str()), s);
        }
        assert_eq!(ContainerState::from_docker(""), ContainerState::Unknown);
        assert_eq!(
            ContainerHealth::from_docker("unhealthy"),
            Some(ContainerHealth::Unhealthy)
        );
        assert_eq!(ContainerHealth::from_docker("none"), None);
        assert_eq!("tracker".parse(), Ok(ContainerRole::Tracker));
        let e = "db".parse::<ContainerRole>().unwrap_err().to_string();
        assert!(e.contains("`db`") && e.contains("chat or tracker"), "{e}");
    }

    #[test]
    fn an_export_request_needs_only_month_and_format() {
        let r: InvoiceExportRequest =
            serde_json::from_value(json!({"month": "2026-11", "format": "pdf"})).unwrap();
        assert_eq!(r.client, None);
        assert_eq!(r.out_dir, None);
        assert_eq!(r.dialect, CsvDialect::Polish);
        assert_eq!(r.issue_date, None);
        let e = serde_json::from_value::<InvoiceExportRequest>(
            json!({"month": "2026-11", "format": "xls"}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("xls"), "{e}");
    }

    #[test]
    fn money_crosses_as_exact_decimal_text() {
        let p = DayPoint {
            date: "2026-11-05".parse().unwrap(),
            requests: 1,
            tokens: 2,
            raw_cost_usd: "0.000123".parse().unwrap(),
            client_cost_usd: "0.0001599".parse().unwrap(),
        };
        let v = json!(p);
        assert_eq!(v["raw_cost_usd"], "0.000123");
        assert_eq!(v["client_cost_usd"], "0.0001599");
        assert_eq!(serde_json::from_value::<DayPoint>(v).unwrap(), p);
    }
}
