//! Erasure (GDPR art. 17) and export (art. 15) of one person's usage.
//!
//! Erasure replaces the person's identity, never their usage: every event of theirs
//! keeps its cost, tokens, model and day, and its user becomes a random pseudonym
//! (`erased-<32 hex>`); their per-user daily rollup rows are merged into the
//! pseudonym's. So the org's days, the models, every other user and every invoice stay
//! exactly as they were, and "who" can no longer be answered from the ledger.
//!
//! Which events are the person's: those whose user id equals the subject's id or whose
//! e-mail equals the subject's e-mail (ASCII case-insensitive, as e-mail addresses are
//! in practice), and then every event sharing a rollup key (the user id, else the
//! e-mail) with one of those: an id names one person, so a request recorded under the
//! person's id with another e-mail is still theirs. Events that carry only a name cannot
//! be matched (a name is not an identifier); they are the chat app's unattributed ones.
//!
//! The chat id of an erased event is cleared too: it points at the person's chat in
//! Open WebUI, so it could lead back to them. Task kind and groups (department names)
//! are kept.
//!
//! Old bytes: SQLite leaves deleted or overwritten cell contents in free pages, in the
//! interior pages of indexes (a `WITHOUT ROWID` table keeps copies of keys there) and
//! in the WAL until a checkpoint. `PRAGMA secure_delete` zeroes freed cells but not
//! stale interior keys, so after the transaction the file is rebuilt with `VACUUM` and
//! the WAL is checkpointed and truncated; [`Erasure::compacted`] says whether both
//! completed (a reader holding an old snapshot can keep the WAL from being truncated;
//! the next erasure or shutdown checkpoint finishes it).

use chrono::Utc;
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{
    apply_deltas, read_event_row, Delta, Ledger, LedgerError, RollupKey, StoredEvent, WriteError,
    EVENT_COLUMNS,
};
use crate::time::warsaw_day;
use crate::usage::{Totals, UserRef};

pub use mai_wire::tracker::PrivacySubject;
pub use mai_wire::usage::ERASED_USER_PREFIX;

/// What [`Ledger::erase_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// [`subject_hash`] of the subject.
    pub subject_hash: String,
    /// The user id the person's events and rollups now carry.
    pub pseudonym: String,
    /// Events changed.
    pub events: u64,
    /// Per-user daily rollup rows of the person merged into the pseudonym's.
    pub rollup_rows: u64,
    /// `VACUUM` ran and the WAL was checkpointed and truncated completely.
    pub compacted: bool,
}

/// One person's usage: every event (oldest first) and the sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserExport {
    pub events: Vec<StoredEvent>,
    pub totals: Totals,
}

/// Trims the subject's fields and drops empty ones; `BadQuery` when nothing is left.
pub fn normalize_subject(s: &PrivacySubject) -> Result<PrivacySubject, LedgerError> {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let out = PrivacySubject {
        id: clean(&s.id),
        email: clean(&s.email),
    };
    if out.id.is_none() && out.email.is_none() {
        return Err(LedgerError::BadQuery(
            "a privacy request needs the person's user id or e-mail (or both)".into(),
        ));
    }
    if out
        .id
        .as_deref()
        .is_some_and(|i| i.starts_with(ERASED_USER_PREFIX))
    {
        return Err(LedgerError::BadQuery(format!(
            "user id `{}` is already a pseudonym of an erased person",
            out.id.as_deref().unwrap_or_default()
        )));
    }
    Ok(out)
}

/// How audit logs name a privacy subject: SHA-256 hex over a fixed label, the trimmed
/// id and the trimmed, ASCII-lowercased e-mail. It lets an auditor who is given the
/// person's id and e-mail confirm that a request about them was carried out, without
/// the log holding either. It is not anonymous against someone who guesses the e-mail,
/// which is why it is never stored next to the pseudonym.
pub fn subject_hash(s: &PrivacySubject) -> String {
    let id = s.id.as_deref().map(str::trim).unwrap_or("");
    let email = s
        .email
        .as_deref()
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"mai-fleet privacy subject v1\n");
    h.update(id.as_bytes());
    h.update(b"\n");
    h.update(email.as_bytes());
    hex::encode(h.finalize())
}

