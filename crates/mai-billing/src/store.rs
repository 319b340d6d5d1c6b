//! The billing store (SQLite): every invoice from the moment its number is reserved, its
//! KSeF state, and the append-only history of what happened to it in KSeF.
//!
//! Since 1 April 2026 an invoice exists only once KSeF accepted it (art. 106na), so the
//! store keeps a state per invoice (README, "Numbering"):
//!
//! - `prepared`: every check passed (data, FA(3) schema), the number is reserved and the
//!   XML is stored; these bytes are what is sent, as often as needed, until KSeF decides;
//! - `sent`: KSeF took it (session and invoice reference numbers), verdict pending;
//! - `accepted`: KSeF number, acquisition date, UPO; frozen from then on;
//! - `rejected`: KSeF's code, description and details; KSeF never registered the number,
//!   so the invoice is rendered again from the fixed data under the same number;
//! - `legacy`: issued before KSeF (billing store version 1); frozen.
//!
//! Numbers are allocated per seller, series (VAT, KOR) and year in the transaction that
//! stores the invoice, after its XML passed the schema with that very number: a refused
//! invoice takes no number, and a reserved number is never given to another invoice, so
//! the accepted invoices end up numbered without gaps. SQLite triggers refuse deleting an
//! invoice, changing its number, changing an accepted one, changing what was sent, and any
//! state change outside the machine above.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use mai_core::time::YearMonth;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compute::{Statement, ZeroMonth};
use crate::config::{ClientBilling, Seller};
use crate::correction::Correction;
use crate::numbering::NumberFormat;
use crate::BillingError;

const SCHEMA_VERSION: i64 = 2;

/// FA(3) `RodzajFaktury` of what we issue; also the numbering series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InvoiceKind {
    #[serde(rename = "VAT")]
    Vat,
    #[serde(rename = "KOR")]
    Kor,
}

impl InvoiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Vat => "VAT",
            InvoiceKind::Kor => "KOR",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "VAT" => Some(InvoiceKind::Vat),
            "KOR" => Some(InvoiceKind::Kor),
            _ => None,
        }
    }
}

impl std::fmt::Display for InvoiceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an invoice is in its life (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsefState {
    Legacy,
    Prepared,
    Sent,
    Accepted,
    Rejected,
}

impl KsefState {
    pub fn as_str(self) -> &'static str {
        match self {
            KsefState::Legacy => "legacy",
            KsefState::Prepared => "prepared",
            KsefState::Sent => "sent",
            KsefState::Accepted => "accepted",
            KsefState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "legacy" => KsefState::Legacy,
            "prepared" => KsefState::Prepared,
            "sent" => KsefState::Sent,
            "accepted" => KsefState::Accepted,
            "rejected" => KsefState::Rejected,
            _ => return None,
        })
    }

    /// An invoice in law: accepted by KSeF, or issued before KSeF.
    pub fn is_issued(self) -> bool {
        matches!(self, KsefState::Accepted | KsefState::Legacy)
    }
}

impl std::fmt::Display for KsefState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The KSeF side of a stored invoice, as needed to show it (PDF: KSeF number and the QR
/// code, which hashes the XML exactly as sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsefInfo {
    pub state: KsefState,
    pub ksef_number: Option<String>,
    pub acquired_at: Option<DateTime<Utc>>,
    /// SHA-256 (hex) of the stored XML, the bytes sent; `None` for legacy invoices.
    pub xml_sha256: Option<String>,
}

/// An invoice as stored: everything needed to render it again identically. Issued (an
/// invoice in law) only when `ksef.state` [`KsefState::is_issued`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedInvoice {
    pub number: String,
    /// Position in the seller's sequence of this kind for `year`.
    pub seq: u32,
    pub year: i32,
    pub kind: InvoiceKind,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub seller: Seller,
    pub buyer: ClientBilling,
    /// A VAT invoice's content; for a correction, the month's state after it.
    pub statement: Statement,
    /// Set on corrections (KOR): what is corrected and the state before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
    /// Read from the store's columns, never from the stored document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ksef: Option<KsefInfo>,
}

impl IssuedInvoice {
    /// A file-name-safe form of the number (`FV/2026/11/0007` → `FV_2026_11_0007`).
    pub fn file_stem(&self) -> String {
        self.number
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    pub fn state(&self) -> Option<KsefState> {
        self.ksef.as_ref().map(|k| k.state)
    }

    pub fn is_issued(&self) -> bool {
        self.state().is_some_and(KsefState::is_issued)
    }
}

/// What to store; the store adds the number.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub kind: InvoiceKind,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub seller: Seller,
    pub buyer: ClientBilling,
    pub statement: Statement,
    pub correction: Option<Correction>,
}

/// KSeF took the invoice: the references of its session and of the invoice in it, and
/// the SHA-256 (hex) of the bytes sent, which must be the stored ones (the QR code on the
/// invoice's visualisation hashes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsefSubmission {
    pub session_ref: String,
    pub invoice_ref: String,
    pub xml_sha256: String,
}

/// KSeF accepted the invoice (status 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsefAcceptance {
    pub ksef_number: String,
    pub acquisition_date: DateTime<Utc>,
    pub session_ref: String,
    pub invoice_ref: String,
    /// The UPO, when already downloaded ([`BillingStore::record_upo`] adds it later).
    pub upo_xml: Option<String>,
}

/// KSeF answered 440 (duplicate) for our own number: it accepted this invoice before and
/// the answer was lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsefDuplicate {
    /// `extensions.originalKsefNumber`.
    pub original_ksef_number: String,
    /// `extensions.originalSessionReferenceNumber`.
    pub original_session_ref: Option<String>,
    /// The attempt that got the 440.
    pub session_ref: Option<String>,
    pub invoice_ref: Option<String>,
    pub description: String,
}

/// KSeF did not register the invoice: its verdict (status 4xx other than 440, or a
/// send-time refusal such as 21405). Not for transport errors: those leave the invoice
/// as it was, to be sent again as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsefRejection {
    pub code: i32,
    pub description: String,
    pub details: Vec<String>,
    pub session_ref: Option<String>,
    pub invoice_ref: Option<String>,
}

