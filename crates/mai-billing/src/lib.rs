//! mai-billing: monthly billing and invoices of mAI Fleet.
//!
//! Per client and month: raw OpenRouter cost (USD, from the ledger), markup segments,
//! net, VAT, gross, PLN at the legal NBP rate (art. 31a: table A mid of the last working
//! day before the tax point), profit, usage counts; invoice numbering; CSV, PDF and KSeF
//! FA(3) exports. Pure pricing lives in [`compute`]; [`report`] reads the ledger and the
//! store; [`service`] adds the NBP client. Front ends (the console, `maictl`) reach it
//! through mai-ops' `Ops`, which finds its files through the fleet file.

pub mod compute;
pub mod config;
pub mod export;
pub mod fees;
pub mod nip;
pub mod numbering;
pub mod report;
pub mod service;
pub mod store;
pub mod validate;

use std::path::PathBuf;

use chrono::NaiveDate;
use mai_core::time::YearMonth;

pub use compute::{Amounts, InvoiceLine, Statement, UnconfirmedEvent};
pub use config::{BillingConfig, ClientBilling, LineMode, Seller, VatTreatment};
pub use report::{ClientRow, InvoiceRates, MonthReport, RowStatus};
pub use service::{Billing, ExportFormat, ExportProgress, ExportRequest, ExportSummary};
pub use store::{BillingStore, IssuedInvoice};

/// Errors of billing. Each says what failed, on which input, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("billing config {path}: {detail}")]
    Config { path: PathBuf, detail: String },
    #[error("billing store {path}: {detail}")]
    Store { path: PathBuf, detail: String },
    #[error("usage ledger: {0}")]
    Ledger(#[from] mai_core::ledger::LedgerError),
    /// A sum that does not fit exactly: no invoice with a wrong number.
    #[error("{0}; no invoice was produced")]
    Overflow(#[from] mai_core::usage::Overflow),
    #[error("usage ledger {0} does not exist: billing reads the console's cache ledger, which a sync of the fleet creates")]
    LedgerMissing(PathBuf),
    #[error("{0}; no invoice was produced")]
    Nbp(#[from] mai_core::nbp::NbpError),
    /// An NBP failure outside invoicing (rate look-ups, client setup).
    #[error("{0}")]
    Rate(mai_core::nbp::NbpError),
    #[error(
        "month {month} is still open (it ends {last_day}, today is {today} in Warsaw): its numbers \
         are provisional and invoices can be issued from the next day on"
    )]
    MonthOpen {
        month: YearMonth,
        last_day: NaiveDate,
        today: NaiveDate,
    },
    #[error(
        "client `{org_id}` already has invoice {number} for {month}; issued invoices are frozen — \
         late usage goes onto the next month's invoice"
    )]
    AlreadyIssued {
        org_id: String,
        month: YearMonth,
        number: String,
    },
    #[error(
        "client `{org_id}` is neither in the fleet file nor in the ledger; known clients: {known}"
    )]
    UnknownClient { org_id: String, known: String },
    #[error("writing {path}: {detail}")]
    Export { path: PathBuf, detail: String },
    #[error(
        "PDF font {path}: {detail}; install fonts-dejavu-core or set `pdf_font` in the billing config \
         to a TTF font with Polish letters"
    )]
    Font { path: PathBuf, detail: String },
    /// Invoicing over events OpenRouter has not confirmed would bill them at whatever the
    /// tracker recorded (often $0) without anyone noticing.
    #[error(
        "{month} has {count} unconfirmed (provisional) usage event(s), billed at $0 or an unchecked cost if invoiced now: {detail}. \
         Run a sync (console: Sync; `maictl sync`) so the trackers confirm them with OpenRouter, then issue again; \
         to invoice anyway, pass --allow-unconfirmed (console: \"issue with unconfirmed usage\"): the invoice then lists them"
    )]
    Unconfirmed {
        month: YearMonth,
        count: usize,
        /// Per client: count and the first ids.
        detail: String,
    },
    #[error("{0}")]
    InvalidData(String),
}
