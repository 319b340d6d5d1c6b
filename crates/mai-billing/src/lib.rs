//! mai-billing: monthly billing and invoices of mAI Fleet.
//!
//! Per client and month: raw OpenRouter cost (USD, from the ledger), markup segments,
//! net, VAT, gross, PLN at the legal NBP rate (art. 31a: table A mid of the last working
//! day before the tax point), profit, usage counts; invoice numbering; CSV, PDF and KSeF
//! FA(3) exports. Pure pricing lives in [`compute`] and [`correction`]; [`report`] reads
//! the ledger and the store; [`service`] adds the NBP client. Front ends (the console,
//! `maictl`) reach it through mai-ops' `Ops`, which finds its files through the fleet file.
//!
//! Since KSeF an invoice is issued only once KSeF accepted it (art. 106na): billing
//! prepares invoices (number reserved after the FA(3) schema check, XML stored) with
//! [`Billing::prepare_for_ksef`], the KSeF client sends the stored bytes, and the store
//! records what KSeF said ([`BillingStore::record_sent`], `record_accepted`,
//! `record_duplicate`, `record_rejected`). This crate does not talk to KSeF itself.

pub mod compute;
pub mod config;
pub mod correction;
pub mod export;
pub mod fees;
pub mod nip;
pub mod numbering;
pub mod report;
pub mod schema;
pub mod service;
pub mod store;
pub mod validate;

use std::path::PathBuf;

use chrono::NaiveDate;
use mai_core::time::YearMonth;

pub use compute::{Amounts, InvoiceLine, LateUsage, Statement, UnconfirmedEvent, ZeroMonth};
pub use config::{BillingConfig, ClientBilling, LineMode, Seller, VatTreatment};
pub use correction::{CorrectedInvoice, Correction, CorrectionEffect};
pub use report::{
    ClientProblem, ClientRow, InvoiceRates, MonthReport, NotIssued, PrepareOutcome, ReadyInvoice,
    RowStatus,
};
pub use schema::SchemaIssue;
pub use service::{
    Billing, ExportFormat, ExportProgress, ExportRequest, ExportSummary, PrepareRequest,
};
pub use store::{
    BillingStore, InvoiceKind, InvoiceStatusRow, IssuedInvoice, KsefAcceptance, KsefDuplicate,
    KsefEvent, KsefInfo, KsefRejection, KsefState, KsefSubmission, ZeroMonthRecord,
};

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
        "client `{org_id}` already has invoice {number} for {month}; an invoice is never replaced — \
         late usage is corrected by a correction invoice (or carried, with late_usage = \"carry\")"
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
    #[error("no invoice {number} in the billing store; `ksef_status` lists the month's invoices")]
    UnknownInvoice { number: String },
    /// A KSeF answer that does not fit the invoice's state; nothing was recorded.
    #[error("invoice {number}: {detail}")]
    KsefState { number: String, detail: String },
    /// The invoice would not pass KSeF's file and FA(3) schema checks; no number was taken.
    #[error(
        "client `{org_id}`: invoice {number} would be refused by KSeF's FA(3) schema check, so no number was taken: {}",
        issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")
    )]
    InvoiceInvalid {
        org_id: String,
        /// The number it would have had.
        number: String,
        issues: Vec<crate::schema::SchemaIssue>,
    },
}
