//! The fleet overview: totals across clients, month-end projections, and usage exports
//! (`fleet_overview`, `usage_export`). mai-ops computes every figure (`ops::overview`,
//! `ops::usage_export`); these are only the shapes that cross to the UI and `maictl`.

use std::path::PathBuf;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::console::{FleetRow, PlnRate};

/// Where a month's spend is heading at its pace so far (`ops::overview::project`): the
/// month-to-date client cost divided by the elapsed fraction of the Warsaw month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Projection {
    /// Client cost (USD) of the Warsaw month so far.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub month_to_date_usd: Decimal,
    /// Month-end client cost at the pace so far, USD rounded half up to 6 decimals;
    /// `null` at the very first instant of the month (no pace yet).
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub projected_usd: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub monthly_limit_usd: Option<Decimal>,
    /// `projected / limit × 100`, two decimals; `null` without a limit, a zero limit or a
    /// projection.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub projected_percent_of_limit: Option<Decimal>,
    /// The limit is already used up (a zero limit with any spend included).
    pub limit_reached: bool,
    /// The Warsaw day the limit will be reached at the pace so far, when that falls in
    /// this month and the limit is not reached yet.
    pub exceeds_on: Option<NaiveDate>,
}

/// An amount in USD (exact) and in PLN at the display rate (rounded half up to the
/// grosz), when a display rate is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UsdPln {
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub usd: Decimal,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub pln: Option<Decimal>,
}

/// The OpenRouter account's credits (`GET /credits` with the management key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AccountCredits {
    pub available: bool,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub total_credits_usd: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub total_usage_usd: Option<Decimal>,
    /// `total_credits − total_usage` (OpenRouter has no balance field).
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub remaining_usd: Option<Decimal>,
    /// Why there are no credits figures (no management key, OpenRouter's answer, ...).
    pub error: Option<String>,
    /// OpenRouter has not answered yet (the fleet view shows its rows without waiting
    /// for it, and asks again shortly); `available` is false.
    #[serde(default)]
    pub pending: bool,
}

impl AccountCredits {
    pub fn unavailable(error: String) -> AccountCredits {
        AccountCredits {
            available: false,
            total_credits_usd: None,
            total_usage_usd: None,
            remaining_usd: None,
            error: Some(error),
            pending: false,
        }
    }

    /// OpenRouter asked, its answer not in yet.
    pub fn pending() -> AccountCredits {
        AccountCredits {
            pending: true,
            ..AccountCredits::unavailable("asking OpenRouter for the account's credits".into())
        }
    }
}

/// Totals across the fleet's clients (`ops::overview::fleet_totals`). Profit is the
/// client cost minus the OpenRouter cost, before OpenRouter's fees and hosting (billing
/// shows those). Only rows with all four figures from a snapshot of today's Warsaw day
/// are summed; the others are named in `missing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FleetTotals {
    /// The Warsaw day "today" means.
    pub day: NaiveDate,
    /// `YYYY-MM`, the Warsaw month "month to date" means.
    pub month: String,
    pub clients: u32,
    /// Clients whose numbers are summed (the others have none yet or a pricing error).
    pub clients_counted: u32,
    /// Client ids left out of the sums.
    pub missing: Vec<String>,
    pub today_client_cost: UsdPln,
    pub today_openrouter_cost: UsdPln,
    pub today_profit: UsdPln,
    pub month_client_cost: UsdPln,
    pub month_openrouter_cost: UsdPln,
    pub month_profit: UsdPln,
    /// The display rate used for every `pln` above (NBP table C ask, date, stale flag).
    pub pln: PlnRate,
    pub credits: AccountCredits,
    /// The fleet's month-end client cost at its pace so far; its limit is the sum of the
    /// clients' limits when every counted client has one.
    pub projection: Projection,
}

/// `fleet_overview`: the fleet table and its totals from one refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FleetOverview {
    pub rows: Vec<FleetRow>,
    pub totals: FleetTotals,
}

/// What a usage export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum UsageExportKind {
    /// One row per request (generation).
    Events,
    /// One row per Warsaw day of the month, zeros included.
    Daily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum UsageExportFormat {
    /// RFC 4180: comma, CRLF, header row, exact decimals as text.
    Csv,
    /// One object `{client, month, kind, columns, rows}`, money as decimal strings.
    Json,
}

/// `usage_export`'s request: one client's month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UsageExportRequest {
    pub client: String,
    /// `YYYY-MM` (Warsaw month).
    pub month: String,
    pub kind: UsageExportKind,
    pub format: UsageExportFormat,
    /// The file to write (the user picked it). Default:
    /// `~/mai-usage/<client>-<YYYY-MM>-<kind>.<csv|json>`.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub path: Option<PathBuf>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UsageExportResult {
    pub client: String,
    pub month: String,
    pub kind: UsageExportKind,
    pub format: UsageExportFormat,
    pub path: Option<PathBuf>,
    pub rows: u64,
    /// Sum of the rows' raw (OpenRouter) cost, exact.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    /// Sum of the rows' client cost, exact.
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
    /// The tracker could not be asked for new events first: the export is what the
    /// console cache held.
    pub pull_error: Option<String>,
}

/// Payload of the `usage-export-progress` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UsageExportProgress {
    pub client: String,
    pub done: u64,
    pub total: u64,
}