/// A fresh pseudonym: [`ERASED_USER_PREFIX`] and 128 random bits in hex. Random, not a
/// hash of the person, so nobody can compute it from their e-mail.
pub fn new_pseudonym() -> String {
    format!(
        "{ERASED_USER_PREFIX}{}",
        hex::encode(rand::random::<[u8; 16]>())
    )
}

fn check_pseudonym(p: &str) -> Result<(), LedgerError> {
    let hex = p.strip_prefix(ERASED_USER_PREFIX).unwrap_or("");
    if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(LedgerError::BadQuery(format!(
            "pseudonym `{p}` is not {ERASED_USER_PREFIX}<32 hex digits>"
        )))
    }
}

/// The rollup keys (user id, else e-mail) of `org`'s events and per-user rollup rows
/// that match the subject.
fn subject_keys(
    conn: &rusqlite::Connection,
    org: &str,
    s: &PrivacySubject,
) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT user_key FROM events WHERE org_id = ?1 AND (user_id = ?2 OR lower(user_email) = lower(?3))
         UNION
         SELECT user_key FROM rollup_user_day WHERE org_id = ?1
            AND (user_id = ?2 OR lower(user_email) = lower(?3) OR user_key = ?2 OR lower(user_key) = lower(?3))",
    )?;
    let keys = st
        .query_map(params![org, s.id, s.email], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(keys
        .into_iter()
        .filter(|k| !k.is_empty() && !k.starts_with(ERASED_USER_PREFIX))
        .collect())
}

/// Every event of `org` under one of `keys`, oldest first.
fn events_of_keys(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    org: &str,
    keys: &[String],
) -> Result<Vec<StoredEvent>, LedgerError> {
    let mut out = Vec::new();
    let sql = |e| LedgerError::Sqlite {
        path: path.into(),
        source: e,
    };
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = ?1 AND user_key = ?2"
        ))
        .map_err(sql)?;
    for k in keys {
        let rows = st.query_map(params![org, k], read_event_row).map_err(sql)?;
        for r in rows {
            out.push(r.map_err(sql)?.into_stored()?);
        }
    }
    out.sort_by(|a, b| {
        (a.event.created_at, &a.event.generation_id)
            .cmp(&(b.event.created_at, &b.event.generation_id))
    });
    Ok(out)
}

