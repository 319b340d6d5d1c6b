//! Persistent SQLite cache of NBP rates.
//!
//! Published past tables never change, so an invoice rate whose whole window lies before
//! today (Warsaw) is stored forever. Today's or future answers are never stored as final:
//! today's table may not be published yet. The last good display rate is kept apart, only
//! as a stale fallback for dashboards.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use rust_decimal::Decimal;

use super::{DisplayRate, InvoiceRate, NbpError};

const SCHEMA_VERSION: i64 = 1;

/// Cheap to clone; all clones share one connection. Operations are single indexed
/// statements on a local file, so they run inline rather than on a blocking thread.
#[derive(Clone)]
pub struct RateCache {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for RateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateCache").finish_non_exhaustive()
    }
}

fn cache_err(what: &str, e: impl std::fmt::Display) -> NbpError {
    NbpError::Cache(format!("{what}: {e}"))
}

impl RateCache {
    /// Opens (creating if needed) the cache file.
    pub fn open(path: &Path) -> Result<Self, NbpError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    cache_err(
                        &format!("creating the NBP cache folder {}", dir.display()),
                        e,
                    )
                })?;
            }
        }
        let conn = Connection::open(path).map_err(|e| {
            cache_err(
                &format!(
                    "opening the NBP cache {} (check the path and permissions)",
                    path.display()
                ),
                e,
            )
        })?;
        Self::init(conn)
    }

    /// A cache that lives only as long as this value (tests, one-shot CLI runs).
    pub fn open_in_memory() -> Result<Self, NbpError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| cache_err("opening an in-memory NBP cache", e))?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Self, NbpError> {
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| cache_err("setting the NBP cache busy timeout", e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| cache_err("reading the NBP cache schema version", e))?;
        if version > SCHEMA_VERSION {
            return Err(NbpError::Cache(format!(
                "NBP cache schema version {version} is newer than this program ({SCHEMA_VERSION}); \
                 upgrade the program or delete the cache file"
            )));
        }
        if version < 1 {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS invoice_rate (
                     code TEXT NOT NULL,
                     reference_date TEXT NOT NULL,
                     table_no TEXT NOT NULL,
                     effective_date TEXT NOT NULL,
                     mid TEXT NOT NULL,
                     PRIMARY KEY (code, reference_date)
                 );
                 CREATE TABLE IF NOT EXISTS display_last_good (
                     code TEXT PRIMARY KEY,
                     table_no TEXT NOT NULL,
                     effective_date TEXT NOT NULL,
                     bid TEXT NOT NULL,
                     ask TEXT NOT NULL,
                     fetched_at TEXT NOT NULL
                 );
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(|e| cache_err("creating the NBP cache tables", e))?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are
        // atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get_invoice_rate(
        &self,
        code: &str,
        reference: NaiveDate,
    ) -> Result<Option<InvoiceRate>, NbpError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT table_no, effective_date, mid FROM invoice_rate
                 WHERE code = ?1 AND reference_date = ?2",
                params![code, reference.to_string()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| cache_err("reading a cached invoice rate", e))?;
        let Some((table_no, eff, mid)) = row else {
            return Ok(None);
        };
        Ok(Some(InvoiceRate {
            code: code.to_string(),
            mid: Decimal::from_str(&mid).map_err(|e| cache_err("cached mid", e))?,
            table_no,
            effective_date: parse_date(&eff)?,
            reference_date: reference,
        }))
    }

    pub fn put_invoice_rate(&self, rate: &InvoiceRate) -> Result<(), NbpError> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR REPLACE INTO invoice_rate (code, reference_date, table_no, effective_date, mid)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                rate.code,
                rate.reference_date.to_string(),
                rate.table_no,
                rate.effective_date.to_string(),
                rate.mid.to_string()
            ],
        )
        .map_err(|e| cache_err("storing an invoice rate", e))?;
        Ok(())
    }

    pub fn get_last_good_display(&self, code: &str) -> Result<Option<DisplayRate>, NbpError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT table_no, effective_date, bid, ask, fetched_at FROM display_last_good
                 WHERE code = ?1",
                params![code],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| cache_err("reading the last good display rate", e))?;
        let Some((table_no, eff, bid, ask, fetched)) = row else {
            return Ok(None);
        };
        Ok(Some(DisplayRate {
            code: code.to_string(),
            ask: Decimal::from_str(&ask).map_err(|e| cache_err("cached ask", e))?,
            bid: Decimal::from_str(&bid).map_err(|e| cache_err("cached bid", e))?,
            table_no,
            effective_date: parse_date(&eff)?,
            fetched_at: DateTime::parse_from_rfc3339(&fetched)
                .map_err(|e| cache_err("cached fetch time", e))?
                .with_timezone(&Utc),
            stale: false,
        }))
    }

    pub fn put_last_good_display(&self, rate: &DisplayRate) -> Result<(), NbpError> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR REPLACE INTO display_last_good (code, table_no, effective_date, bid, ask, fetched_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                rate.code,
                rate.table_no,
                rate.effective_date.to_string(),
                rate.bid.to_string(),
                rate.ask.to_string(),
                rate.fetched_at.to_rfc3339()
            ],
        )
        .map_err(|e| cache_err("storing the last good display rate", e))?;
        Ok(())
    }
}

fn parse_date(s: &str) -> Result<NaiveDate, NbpError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| cache_err(&format!("cached date `{s}`"), e))
}