/// One invoice's KSeF status, for lists (`ksef_status`, `awaiting_ksef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceStatusRow {
    pub number: String,
    pub kind: InvoiceKind,
    pub org_id: String,
    /// The month billed (a correction's: the corrected month).
    pub month: YearMonth,
    pub issue_date: NaiveDate,
    pub state: KsefState,
    /// The corrected invoice's number (corrections).
    pub corrects: Option<String>,
    pub xml_sha256: Option<String>,
    pub ksef_number: Option<String>,
    pub acquired_at: Option<DateTime<Utc>>,
    pub session_ref: Option<String>,
    pub invoice_ref: Option<String>,
    pub has_upo: bool,
    /// The last rejection, while the invoice is `rejected`.
    pub rejection: Option<KsefRejection>,
    /// How many times it was handed to KSeF.
    pub attempts: u32,
}

/// One entry of an invoice's KSeF history (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsefEvent {
    pub at: DateTime<Utc>,
    /// `legacy`, `prepared`, `sent`, `accepted`, `duplicate`, `rejected`, `upo`.
    pub event: String,
    pub xml_sha256: Option<String>,
    pub session_ref: Option<String>,
    pub invoice_ref: Option<String>,
    pub ksef_number: Option<String>,
    pub code: Option<i32>,
    pub description: Option<String>,
    pub details: Vec<String>,
}

/// A month whose amounts rounded to 0.00 and that was therefore not invoiced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroMonthRecord {
    pub org_id: String,
    pub month: YearMonth,
    pub decision: ZeroMonth,
    /// The month's raw cost when decided (USD, exact): carried, or waived.
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_usd: Decimal,
    pub requests: u64,
    pub decided_at: DateTime<Utc>,
}

pub struct BillingStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for BillingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Version 1: invoices issued locally, frozen on insert.
const MIGRATION_1: &str = "
CREATE TABLE invoice (
    number TEXT PRIMARY KEY,
    seller_nip TEXT NOT NULL,
    year INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    org_id TEXT NOT NULL,
    month TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (seller_nip, year, seq)
);
CREATE UNIQUE INDEX invoice_one_vat_per_client_month
    ON invoice (org_id, month) WHERE kind = 'VAT';
CREATE TRIGGER invoice_no_update BEFORE UPDATE ON invoice
    BEGIN SELECT RAISE(ABORT, 'issued invoices cannot be changed'); END;
CREATE TRIGGER invoice_no_delete BEFORE DELETE ON invoice
    BEGIN SELECT RAISE(ABORT, 'issued invoices cannot be deleted'); END;
PRAGMA user_version = 1;
";

/// Version 2: KSeF states, a series per kind, the submission history, zero months. The
/// invoices of version 1 become `legacy` (issued before KSeF), unchanged.
const MIGRATION_2: &str = "
CREATE TABLE invoice_v2 (
    number TEXT PRIMARY KEY,
    seller_nip TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('VAT', 'KOR')),
    year INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    org_id TEXT NOT NULL,
    month TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('legacy', 'prepared', 'sent', 'accepted', 'rejected')),
    corrects TEXT,
    xml BLOB,
    xml_sha256 TEXT,
    ksef_number TEXT UNIQUE,
    ksef_acquired_at TEXT,
    ksef_session_ref TEXT,
    ksef_invoice_ref TEXT,
    upo_xml TEXT,
    rejection TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (seller_nip, kind, year, seq)
);
INSERT INTO invoice_v2 (number, seller_nip, kind, year, seq, org_id, month, issue_date,
                        created_at, doc, state, updated_at)
    SELECT number, seller_nip, kind, year, seq, org_id, month, issue_date, created_at, doc,
           'legacy', created_at
    FROM invoice;
DROP TRIGGER invoice_no_update;
DROP TRIGGER invoice_no_delete;
DROP INDEX invoice_one_vat_per_client_month;
DROP TABLE invoice;
ALTER TABLE invoice_v2 RENAME TO invoice;
CREATE UNIQUE INDEX invoice_one_vat_per_client_month
    ON invoice (org_id, month) WHERE kind = 'VAT';
-- One correction of a month at a time: the next one starts from the accepted state.
CREATE UNIQUE INDEX invoice_one_open_correction
    ON invoice (org_id, month) WHERE kind = 'KOR' AND state IN ('prepared', 'sent', 'rejected');
CREATE INDEX invoice_by_org ON invoice (org_id, month);
CREATE TRIGGER invoice_no_delete BEFORE DELETE ON invoice
    BEGIN SELECT RAISE(ABORT, 'invoices cannot be deleted: a reserved number stays reserved'); END;
CREATE TRIGGER invoice_identity_fixed
    BEFORE UPDATE OF number, seller_nip, kind, year, seq, org_id, month, corrects ON invoice
    BEGIN SELECT RAISE(ABORT, 'an invoice''s number and identity cannot be changed'); END;
CREATE TRIGGER invoice_issued_frozen BEFORE UPDATE ON invoice
    WHEN OLD.state IN ('accepted', 'legacy') AND NOT (
        OLD.upo_xml IS NULL AND NEW.upo_xml IS NOT NULL AND NEW.state = OLD.state
        AND NEW.doc IS OLD.doc AND NEW.xml IS OLD.xml AND NEW.xml_sha256 IS OLD.xml_sha256
        AND NEW.issue_date IS OLD.issue_date AND NEW.created_at IS OLD.created_at
        AND NEW.ksef_number IS OLD.ksef_number AND NEW.ksef_acquired_at IS OLD.ksef_acquired_at
        AND NEW.ksef_session_ref IS OLD.ksef_session_ref
        AND NEW.ksef_invoice_ref IS OLD.ksef_invoice_ref AND NEW.rejection IS OLD.rejection)
    BEGIN SELECT RAISE(ABORT, 'issued invoices cannot be changed (accepted by KSeF, or issued before KSeF)'); END;
CREATE TRIGGER invoice_content_only_after_rejection BEFORE UPDATE ON invoice
    WHEN (NEW.doc IS NOT OLD.doc OR NEW.xml IS NOT OLD.xml OR NEW.xml_sha256 IS NOT OLD.xml_sha256
          OR NEW.issue_date IS NOT OLD.issue_date)
         AND OLD.state IN ('prepared', 'sent')
    BEGIN SELECT RAISE(ABORT, 'an invoice''s content changes only after KSeF rejected it: the bytes stored are the bytes sent'); END;
