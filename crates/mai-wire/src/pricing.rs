//! Commercial terms: what a client is charged. The fleet file owns them (see
//! ARCHITECTURE.md, "One owner per fact"); the console pushes them to the client's
//! tracker, and every price anywhere is computed from them by `mai_core::pricing`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The product default: OpenRouter cost plus 30%.
pub const DEFAULT_MARKUP: Decimal = Decimal::from_parts(13, 0, 0, false, 1);

/// Markup rates of one client over time: `default_rate` until the first entry, then
/// each entry's rate from its day on (Warsaw days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MarkupSchedule {
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub default_rate: Decimal,
    /// Sorted by day, at most one per day.
    pub entries: Vec<MarkupEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MarkupEntry {
    pub effective_from: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub rate: Decimal,
}

impl Default for MarkupSchedule {
    fn default() -> Self {
        MarkupSchedule::flat(DEFAULT_MARKUP)
    }
}

impl MarkupSchedule {
    pub fn flat(rate: Decimal) -> Self {
        MarkupSchedule {
            default_rate: rate,
            entries: Vec::new(),
        }
    }

    /// Sets the rate from `from` on (replacing an entry on the same day).
    pub fn set(&mut self, from: NaiveDate, rate: Decimal) {
        self.entries.retain(|e| e.effective_from != from);
        self.entries.push(MarkupEntry {
            effective_from: from,
            rate,
        });
        self.entries.sort_by_key(|e| e.effective_from);
    }

    pub fn rate_on(&self, day: NaiveDate) -> Decimal {
        self.entries
            .iter()
            .rev()
            .find(|e| e.effective_from <= day)
            .map_or(self.default_rate, |e| e.rate)
    }
}

/// A stretch of days with one markup rate, with the usage in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MarkupSegment {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub rate: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub client_cost_usd: Decimal,
    pub requests: u64,
}

/// The commercial facts a tracker needs to price its own reports: pushed by the console
/// from the fleet file (`PUT /api/v1/admin/terms`), never configured on the tracker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct CommercialTerms {
    pub markup: MarkupSchedule,
    /// Monthly limit on the client cost (USD), if any.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[ts(type = "string | null")]
    pub monthly_limit_usd: Option<Decimal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum LimitLevel {
    /// Under 80% of the limit.
    Ok,
    /// At or over 80%.
    Warning,
    /// At or over 100%.
    Reached,
}

/// A monthly spending limit (on the client cost) and how much of it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct LimitState {
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub monthly_limit_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub used_usd: Decimal,
    /// Percent used, two decimal places (half-up).
    #[serde(with = "rust_decimal::serde::str")]
    #[ts(type = "string")]
    pub percent_used: Decimal,
    pub level: LimitLevel,
}
