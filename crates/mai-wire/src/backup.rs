//! Backups of the clients' ledgers (mai-ops `ops::backup`): the manifest written next to
//! each backup file, the console's views of them, and the report of a ledger rebuilt
//! without a backup (from the console cache and OpenRouter's `/activity`).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// How a backup file came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// The tracker's own ledger (`GET /api/v1/admin/backup`).
    Tracker,
    /// Rebuilt by the console without a backup (see [`RebuildReport`]).
    Rebuilt,
}

/// One month of a backed-up ledger (Warsaw days, raw OpenRouter cost, exact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MonthTotals {
    /// `YYYY-MM`.
    pub month: String,
    pub events: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub cost_usd: Decimal,
}

/// `<dir>/<client>/<file>.json`, beside the backup `<file>`: what the file is, verified
/// when it was written and again before a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    pub client_id: String,
    /// The org of the ledger's events (the tracker's `MAI_ORG_ID`).
    pub org_id: String,
    pub kind: BackupKind,
    /// The backup's file name (in the same folder as this manifest).
    pub file: String,
    /// Full path of the backup file (as found when listed).
    pub path: String,
    pub taken_at: DateTime<Utc>,
    /// SHA-256, lower-case hex, of the file.
    pub sha256: String,
    pub size_bytes: u64,
    pub events: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub cost_usd: Decimal,
    /// Per month, oldest first.
    pub months: Vec<MonthTotals>,
}

/// A client's backups as the console shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ClientBackups {
    pub client_id: String,
    /// `<dir>/<client>`, `None` when the fleet file has no `[backup]`.
    pub dir: Option<String>,
    /// Newest first.
    pub backups: Vec<BackupManifest>,
    /// The schedule (`[backup] every`, seconds), `None`: on demand only.
    pub every_seconds: Option<u64>,
    pub keep: u32,
    /// Files in the folder that are not usable backups (no or unreadable manifest).
    pub problems: Vec<String>,
    /// This month on the tracker against the console cache (the console asks; `maictl
    /// backup list` does not): how a lost or replaced ledger shows before a restore.
    #[serde(default)]
    pub ledger: Option<LedgerCheck>,
}

/// One month of a client on its tracker and in the console cache. A tracker holding
/// fewer events than the cache lost them (a new volume): restore a backup, with the
/// cache's later events, onto it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct LedgerCheck {
    /// `YYYY-MM` (Warsaw).
    pub month: String,
    /// `None` when the tracker did not answer (`tracker_error` says why).
    pub tracker_events: Option<u64>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub tracker_cost_usd: Option<Decimal>,
    pub tracker_error: Option<String>,
    pub cache_events: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub cache_cost_usd: Decimal,
}

/// One client's outcome of a backup run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct BackupOutcome {
    pub client_id: String,
    pub manifest: Option<BackupManifest>,
    /// What failed and what to do; `None` on success.
    pub error: Option<String>,
    /// Older backups deleted by the retention (`keep`).
    pub pruned: Vec<String>,
}

/// Reply of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RestoreResult {
    pub client_id: String,
    pub file: String,
    pub sha256: String,
    /// Events the tracker holds now.
    pub events: u64,
    pub restored_at: DateTime<Utc>,
    /// Events taken from the console cache because the backup lacks them (usage after
    /// the backup was taken, pulled before the ledger was lost); 0 without `with_cache`.
    #[serde(default)]
    pub from_cache: u64,
}

/// Where a rebuilt day's usage came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DaySource {
    /// The console cache held every request `/activity` counts: exact, with users.
    Cache,
    /// Part or all from `/activity`'s per-model totals: exact money, but no users,
    /// chats or request ids (one aggregate event per model).
    Activity,
    /// Outside `/activity`'s window (older than 30 days, or today): only what the cache
    /// held, which cannot be checked.
    CacheUnverified,
    /// Outside `/activity`'s window and nothing cached: not recoverable.
    Unrecoverable,
}

/// One UTC day of a rebuild (`/activity` counts UTC days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RebuildDay {
    pub date: NaiveDate,
    pub source: DaySource,
    /// Events taken from the cache.
    pub cached_events: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub cached_usd: Decimal,
    /// Requests and cost added from `/activity` (as aggregate events).
    pub activity_requests: u64,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub activity_usd: Decimal,
}

/// A ledger rebuilt without a backup, written as a backup file of kind `rebuilt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RebuildReport {
    pub client_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days, oldest first.
    pub days: Vec<RebuildDay>,
    /// The days that could not be recovered (a summary of `days`).
    pub unrecoverable: Vec<NaiveDate>,
    /// Why `/activity` could not be asked, if it could not (then every day is cache-only).
    pub activity_error: Option<String>,
    pub manifest: BackupManifest,
}