CREATE TRIGGER invoice_state_machine BEFORE UPDATE OF state ON invoice
    WHEN NEW.state IS NOT OLD.state AND OLD.state NOT IN ('accepted', 'legacy') AND NOT (
        (OLD.state = 'prepared' AND NEW.state IN ('sent', 'accepted', 'rejected'))
        OR (OLD.state = 'sent' AND NEW.state IN ('accepted', 'rejected'))
        OR (OLD.state = 'rejected' AND NEW.state = 'prepared'))
    BEGIN SELECT RAISE(ABORT, 'invalid KSeF state change'); END;

CREATE TABLE ksef_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT NOT NULL,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    xml_sha256 TEXT,
    session_ref TEXT,
    invoice_ref TEXT,
    ksef_number TEXT,
    code INTEGER,
    description TEXT,
    details TEXT
);
CREATE INDEX ksef_event_by_number ON ksef_event (number, id);
CREATE TRIGGER ksef_event_no_update BEFORE UPDATE ON ksef_event
    BEGIN SELECT RAISE(ABORT, 'the KSeF history is append-only'); END;
CREATE TRIGGER ksef_event_no_delete BEFORE DELETE ON ksef_event
    BEGIN SELECT RAISE(ABORT, 'the KSeF history is append-only'); END;
INSERT INTO ksef_event (number, at, event, description)
    SELECT number, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'legacy',
           'issued before KSeF (billing store version 1)'
    FROM invoice;

CREATE TABLE zero_month (
    org_id TEXT NOT NULL,
    month TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('carry', 'waive')),
    raw_cost_usd TEXT NOT NULL,
    requests INTEGER NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (org_id, month)
);
CREATE TRIGGER zero_month_no_update BEFORE UPDATE ON zero_month
    BEGIN SELECT RAISE(ABORT, 'zero-month decisions cannot be changed'); END;
CREATE TRIGGER zero_month_no_delete BEFORE DELETE ON zero_month
    BEGIN SELECT RAISE(ABORT, 'zero-month decisions cannot be deleted'); END;
PRAGMA user_version = 2;
";

const MIGRATIONS: [&str; 2] = [MIGRATION_1, MIGRATION_2];

/// The columns [`BillingStore::read`] expects, in order.
const INVOICE_COLUMNS: &str = "number, doc, state, xml_sha256, ksef_number, ksef_acquired_at";

/// SHA-256 of the XML, hex: how the store names the bytes sent.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> DateTime<Utc> {
    // Whole seconds: the timestamps are written as RFC 3339 text and read back equal.
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What the record functions need to know of a row.
struct RowState {
    state: KsefState,
    seller_nip: String,
    ksef_number: Option<String>,
    xml_sha256: Option<String>,
    session_ref: Option<String>,
    invoice_ref: Option<String>,
    upo: Option<String>,
}

/// An event to append to an invoice's history.
#[derive(Default)]
struct Event<'a> {
    event: &'a str,
    xml_sha256: Option<&'a str>,
    session_ref: Option<&'a str>,
    invoice_ref: Option<&'a str>,
    ksef_number: Option<&'a str>,
    code: Option<i32>,
    description: Option<&'a str>,
    details: &'a [String],
}

fn append_event(
    tx: &Transaction<'_>,
    number: &str,
    at: &str,
    e: &Event<'_>,
) -> rusqlite::Result<()> {
    let details = if e.details.is_empty() {
        None
    } else {
        serde_json::to_string(e.details).ok()
    };
    tx.execute(
        "INSERT INTO ksef_event (number, at, event, xml_sha256, session_ref, invoice_ref,
                                 ksef_number, code, description, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            number,
            at,
            e.event,
            e.xml_sha256,
            e.session_ref,
            e.invoice_ref,
            e.ksef_number,
            e.code,
            e.description,
            details
        ],
    )?;
    Ok(())
}

/// Checks the shape KSeF gives its numbers (`{seller NIP}-{YYYYMMDD}-{12 hex}-{2 hex}`)
/// and that it is this seller's: a number mapped from the wrong field or invoice is
/// refused before it is frozen into the store. The CRC is KSeF's business.
fn check_ksef_number(number: &str, seller_nip: &str, ksef: &str) -> Result<(), BillingError> {
    let parts: Vec<&str> = ksef.split('-').collect();
    let ok = ksef.len() == 35
        && parts.len() == 4
        && parts[0] == seller_nip
        && NaiveDate::parse_from_str(parts[1], "%Y%m%d").is_ok()
        && parts[2].len() == 12
        && parts[3].len() == 2
        && parts[2..].iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        });
    if ok {
        Ok(())
    } else {
        Err(BillingError::KsefState {
            number: number.to_string(),
            detail: format!(
                "`{ksef}` is not a KSeF number of seller {seller_nip} (expected {seller_nip}-YYYYMMDD-XXXXXXXXXXXX-XX); \
                 nothing was recorded: check which field the KSeF answer was read from"
            ),
        })
    }
}

