//! Backups of a ledger: SQLite's online backup into a standalone file (consistent while
//! a writer runs: one read transaction copies every page), and what a restore checks in
//! such a file before it may become a live ledger (integrity, schema, org, events).

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::{Ledger, LedgerError, SCHEMA_VERSION};

/// What a ledger file holds, read by [`inspect_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// The schema version (`PRAGMA user_version`).
    pub schema: i64,
    /// Distinct orgs of its events (a tracker's ledger holds one).
    pub orgs: Vec<String>,
    pub events: u64,
}

impl Ledger {
    /// Copies the whole database into a new file `dest` with SQLite's online backup API,
    /// all pages in one step, so the copy is one consistent snapshot even while another
    /// connection writes (WAL). `dest` must not exist. The copy is a rollback-journal
    /// file (no `-wal` beside it): one file is the whole backup.
    pub fn backup_to(&self, dest: &Path) -> Result<(), LedgerError> {
        if dest.exists() {
            return Err(LedgerError::BadQuery(format!(
                "the backup target {} already exists; choose a new file",
                dest.display()
            )));
        }
        let sql = |e: rusqlite::Error| LedgerError::Sqlite {
            path: dest.into(),
            source: e,
        };
        let mut out = Connection::open(dest).map_err(sql)?;
        {
            let b = rusqlite::backup::Backup::new(&self.conn, &mut out).map_err(sql)?;
            // One step of every page (-1): the copy is read in one read transaction,
            // so a concurrent writer cannot make it restart or mix two states. Busy or
            // locked (a checkpoint running) is retried for a bounded while.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                match b.step(-1).map_err(sql)? {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => continue,
                    _ if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(50))
                    }
                    _ => {
                        return Err(LedgerError::BadQuery(format!(
                            "the ledger stayed busy for 30 s; backing it up to {} did not finish, try again",
                            dest.display()
                        )))
                    }
                }
            }
        }
        out.execute_batch("PRAGMA journal_mode = DELETE;")
            .map_err(sql)?;
        drop(out);
        std::fs::File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| LedgerError::BadQuery(format!("syncing {}: {e}", dest.display())))?;
        Ok(())
    }

    /// Every event of `org` created in `[from, to)` (UTC), oldest first: what a rebuild
    /// copies from the console cache.
    pub fn events_between(
        &self,
        org: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<super::UsageEvent>, LedgerError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM events WHERE org_id = ?1 AND created_at >= ?2 AND created_at < ?3 ORDER BY created_at, generation_id",
                super::EVENT_COLUMNS
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(
                rusqlite::params![org, super::ts(from), super::ts(to)],
                super::read_event_row,
            )
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(|e| self.sql(e))?.into_stored()?.event);
        }
        Ok(out)
    }

    /// Events of `org` (every event when `None`).
    pub fn event_count(&self, org: Option<&str>) -> Result<u64, LedgerError> {
        let n: i64 = match org {
            Some(o) => {
                self.conn
                    .query_row("SELECT COUNT(*) FROM events WHERE org_id = ?1", [o], |r| {
                        r.get(0)
                    })
            }
            None => self
                .conn
                .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)),
        }
        .map_err(|e| self.sql(e))?;
        Ok(n as u64)
    }
}

/// Reads a ledger file without changing it: SQLite's full `integrity_check`, the schema
/// version (newer than this build understands is an error) and its orgs and events.
/// A file that is not SQLite or not a ledger is [`LedgerError::Corrupt`].
pub fn inspect_file(path: &Path) -> Result<FileFacts, LedgerError> {
    let corrupt = |detail: String| LedgerError::Corrupt {
        path: path.into(),
        detail,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(e.to_string()))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| corrupt(format!("not an SQLite database ({e})")))?;
    if check != "ok" {
        return Err(corrupt(format!("integrity_check: {check}")));
    }
    let schema: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if schema > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            path: path.into(),
            found: schema,
            supported: SCHEMA_VERSION,
        });
    }
    let mut stmt = conn
        .prepare("SELECT org_id, COUNT(*) FROM events GROUP BY org_id ORDER BY org_id")
        .map_err(|e| corrupt(format!("not a usage ledger (no events table: {e})")))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(|e| corrupt(e.to_string()))?;
    let mut facts = FileFacts {
        schema,
        orgs: Vec::new(),
        events: 0,
    };
    for row in rows {
        let (org, n) = row.map_err(|e| corrupt(e.to_string()))?;
        facts.orgs.push(org);
        facts.events += n as u64;
    }
    Ok(facts)
}

/// SHA-256 (lower-case hex) and size of a file, read in 64 KiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size))
}
