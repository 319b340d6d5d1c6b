//! Client of the NBP Web API (exchange rates). See shared/specs/nbp-and-invoicing.md.
//!
//! Two rates that must never be confused (spec §2.3), hence two types:
//! - [`InvoiceRate`]: table A mid of the last working day strictly before the reference
//!   date (VAT Act art. 31a). Audited: it carries the table number and date.
//! - [`DisplayRate`]: table C ask, the latest published, for dashboards only; may be
//!   stale (last good value) when NBP is unreachable.

mod cache;
mod client;
pub mod rules;
pub mod wire;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use cache::RateCache;
pub use client::{NbpClient, NbpConfig, DEFAULT_BASE_URL, ENV_BASE_URL};
pub use rules::{invoice_reference_date, invoice_window};

/// The NBP tables this client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Table {
    /// Average (mid) rates: the legal rate for VAT.
    A,
    /// Buy/sell (bid/ask) rates: display only.
    C,
}

impl Table {
    pub fn letter(self) -> &'static str {
        match self {
            Table::A => "A",
            Table::C => "C",
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.letter())
    }
}

/// The legal conversion rate of an invoice (art. 31a): kept with the invoice for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRate {
    /// ISO 4217 code, upper case (e.g. `USD`).
    pub code: String,
    /// Table A mid, per 1 unit, at NBP's published scale (e.g. `3.9850`).
    pub mid: Decimal,
    /// NBP table number, e.g. `247/A/NBP/2025`.
    pub table_no: String,
    /// Date of that table (the last working day before `reference_date`).
    pub effective_date: NaiveDate,
    /// The date the rule was applied to: the tax point, or an earlier issue date.
    pub reference_date: NaiveDate,
}

/// A rate for dashboards. Never use it on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayRate {
    pub code: String,
    /// Table C sell rate (what a dashboard shows as "the rate").
    pub ask: Decimal,
    /// Table C buy rate.
    pub bid: Decimal,
    pub table_no: String,
    pub effective_date: NaiveDate,
    /// When this value was fetched from NBP.
    pub fetched_at: DateTime<Utc>,
    /// True when NBP could not be reached and this is the last good value.
    pub stale: bool,
}

/// Errors of the NBP client. Each names the table and dates that were needed.
#[derive(Debug, thiserror::Error)]
pub enum NbpError {
    #[error(
        "no NBP table {table} rate for {code}: {needed}; NBP published no table {table} \
         between {from} and {to}. Check the date (NBP history starts 2002-01-02) or retry \
         after NBP publishes"
    )]
    NoRate {
        table: Table,
        code: String,
        needed: String,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error(
        "the {code} invoice rate for reference date {reference} (table A mid of the last working \
         day before it) is not final yet: today is {today} in Warsaw and that day's table may still \
         be published. Ask again on or after {reference}"
    )]
    NotFinal {
        code: String,
        reference: NaiveDate,
        today: NaiveDate,
    },
    #[error(
        "NBP unreachable: could not get table {table} {code} for {needed} (dates {from}..{to}) \
         from {url} after {attempts} attempt(s): {last_error}. Check the network or \
         NBP_BASE_URL and retry"
    )]
    Unavailable {
        table: Table,
        code: String,
        needed: String,
        from: NaiveDate,
        to: NaiveDate,
        url: String,
        attempts: u32,
        last_error: String,
    },
    #[error(
        "NBP rejected {url} with HTTP {status} ({body}) while fetching {needed}; the request \
         is malformed, which is a bug: report it with this message"
    )]
    Rejected {
        url: String,
        status: u16,
        body: String,
        needed: String,
    },
    #[error(
        "invalid currency code `{0}` for an NBP rate: give a 3-letter ISO code such as USD or \
         EUR (PLN needs no rate)"
    )]
    InvalidCode(String),
    #[error(
        "invalid NBP base URL `{value}`: {reason}. Set it in the config or NBP_BASE_URL, e.g. \
         https://api.nbp.pl/api"
    )]
    BaseUrl { value: String, reason: String },
    #[error("NBP rate cache: {0}")]
    Cache(String),
    #[error("could not build the HTTP client for NBP: {0}")]
    Http(String),
}

/// Normalises and checks a currency code for NBP (`usd` → `USD`).
pub fn normalise_code(code: &str) -> Result<String, NbpError> {
    let c = code.trim().to_ascii_uppercase();
    if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) || c == "PLN" {
        return Err(NbpError::InvalidCode(code.to_string()));
    }
    Ok(c)
}