impl BillingStore {
    pub fn open(path: &Path) -> Result<Self, BillingError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| BillingError::Store {
                    path: path.to_path_buf(),
                    detail: format!("cannot create its folder: {e}"),
                })?;
            }
        }
        let conn = Connection::open(path).map_err(|e| BillingError::Store {
            path: path.to_path_buf(),
            detail: format!("cannot open it: {e}"),
        })?;
        Self::init(conn, path.to_path_buf())
    }

    pub fn open_in_memory() -> Result<Self, BillingError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| BillingError::Store {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        Self::init(conn, path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> BillingError {
        BillingError::Store {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, BillingError> {
        let mut s = Self { conn, path };
        let _ = s.conn.pragma_update(None, "journal_mode", "WAL");
        s.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| s.err(e))?;
        let version: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| s.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(s.err(format!(
                "schema version {version} is newer than this program ({SCHEMA_VERSION}); upgrade mAI Fleet"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let to = i as i64 + 1;
            if version >= to {
                continue;
            }
            let tx = s
                .conn
                .transaction_with_behavior(TransactionBehavior::Exclusive)
                .map_err(|e| BillingError::Store {
                    path: s.path.clone(),
                    detail: e.to_string(),
                })?;
            // Another process may have migrated meanwhile.
            let now: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(|e| BillingError::Store {
                    path: s.path.clone(),
                    detail: e.to_string(),
                })?;
            if now < to {
                tx.execute_batch(sql).map_err(|e| BillingError::Store {
                    path: s.path.clone(),
                    detail: format!(
                        "upgrading to schema version {to}: {e}; the file was left as it was"
                    ),
                })?;
                if to == 2 && version >= 1 {
                    tracing::info!(path = %s.path.display(), "billing store upgraded to version 2: earlier invoices are kept as issued before KSeF (legacy)");
                }
            }
            tx.commit().map_err(|e| BillingError::Store {
                path: s.path.clone(),
                detail: e.to_string(),
            })?;
        }
        Ok(s)
    }

    /// Reserves the next number of `new.kind`'s series (per seller and year of the issue
    /// date) and stores the invoice as `prepared`, in one transaction, only if `render`
    /// (FA(3) XML with that number, schema-checked) succeeds: a refused invoice takes no
    /// number. The bytes `render` returns are stored and are what is sent to KSeF.
    pub fn prepare(
        &mut self,
        format: &NumberFormat,
        new: NewInvoice,
        render: &mut dyn FnMut(&IssuedInvoice) -> Result<Vec<u8>, BillingError>,
    ) -> Result<IssuedInvoice, BillingError> {
        let path = self.path.clone();
        let err = |e: &dyn std::fmt::Display| BillingError::Store {
            path: path.clone(),
            detail: e.to_string(),
        };
        let seller_nip = crate::nip::normalise_nip(&new.seller.nip)
            .map_err(|e| BillingError::InvalidData(format!("seller NIP: {e}")))?;
        let year = new.issue_date.year();
        let org = new.statement.org_id.clone();
        let month = new.statement.month;
        let month_key = month.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(&e))?;
        match new.kind {
            InvoiceKind::Vat => {
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT number FROM invoice WHERE org_id = ?1 AND month = ?2 AND kind = 'VAT'",
                        params![org, month_key],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| err(&e))?;
                if let Some(number) = existing {
                    return Err(BillingError::AlreadyIssued {
                        org_id: org,
                        month,
                        number,
                    });
                }
            }
            InvoiceKind::Kor => {
                let open: Option<(String, String)> = tx
                    .query_row(
                        "SELECT number, state FROM invoice WHERE org_id = ?1 AND month = ?2 AND kind = 'KOR'
                         AND state IN ('prepared', 'sent', 'rejected')",
                        params![org, month_key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(|e| err(&e))?;
                if let Some((number, state)) = open {
                    return Err(BillingError::KsefState {
                        number,
                        detail: format!(
                            "a correction of client `{org}` for {month} is still {state}; the next correction starts \
                             from the state KSeF accepted, so that one must be accepted first"
                        ),
                    });
                }
            }
        }
        let last: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM invoice WHERE seller_nip = ?1 AND kind = ?2 AND year = ?3",
                params![seller_nip, new.kind.as_str(), year],
                |r| r.get(0),
            )
            .map_err(|e| err(&e))?;
        let seq = u32::try_from(last + 1).map_err(|e| err(&e))?;
        let number = format.render(year, new.issue_date.month(), seq);
        let taken: Option<String> = tx
            .query_row(
                "SELECT kind FROM invoice WHERE number = ?1",
                params![number],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| err(&e))?;
        if let Some(kind) = taken {
            return Err(BillingError::InvalidData(format!(
                "invoice number `{number}` is already used by a {kind} invoice: each number format must give unique \
                 numbers per year (keep {{seq}} and {{yyyy}} in it) and the correction format must differ from the invoice format"
            )));
        }
        let created_at = now();
        let mut inv = IssuedInvoice {
            number: number.clone(),
            seq,
            year,
            kind: new.kind,
            issue_date: new.issue_date,
            due_date: new.due_date,
            created_at,
            seller: new.seller,
            buyer: new.buyer,
            statement: new.statement,
            correction: new.correction,
            ksef: None,
        };
        // On error the transaction is dropped, i.e. rolled back: no number is used.
        let xml = render(&inv)?;
        let sha = sha256_hex(&xml);
        let doc = serde_json::to_string(&inv).map_err(|e| err(&e))?;
        let at = ts(created_at);
        tx.execute(
            "INSERT INTO invoice (number, seller_nip, kind, year, seq, org_id, month, issue_date, created_at,
                                  doc, state, corrects, xml, xml_sha256, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'prepared', ?11, ?12, ?13, ?9)",
            params![
                number,
                seller_nip,
                inv.kind.as_str(),
                year,
                seq,
                org,
                month_key,
                inv.issue_date.to_string(),
                at,
                doc,
                inv.correction.as_ref().map(|c| c.corrected.number.clone()),
                xml,
                sha
            ],
        )
        .map_err(|e| err(&e))?;
        append_event(
            &tx,
            &number,
            &at,
            &Event {
                event: "prepared",
                xml_sha256: Some(&sha),
                description: Some("number reserved; XML valid against FA(3)"),
                ..Event::default()
            },
        )
        .map_err(|e| err(&e))?;
        tx.commit().map_err(|e| err(&e))?;
        tracing::info!(number = %number, org = %org, month = %month, kind = %inv.kind, "invoice prepared for KSeF");
        inv.ksef = Some(KsefInfo {
            state: KsefState::Prepared,
            ksef_number: None,
            acquired_at: None,
            xml_sha256: Some(sha),
        });
        Ok(inv)
    }

    /// Renders a rejected invoice again from fixed data (`new`: same kind, client and
    /// month) under its reserved number and issue date, and makes it `prepared` again. KSeF
    /// never registered a rejected invoice, so its number was never used. On a render error
    /// nothing changes.
    pub fn reprepare(
        &mut self,
        number: &str,
        new: NewInvoice,
        render: &mut dyn FnMut(&IssuedInvoice) -> Result<Vec<u8>, BillingError>,
    ) -> Result<IssuedInvoice, BillingError> {
        let current = self
            .get(number)?
            .ok_or_else(|| BillingError::UnknownInvoice {
                number: number.to_string(),
            })?;
        if current.state() != Some(KsefState::Rejected) {
            return Err(BillingError::KsefState {
                number: number.to_string(),
                detail: format!(
                    "it is {}; only an invoice KSeF rejected is rendered again",
                    current.state().map(KsefState::as_str).unwrap_or("unknown")
                ),
            });
        }
        if new.kind != current.kind
            || new.statement.org_id != current.statement.org_id
            || new.statement.month != current.statement.month
        {
            return Err(BillingError::InvalidData(format!(
                "invoice {number} is the {} of client `{}` for {}; it cannot be re-rendered as another invoice",
                current.kind, current.statement.org_id, current.statement.month
            )));
        }
        let created_at = now();
        let mut inv = IssuedInvoice {
            created_at,
            seller: new.seller,
            buyer: new.buyer,
            statement: new.statement,
            correction: new.correction,
            ksef: None,
            ..current
        };
        let xml = render(&inv)?;
        let sha = sha256_hex(&xml);
        let path = self.path.clone();
        let err = |e: &dyn std::fmt::Display| BillingError::Store {
            path: path.clone(),
            detail: e.to_string(),
        };
        let doc = serde_json::to_string(&inv).map_err(|e| err(&e))?;
        let at = ts(created_at);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(&e))?;
        let changed = tx
            .execute(
                "UPDATE invoice SET doc = ?2, xml = ?3, xml_sha256 = ?4, created_at = ?5, updated_at = ?5,
                     state = 'prepared', rejection = NULL, ksef_session_ref = NULL, ksef_invoice_ref = NULL
                 WHERE number = ?1 AND state = 'rejected'",
                params![number, doc, xml, sha, at],
            )
            .map_err(|e| err(&e))?;
        if changed != 1 {
            return Err(BillingError::KsefState {
                number: number.to_string(),
                detail:
                    "its state changed while it was being rendered again; run the preparation again"
                        .into(),
            });
        }
        append_event(
            &tx,
            number,
            &at,
            &Event {
                event: "prepared",
                xml_sha256: Some(&sha),
                description: Some(
                    "rendered again from fixed data after KSeF rejected it; same number",
                ),
                ..Event::default()
            },
        )
        .map_err(|e| err(&e))?;
        tx.commit().map_err(|e| err(&e))?;
        tracing::info!(
            number,
            "rejected invoice prepared again under the same number"
        );
        inv.ksef = Some(KsefInfo {
            state: KsefState::Prepared,
            ksef_number: None,
            acquired_at: None,
            xml_sha256: Some(sha),
        });
        Ok(inv)
    }

    fn row_state(tx: &Transaction<'_>, number: &str) -> Result<Option<RowState>, rusqlite::Error> {
        tx.query_row(
            "SELECT state, seller_nip, ksef_number, xml_sha256, ksef_session_ref, ksef_invoice_ref, upo_xml
             FROM invoice WHERE number = ?1",
            params![number],
            |r| {
                let state: String = r.get(0)?;
                Ok(RowState {
                    state: KsefState::parse(&state).unwrap_or(KsefState::Legacy),
                    seller_nip: r.get(1)?,
                    ksef_number: r.get(2)?,
                    xml_sha256: r.get(3)?,
                    session_ref: r.get(4)?,
                    invoice_ref: r.get(5)?,
                    upo: r.get(6)?,
                })
            },
        )
        .optional()
    }

    /// Runs `f` on the invoice's row state in an immediate transaction; `f` returns
    /// whether it wrote (then the transaction is committed).
    fn with_row<T>(
        &mut self,
        number: &str,
        f: impl FnOnce(&Transaction<'_>, RowState, &str) -> Result<T, BillingError>,
    ) -> Result<T, BillingError> {
        let path = self.path.clone();
        let err = |e: &dyn std::fmt::Display| BillingError::Store {
            path: path.clone(),
            detail: e.to_string(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(&e))?;
        let row = Self::row_state(&tx, number)
            .map_err(|e| err(&e))?
            .ok_or_else(|| BillingError::UnknownInvoice {
                number: number.to_string(),
            })?;
        let at = ts(now());
        let out = f(&tx, row, &at)?;
        tx.commit().map_err(|e| err(&e))?;
        Ok(out)
    }

    fn state_error(number: &str, state: KsefState, what: &str) -> BillingError {
        let why = match state {
            KsefState::Accepted => "KSeF already accepted it",
            KsefState::Legacy => "it was issued before KSeF",
            KsefState::Rejected => {
                "KSeF rejected it: prepare it again (it is rendered from the fixed data under the same number)"
            }
            KsefState::Prepared => "it was not sent yet",
            KsefState::Sent => "it is waiting for KSeF's verdict",
        };
        BillingError::KsefState {
            number: number.to_string(),
            detail: format!("cannot record it as {what}: {why}"),
        }
    }

    /// KSeF took the invoice (`prepared` → `sent`; or `sent` again in a new session).
    pub fn record_sent(&mut self, number: &str, sub: &KsefSubmission) -> Result<(), BillingError> {
        let path = self.path.clone();
        self.with_row(number, |tx, row, at| {
            let err = |e: rusqlite::Error| BillingError::Store {
                path: path.clone(),
                detail: e.to_string(),
            };
            if !matches!(row.state, KsefState::Prepared | KsefState::Sent) {
                return Err(Self::state_error(number, row.state, "sent"));
            }
            if row.xml_sha256.as_deref() != Some(sub.xml_sha256.to_ascii_lowercase().as_str()) {
                return Err(BillingError::KsefState {
                    number: number.to_string(),
                    detail: format!(
                        "the XML sent (SHA-256 {}) is not the XML stored for it ({}); send exactly the prepared bytes \
                         (`ReadyInvoice.xml`); nothing was recorded",
                        sub.xml_sha256,
                        row.xml_sha256.as_deref().unwrap_or("none")
                    ),
                });
            }
            if row.state == KsefState::Sent
                && row.session_ref.as_deref() == Some(sub.session_ref.as_str())
                && row.invoice_ref.as_deref() == Some(sub.invoice_ref.as_str())
            {
                return Ok(());
            }
            tx.execute(
                "UPDATE invoice SET state = 'sent', ksef_session_ref = ?2, ksef_invoice_ref = ?3, updated_at = ?4
                 WHERE number = ?1",
                params![number, sub.session_ref, sub.invoice_ref, at],
            )
            .map_err(err)?;
            append_event(
                tx,
                number,
                at,
                &Event {
                    event: "sent",
                    xml_sha256: row.xml_sha256.as_deref(),
                    session_ref: Some(&sub.session_ref),
                    invoice_ref: Some(&sub.invoice_ref),
                    ..Event::default()
                },
            )
            .map_err(err)?;
            tracing::info!(number, session = %sub.session_ref, invoice_ref = %sub.invoice_ref, "invoice sent to KSeF");
            Ok(())
        })
    }

    /// KSeF accepted the invoice: from now on it is issued and frozen. Recording the same
    /// acceptance again is a no-op (adding the UPO if it was missing).
    pub fn record_accepted(
        &mut self,
        number: &str,
        acc: &KsefAcceptance,
    ) -> Result<(), BillingError> {
        let path = self.path.clone();
        self.with_row(number, |tx, row, at| {
            let err = |e: rusqlite::Error| BillingError::Store {
                path: path.clone(),
                detail: e.to_string(),
            };
            check_ksef_number(number, &row.seller_nip, &acc.ksef_number)?;
            if row.state == KsefState::Accepted {
                if row.ksef_number.as_deref() != Some(acc.ksef_number.as_str()) {
                    return Err(BillingError::KsefState {
                        number: number.to_string(),
                        detail: format!(
                            "KSeF accepted it as {} already; {} cannot be recorded for it",
                            row.ksef_number.unwrap_or_default(),
                            acc.ksef_number
                        ),
                    });
                }
                if let (None, Some(upo)) = (&row.upo, &acc.upo_xml) {
                    Self::set_upo(tx, number, upo, at).map_err(err)?;
                }
                return Ok(());
            }
            if !matches!(row.state, KsefState::Prepared | KsefState::Sent) {
                return Err(Self::state_error(number, row.state, "accepted"));
            }
            tx.execute(
                "UPDATE invoice SET state = 'accepted', ksef_number = ?2, ksef_acquired_at = ?3,
                     ksef_session_ref = ?4, ksef_invoice_ref = ?5, upo_xml = ?6, updated_at = ?7
                 WHERE number = ?1",
                params![
                    number,
                    acc.ksef_number,
                    ts(acc.acquisition_date),
                    acc.session_ref,
                    acc.invoice_ref,
                    acc.upo_xml,
                    at
                ],
            )
            .map_err(err)?;
            append_event(
                tx,
                number,
                at,
                &Event {
                    event: "accepted",
                    xml_sha256: row.xml_sha256.as_deref(),
                    session_ref: Some(&acc.session_ref),
                    invoice_ref: Some(&acc.invoice_ref),
                    ksef_number: Some(&acc.ksef_number),
                    code: Some(200),
                    description: Some(&format!("acquired {}", ts(acc.acquisition_date))),
                    ..Event::default()
                },
            )
            .map_err(err)?;
            tracing::info!(number, ksef_number = %acc.ksef_number, "invoice accepted by KSeF");
            Ok(())
        })
    }

    /// KSeF answered 440 for our own number: it holds this invoice already (an earlier
    /// send whose answer was lost), so it is recorded as accepted under the original KSeF
    /// number KSeF names. Only a `prepared` or `sent` invoice can be in that situation:
    /// its bytes never changed since they were first handed out.
    pub fn record_duplicate(
        &mut self,
        number: &str,
        dup: &KsefDuplicate,
    ) -> Result<(), BillingError> {
        let path = self.path.clone();
        self.with_row(number, |tx, row, at| {
            let err = |e: rusqlite::Error| BillingError::Store {
                path: path.clone(),
                detail: e.to_string(),
            };
            check_ksef_number(number, &row.seller_nip, &dup.original_ksef_number)?;
            if row.state == KsefState::Accepted
                && row.ksef_number.as_deref() == Some(dup.original_ksef_number.as_str())
            {
                return Ok(());
            }
            if !matches!(row.state, KsefState::Prepared | KsefState::Sent) {
                return Err(Self::state_error(number, row.state, "a duplicate of an accepted invoice"));
            }
            // Was the original one of our recorded attempts? Worth keeping for an audit:
            // a 440 after an attempt we never recorded is exactly the lost-answer case.
            let ours = match &dup.original_session_ref {
                Some(s) => tx
                    .query_row(
                        "SELECT COUNT(*) FROM ksef_event WHERE number = ?1 AND session_ref = ?2",
                        params![number, s],
                        |r| r.get::<_, i64>(0),
                    )
                    .map_err(err)?
                    > 0,
                None => false,
            };
            tx.execute(
                "UPDATE invoice SET state = 'accepted', ksef_number = ?2, ksef_acquired_at = NULL,
                     ksef_session_ref = COALESCE(?3, ksef_session_ref), updated_at = ?4
                 WHERE number = ?1",
                params![number, dup.original_ksef_number, dup.original_session_ref, at],
            )
            .map_err(err)?;
            let details = vec![
                format!(
                    "original session: {}{}",
                    dup.original_session_ref.as_deref().unwrap_or("not given"),
                    if ours { " (a recorded attempt)" } else { " (not a recorded attempt: the answer to that send was lost)" }
                ),
            ];
            append_event(
                tx,
                number,
                at,
                &Event {
                    event: "duplicate",
                    xml_sha256: row.xml_sha256.as_deref(),
                    session_ref: dup.session_ref.as_deref(),
                    invoice_ref: dup.invoice_ref.as_deref(),
                    ksef_number: Some(&dup.original_ksef_number),
                    code: Some(440),
                    description: Some(&dup.description),
                    details: &details,
                },
            )
            .map_err(err)?;
            tracing::warn!(number, ksef_number = %dup.original_ksef_number, "KSeF already held this invoice (440): recorded as accepted");
            Ok(())
        })
    }

    /// KSeF did not register the invoice. It keeps its number; the next preparation renders
    /// it again from the (fixed) data and it is sent again under the same number.
    pub fn record_rejected(
        &mut self,
        number: &str,
        rej: &KsefRejection,
    ) -> Result<(), BillingError> {
        if rej.code == 440 {
            return Err(BillingError::KsefState {
                number: number.to_string(),
                detail: "440 means KSeF already holds this number: record it with record_duplicate and the original KSeF number".into(),
            });
        }
        let path = self.path.clone();
        self.with_row(number, |tx, row, at| {
            let err = |e: rusqlite::Error| BillingError::Store {
                path: path.clone(),
                detail: e.to_string(),
            };
            if !matches!(row.state, KsefState::Prepared | KsefState::Sent | KsefState::Rejected) {
                return Err(Self::state_error(number, row.state, "rejected"));
            }
            let json = serde_json::to_string(rej).map_err(|e| BillingError::InvalidData(e.to_string()))?;
            tx.execute(
                "UPDATE invoice SET state = 'rejected', rejection = ?2, updated_at = ?3 WHERE number = ?1",
                params![number, json, at],
            )
            .map_err(err)?;
            append_event(
                tx,
                number,
                at,
                &Event {
                    event: "rejected",
                    xml_sha256: row.xml_sha256.as_deref(),
                    session_ref: rej.session_ref.as_deref(),
                    invoice_ref: rej.invoice_ref.as_deref(),
                    code: Some(rej.code),
                    description: Some(&rej.description),
                    details: &rej.details,
                    ..Event::default()
                },
            )
            .map_err(err)?;
            tracing::warn!(number, code = rej.code, description = %rej.description, "KSeF rejected the invoice");
            Ok(())
        })
    }

    fn set_upo(tx: &Transaction<'_>, number: &str, upo: &str, at: &str) -> rusqlite::Result<()> {
        tx.execute(
            "UPDATE invoice SET upo_xml = ?2, updated_at = ?3 WHERE number = ?1",
            params![number, upo, at],
        )?;
        append_event(
            tx,
            number,
            at,
            &Event {
                event: "upo",
                description: Some("UPO stored"),
                ..Event::default()
            },
        )
    }

    /// Stores the UPO (KSeF's receipt) of an accepted invoice downloaded after acceptance.
    pub fn record_upo(&mut self, number: &str, upo_xml: &str) -> Result<(), BillingError> {
        let path = self.path.clone();
        self.with_row(number, |tx, row, at| {
            if row.state != KsefState::Accepted {
                return Err(Self::state_error(number, row.state, "having a UPO"));
            }
            match row.upo.as_deref() {
                Some(u) if u == upo_xml => Ok(()),
                Some(_) => Err(BillingError::KsefState {
                    number: number.to_string(),
                    detail: "it has a different UPO already; the first one is kept".into(),
                }),
                None => Self::set_upo(tx, number, upo_xml, at).map_err(|e| BillingError::Store {
                    path: path.clone(),
                    detail: e.to_string(),
                }),
            }
        })
    }

    /// Records that a month was not invoiced because its amounts round to 0.00, and what
    /// becomes of its usage. The first decision stands (a second call returns it).
    pub fn record_zero_month(
        &mut self,
        org_id: &str,
        month: YearMonth,
        decision: ZeroMonth,
        raw_cost_usd: Decimal,
        requests: u64,
    ) -> Result<ZeroMonthRecord, BillingError> {
        let decision_s = match decision {
            ZeroMonth::Carry => "carry",
            ZeroMonth::Waive => "waive",
        };
        self.conn
            .execute(
                "INSERT OR IGNORE INTO zero_month (org_id, month, decision, raw_cost_usd, requests, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    org_id,
                    month.to_string(),
                    decision_s,
                    raw_cost_usd.normalize().to_string(),
                    requests as i64,
                    ts(now())
                ],
            )
            .map_err(|e| self.err(e))?;
        self.zero_months(org_id)?
            .into_iter()
            .find(|z| z.month == month)
            .ok_or_else(|| self.err("zero month not stored"))
    }

    /// The client's zero months, oldest first.
    pub fn zero_months(&self, org_id: &str) -> Result<Vec<ZeroMonthRecord>, BillingError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT month, decision, raw_cost_usd, requests, decided_at FROM zero_month
                 WHERE org_id = ?1 ORDER BY month",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![org_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (month, decision, raw, requests, at) = row.map_err(|e| self.err(e))?;
            out.push(ZeroMonthRecord {
                org_id: org_id.to_string(),
                month: month
                    .parse()
                    .map_err(|_| self.err(format!("zero month `{month}` unreadable")))?,
                decision: if decision == "waive" {
                    ZeroMonth::Waive
                } else {
                    ZeroMonth::Carry
                },
                raw_cost_usd: raw
                    .parse()
                    .map_err(|_| self.err(format!("zero month amount `{raw}` unreadable")))?,
                requests: requests.max(0) as u64,
                decided_at: parse_ts(&at).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    fn read(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<IssuedInvoice>, BillingError> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (number, doc, state, sha, ksef_number, acquired) = row.map_err(|e| self.err(e))?;
            let mut inv: IssuedInvoice = serde_json::from_str(&doc)
                .map_err(|e| self.err(format!("stored invoice {number} is unreadable: {e}")))?;
            inv.ksef = Some(KsefInfo {
                state: KsefState::parse(&state).ok_or_else(|| {
                    self.err(format!("invoice {number}: unknown state `{state}`"))
                })?,
                ksef_number,
                acquired_at: acquired.as_deref().and_then(parse_ts),
                xml_sha256: sha,
            });
            out.push(inv);
        }
        Ok(out)
    }

    /// Invoices (every state, corrections included) whose billed month is `month`, VAT
    /// first, in number order.
    pub fn invoices_for_month(&self, month: YearMonth) -> Result<Vec<IssuedInvoice>, BillingError> {
        self.read(
            &format!(
                "SELECT {INVOICE_COLUMNS} FROM invoice WHERE month = ?1 ORDER BY kind DESC, year, seq"
            ),
            &[&month.to_string()],
        )
    }

    /// All invoices of one client, in the order their numbers were reserved.
    pub fn invoices_for_org(&self, org_id: &str) -> Result<Vec<IssuedInvoice>, BillingError> {
        self.read(
            &format!("SELECT {INVOICE_COLUMNS} FROM invoice WHERE org_id = ?1 ORDER BY rowid"),
            &[&org_id],
        )
    }

    pub fn get(&self, number: &str) -> Result<Option<IssuedInvoice>, BillingError> {
        Ok(self
            .read(
                &format!("SELECT {INVOICE_COLUMNS} FROM invoice WHERE number = ?1"),
                &[&number],
            )?
            .pop())
    }

    /// The XML stored for the invoice: the bytes sent to KSeF (`None` for legacy invoices,
    /// which were never sent).
    pub fn xml(&self, number: &str) -> Result<Option<Vec<u8>>, BillingError> {
        self.conn
            .query_row(
                "SELECT xml FROM invoice WHERE number = ?1",
                params![number],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()
            .map_err(|e| self.err(e))
            .map(Option::flatten)
    }

    /// KSeF's receipt (UPO XML) of an accepted invoice, once recorded.
    pub fn upo(&self, number: &str) -> Result<Option<String>, BillingError> {
        self.conn
            .query_row(
                "SELECT upo_xml FROM invoice WHERE number = ?1",
                params![number],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map_err(|e| self.err(e))
            .map(Option::flatten)
    }

    /// The invoice's KSeF history, oldest first.
    pub fn history(&self, number: &str) -> Result<Vec<KsefEvent>, BillingError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT at, event, xml_sha256, session_ref, invoice_ref, ksef_number, code, description, details
                 FROM ksef_event WHERE number = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![number], |r| {
                let at: String = r.get(0)?;
                let details: Option<String> = r.get(8)?;
                Ok(KsefEvent {
                    at: parse_ts(&at).unwrap_or_default(),
                    event: r.get(1)?,
                    xml_sha256: r.get(2)?,
                    session_ref: r.get(3)?,
                    invoice_ref: r.get(4)?,
                    ksef_number: r.get(5)?,
                    code: r.get(6)?,
                    description: r.get(7)?,
                    details: details
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or_default(),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn status_rows(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<InvoiceStatusRow>, BillingError> {
        let sql = format!(
            "SELECT number, kind, org_id, month, issue_date, state, corrects, xml_sha256, ksef_number,
                    ksef_acquired_at, ksef_session_ref, ksef_invoice_ref, upo_xml IS NOT NULL, rejection,
                    (SELECT COUNT(*) FROM ksef_event e WHERE e.number = invoice.number AND e.event = 'sent')
             FROM invoice WHERE {filter} ORDER BY month, kind DESC, year, seq"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, bool>(12)?,
                    r.get::<_, Option<String>>(13)?,
                    r.get::<_, i64>(14)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                number,
                kind,
                org_id,
                month,
                issue,
                state,
                corrects,
                sha,
                ksef,
                acq,
                sref,
                iref,
                upo,
                rej,
                attempts,
            ) = row.map_err(|e| self.err(e))?;
            let state = KsefState::parse(&state)
                .ok_or_else(|| self.err(format!("invoice {number}: unknown state `{state}`")))?;
            out.push(InvoiceStatusRow {
                kind: InvoiceKind::parse(&kind)
                    .ok_or_else(|| self.err(format!("invoice {number}: unknown kind `{kind}`")))?,
                org_id,
                month: month.parse().map_err(|_| {
                    self.err(format!("invoice {number}: month `{month}` unreadable"))
                })?,
                issue_date: issue.parse().map_err(|_| {
                    self.err(format!("invoice {number}: date `{issue}` unreadable"))
                })?,
                state,
                corrects,
                xml_sha256: sha,
                ksef_number: ksef,
                acquired_at: acq.as_deref().and_then(parse_ts),
                session_ref: sref,
                invoice_ref: iref,
                has_upo: upo,
                rejection: if state == KsefState::Rejected {
                    rej.and_then(|r| serde_json::from_str(&r).ok())
                } else {
                    None
                },
                attempts: attempts.max(0) as u32,
                number,
            });
        }
        Ok(out)
    }

    /// The KSeF status of every invoice (and correction) billing `month`.
    pub fn ksef_status(&self, month: YearMonth) -> Result<Vec<InvoiceStatusRow>, BillingError> {
        self.status_rows("month = ?1", &[&month.to_string()])
    }

    /// Every invoice KSeF has not decided on yet (prepared, sent, rejected), any month.
    pub fn awaiting_ksef(&self) -> Result<Vec<InvoiceStatusRow>, BillingError> {
        self.status_rows("state IN ('prepared', 'sent', 'rejected')", &[])
    }

    /// Every reserved sequence number of the seller's VAT invoices for a year, in order
    /// (must be 1..=n: a reserved number is never released).
    pub fn sequence(&self, seller_nip: &str, year: i32) -> Result<Vec<u32>, BillingError> {
        self.seqs(
            "SELECT seq FROM invoice WHERE seller_nip = ?1 AND year = ?2 AND kind = ?3 ORDER BY seq",
            seller_nip,
            year,
            InvoiceKind::Vat,
        )
    }

    /// The sequence numbers of issued invoices (accepted by KSeF or legacy) of a series:
    /// 1..=n once KSeF decided on every reserved number.
    pub fn issued_sequence(
        &self,
        seller_nip: &str,
        kind: InvoiceKind,
        year: i32,
    ) -> Result<Vec<u32>, BillingError> {
        self.seqs(
            "SELECT seq FROM invoice WHERE seller_nip = ?1 AND year = ?2 AND kind = ?3
             AND state IN ('accepted', 'legacy') ORDER BY seq",
            seller_nip,
            year,
            kind,
        )
    }

    fn seqs(
        &self,
        sql: &str,
        seller_nip: &str,
        year: i32,
        kind: InvoiceKind,
    ) -> Result<Vec<u32>, BillingError> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![seller_nip, year, kind.as_str()], |r| {
                r.get::<_, u32>(0)
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}
