//! The billing store (SQLite): issued invoices, frozen.
//!
//! An issued invoice is stored whole (seller, buyer, every amount, the NBP rate) and is
//! never updated or deleted, so re-exporting it always gives the same document and late
//! usage can only ever go onto a later invoice. Numbers are allocated in the same
//! transaction that saves the invoice: per seller and year, gap-free, never reused.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use mai_core::time::YearMonth;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::compute::Statement;
use crate::config::{ClientBilling, Seller};
use crate::numbering::NumberFormat;
use crate::BillingError;

const SCHEMA_VERSION: i64 = 1;

/// An issued invoice as stored: everything needed to render it again identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedInvoice {
    pub number: String,
    /// Position in the seller's sequence for `year`.
    pub seq: u32,
    pub year: i32,
    /// `VAT` (the only kind issued automatically; corrections are manual for now).
    pub kind: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub seller: Seller,
    pub buyer: ClientBilling,
    pub statement: Statement,
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
}

/// What to save; the store adds the number.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub seller: Seller,
    pub buyer: ClientBilling,
    pub statement: Statement,
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

    fn err(&self, e: impl std::fmt::Display) -> BillingError {
        BillingError::Store {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, BillingError> {
        let s = Self { conn, path };
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
        if version < 1 {
            s.conn
                .execute_batch(
                    "BEGIN;
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
                     -- Issued invoices are immutable: the database refuses changes.
                     CREATE TRIGGER invoice_no_update BEFORE UPDATE ON invoice
                         BEGIN SELECT RAISE(ABORT, 'issued invoices cannot be changed'); END;
                     CREATE TRIGGER invoice_no_delete BEFORE DELETE ON invoice
                         BEGIN SELECT RAISE(ABORT, 'issued invoices cannot be deleted'); END;
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(|e| s.err(e))?;
        }
        Ok(s)
    }

    /// Saves a new VAT invoice under the next number of the seller's year (of the issue
    /// date). Fails if the client already has a VAT invoice for that month.
    pub fn issue(
        &mut self,
        format: &NumberFormat,
        inv: NewInvoice,
    ) -> Result<IssuedInvoice, BillingError> {
        let path = self.path.clone();
        let err = |e: &dyn std::fmt::Display| BillingError::Store {
            path: path.clone(),
            detail: e.to_string(),
        };
        let seller_nip = crate::nip::normalise_nip(&inv.seller.nip)
            .map_err(|e| BillingError::InvalidData(format!("seller NIP: {e}")))?;
        let year = inv.issue_date.year();
        let month_key = inv.statement.month.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(&e))?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT number FROM invoice WHERE org_id = ?1 AND month = ?2 AND kind = 'VAT'",
                params![inv.statement.org_id, month_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| err(&e))?;
        if let Some(number) = existing {
            return Err(BillingError::AlreadyIssued {
                org_id: inv.statement.org_id.clone(),
                month: inv.statement.month,
                number,
            });
        }
        let last: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM invoice WHERE seller_nip = ?1 AND year = ?2",
                params![seller_nip, year],
                |r| r.get(0),
            )
            .map_err(|e| err(&e))?;
        let seq = u32::try_from(last + 1).map_err(|e| err(&e))?;
        let number = format.render(year, inv.issue_date.month(), seq);
        let issued = IssuedInvoice {
            number: number.clone(),
            seq,
            year,
            kind: "VAT".into(),
            issue_date: inv.issue_date,
            due_date: inv.due_date,
            created_at: Utc::now(),
            seller: inv.seller,
            buyer: inv.buyer,
            statement: inv.statement,
        };
        let doc = serde_json::to_string(&issued).map_err(|e| err(&e))?;
        tx.execute(
            "INSERT INTO invoice (number, seller_nip, year, seq, kind, org_id, month, issue_date, created_at, doc)
             VALUES (?1, ?2, ?3, ?4, 'VAT', ?5, ?6, ?7, ?8, ?9)",
            params![
                number,
                seller_nip,
                year,
                seq,
                issued.statement.org_id,
                month_key,
                issued.issue_date.to_string(),
                issued.created_at.to_rfc3339(),
                doc
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                BillingError::InvalidData(format!(
                    "invoice number `{number}` already exists: the number format must give unique \
                     numbers per year (keep {{seq}} and {{yyyy}} in it)"
                ))
            }
            other => err(&other),
        })?;
        tx.commit().map_err(|e| err(&e))?;
        tracing::info!(number = %issued.number, org = %issued.statement.org_id, month = %issued.statement.month, "invoice issued");
        Ok(issued)
    }

    fn read_docs(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<IssuedInvoice>, BillingError> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(args, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (number, doc) = row.map_err(|e| self.err(e))?;
            out.push(
                serde_json::from_str(&doc)
                    .map_err(|e| self.err(format!("stored invoice {number} is unreadable: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Invoices whose billed month is `month`, in number order.
    pub fn invoices_for_month(&self, month: YearMonth) -> Result<Vec<IssuedInvoice>, BillingError> {
        self.read_docs(
            "SELECT number, doc FROM invoice WHERE month = ?1 ORDER BY year, seq",
            &[&month.to_string()],
        )
    }

    /// All invoices of one client, oldest first.
    pub fn invoices_for_org(&self, org_id: &str) -> Result<Vec<IssuedInvoice>, BillingError> {
        self.read_docs(
            "SELECT number, doc FROM invoice WHERE org_id = ?1 ORDER BY year, seq",
            &[&org_id],
        )
    }

    pub fn get(&self, number: &str) -> Result<Option<IssuedInvoice>, BillingError> {
        Ok(self
            .read_docs(
                "SELECT number, doc FROM invoice WHERE number = ?1",
                &[&number],
            )?
            .pop())
    }

    /// The seller's sequence numbers for a year, in order (for audits: must be 1..=n).
    pub fn sequence(&self, seller_nip: &str, year: i32) -> Result<Vec<u32>, BillingError> {
        let mut st = self
            .conn
            .prepare("SELECT seq FROM invoice WHERE seller_nip = ?1 AND year = ?2 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![seller_nip, year], |r| r.get::<_, u32>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}