impl Ledger {
    /// Erases one person's identity from `org`'s events and per-user rollups, in one
    /// transaction with an audit row (`action = 'privacy_erase'`, the subject's hash and
    /// the counts; neither the person nor the pseudonym), then rebuilds the file (see
    /// the module documentation). `pseudonym` is the one to use (the console passes
    /// the tracker's, so the cache lists the person as the tracker does), else a new
    /// one. Nothing matching is not an error: the report counts zero.
    pub fn erase_user(
        &mut self,
        org: &str,
        subject: &PrivacySubject,
        pseudonym: Option<&str>,
        actor: &str,
    ) -> Result<Erasure, LedgerError> {
        let subject = normalize_subject(subject)?;
        let pseudonym = match pseudonym {
            Some(p) => {
                check_pseudonym(p)?;
                p.to_owned()
            }
            None => new_pseudonym(),
        };
        let subject_hash = subject_hash(&subject);
        let path = self.path.clone();
        let sql = |e| LedgerError::Sqlite {
            path: path.clone(),
            source: e,
        };
        // Freed cells are zeroed as they are freed; VACUUM below removes the rest.
        self.conn
            .execute_batch("PRAGMA secure_delete = ON;")
            .map_err(sql)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let keys = subject_keys(&tx, org, &subject).map_err(sql)?;
        let events = events_of_keys(&tx, &path, org, &keys)?;
        let mut rollup_rows = 0u64;
        {
            let mut count = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM rollup_user_day WHERE org_id = ?1 AND user_key = ?2",
                )
                .map_err(sql)?;
            for k in &keys {
                rollup_rows += count
                    .query_row(params![org, k], |r| r.get::<_, i64>(0))
                    .map_err(sql)? as u64;
            }
        }
        let erased = UserRef::erased(&pseudonym);
        let mut deltas: std::collections::HashMap<RollupKey, Delta> = Default::default();
        let mut next_seq: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM events", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE events SET user_key = ?1, user_id = ?1, user_email = NULL, user_name = NULL,
                         chat_id = NULL, seq = ?2
                     WHERE generation_id = ?3",
                )
                .map_err(sql)?;
            for s in &events {
                let ev = &s.event;
                let day = warsaw_day(ev.created_at).to_string();
                let overflow = |e| LedgerError::Overflow {
                    path: self.path.clone(),
                    source: e,
                };
                deltas
                    .entry(RollupKey::User(
                        org.to_owned(),
                        day.clone(),
                        ev.user.key().to_owned(),
                    ))
                    .or_default()
                    .apply(ev, -1)
                    .map_err(overflow)?;
                let to = deltas
                    .entry(RollupKey::User(org.to_owned(), day, pseudonym.clone()))
                    .or_default();
                to.apply(ev, 1).map_err(overflow)?;
                to.user = Some(erased.clone());
                // A new change sequence (invariant 7): pullers see the change.
                update
                    .execute(params![pseudonym, next_seq, ev.generation_id])
                    .map_err(sql)?;
                next_seq += 1;
            }
        }
        apply_deltas(&tx, deltas).map_err(|e| match e {
            WriteError::Sql(e) => sql(e),
            WriteError::Row(id, detail) => LedgerError::BadRow { id, detail },
            WriteError::Overflow(source) => LedgerError::Overflow {
                path: self.path.clone(),
                source,
            },
        })?;
        // Rollups equal their events (invariant 3), so nothing of the person is left;
        // if something is, the rollups disagree with the events and nothing is changed.
        let left: Option<String> = tx
            .query_row(
                "SELECT user_key FROM rollup_user_day WHERE org_id = ?1
                   AND (user_id = ?2 OR lower(user_email) = lower(?3) OR user_key = ?2 OR lower(user_key) = lower(?3))
                 LIMIT 1",
                params![org, subject.id, subject.email],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        if left.is_some() {
            return Err(LedgerError::BadRow {
                id: format!("rollup_user_day of {org}"),
                detail: "a per-user rollup row of the person has no events behind it; \
                         nothing was erased (the rollups disagree with the events)"
                    .into(),
            });
        }
        let detail = serde_json::json!({
            "subject_hash": subject_hash,
            "events": events.len(),
            "rollup_rows": rollup_rows,
        });
        tx.execute(
            "INSERT INTO audit (at, actor, action, generation_id, detail) VALUES (?1, ?2, 'privacy_erase', NULL, ?3)",
            params![Utc::now().to_rfc3339(), actor, detail.to_string()],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        let compacted = self.compact();
        Ok(Erasure {
            subject_hash,
            pseudonym,
            events: events.len() as u64,
            rollup_rows,
            compacted,
        })
    }

    /// Rebuilds the file (`VACUUM`: no free page and no stale index key keeps old
    /// bytes) and truncates the WAL. False when either could not complete; logged,
    /// never an error: the erasure itself is committed.
    fn compact(&mut self) -> bool {
        if let Err(e) = self.conn.execute_batch("VACUUM;") {
            tracing::warn!(path = %self.path.display(), error = %e, "VACUUM after an erasure failed; old bytes may stay in free pages until the next one");
            return false;
        }
        // (busy, WAL frames, frames checkpointed): busy = 1 when a reader kept it from
        // truncating.
        match self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            }) {
            Ok(0) => true,
            Ok(_) => {
                tracing::warn!(path = %self.path.display(), "WAL not truncated after an erasure (a reader holds an old snapshot); it is at the next checkpoint");
                false
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "WAL checkpoint after an erasure failed");
                false
            }
        }
    }

    /// One person's usage in `org` (GDPR art. 15): the events [`Ledger::erase_user`]
    /// would change, oldest first, and their exact sum.
    pub fn user_export(
        &self,
        org: &str,
        subject: &PrivacySubject,
    ) -> Result<UserExport, LedgerError> {
        let subject = normalize_subject(subject)?;
        let keys = subject_keys(&self.conn, org, &subject).map_err(|e| self.sql(e))?;
        let events = events_of_keys(&self.conn, &self.path, org, &keys)?;
        let mut totals = Totals::default();
        for s in &events {
            totals
                .add(&Totals {
                    requests: 1,
                    tokens: s.event.tokens,
                    cost_usd: s.event.cost_usd,
                })
                .map_err(|e| self.overflow(e))?;
        }
        totals.cost_usd = totals.cost_usd.normalize();
        Ok(UserExport { events, totals })
    }
}
