//! The usage ledger: every generation once, with daily rollups kept in step.
//!
//! One SQLite file (WAL, foreign keys on, versioned migrations). The tracker keeps one
//! per client; the console keeps one cache holding all clients' events pulled from the
//! trackers. Invariants (checked by the property tests in `tests/ledger_props.rs`):
//!
//! 1. A generation id is stored at most once. Recording it again with the same or
//!    lower authority changes nothing; with higher authority (see
//!    [`UsageEvent::authority`]) it corrects the stored event in place.
//! 2. Every rollup row (org/day, org/user/day, org/model/day) equals the sum over the
//!    events it covers, at every commit: event and rollup deltas are written in one
//!    transaction.
//! 3. Hence totals do not depend on the order in which records arrive.
//! 4. `seq` is a change sequence: each insert or correction gets a new, higher `seq`,
//!    so a reader pulling "events since cursor" sees corrections too.
//!
//! All methods are synchronous; async callers use a dedicated writer thread or
//! `spawn_blocking`.

mod backup;
mod privacy;
mod query;
mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use backup::{inspect_file, sha256_file, FileFacts};
pub use privacy::{
    new_pseudonym, normalize_subject, subject_hash, Erasure, PrivacySubject, UserExport,
    ERASED_USER_PREFIX,
};
pub use query::{ContextKey, EventPage, KeyTotals, ModelTotals, Priced, UserTotals};
pub use schema::SCHEMA_VERSION;

use crate::pricing::{MarkupSchedule, MonthSummary};
use crate::time::{warsaw_day, YearMonth};
use crate::usage::{
    check_bounds, exact_add, exact_sub, Caps, ChatContext, EventState, Overflow, Source, Tokens,
    UsageError, UsageEvent, UserRef,
};

/// Ledger failures. Each says which file or record and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{path}: not a usable SQLite ledger ({detail}); restore it from a backup or move it away to start a new one")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: ledger schema version {found} is newer than this program supports ({supported}); upgrade mAI Fleet before opening it")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(transparent)]
    Invalid(#[from] UsageError),
    #[error("ledger row for generation `{id}` is unreadable: {detail}")]
    BadRow { id: String, detail: String },
    #[error("invalid query: {0}")]
    BadQuery(String),
    #[error("{path}: {source}; nothing was written")]
    Overflow {
        path: PathBuf,
        #[source]
        source: Overflow,
    },
    #[error(transparent)]
    Pricing(#[from] crate::pricing::PricingError),
    #[error("SQLite error on {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// Why a write failed, as a writer's retry policy and metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// `SQLITE_BUSY` / `SQLITE_LOCKED`: another connection holds the write lock past
    /// the busy timeout.
    Busy,
    /// `SQLITE_FULL`: the disk (or `max_page_count`) is full.
    Full,
    /// `SQLITE_READONLY` (also: the file was moved or the file system remounted
    /// read-only).
    ReadOnly,
    /// `SQLITE_IOERR`, `SQLITE_CANTOPEN`, `SQLITE_NOMEM`: the operating system failed.
    Io,
    /// The event itself is bad (validation); retrying cannot help.
    Invalid,
    /// The event is above a sanity cap ([`Caps`]); retrying cannot help.
    OverCap,
    /// A sum would overflow; retrying cannot help.
    Overflow,
    /// Anything else (corrupt file, schema, a bug).
    Other,
}

impl FailureKind {
    /// The label used in metrics (`kind="busy"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Busy => "busy",
            FailureKind::Full => "full",
            FailureKind::ReadOnly => "readonly",
            FailureKind::Io => "io",
            FailureKind::Invalid => "invalid",
            FailureKind::OverCap => "over_cap",
            FailureKind::Overflow => "overflow",
            FailureKind::Other => "other",
        }
    }

    /// Failures of the environment that may pass (a lock released, space freed, the
    /// file system back): worth retrying the same write later. SQLite rolls a failed
    /// transaction back completely, so a retry cannot double anything.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureKind::Busy | FailureKind::Full | FailureKind::ReadOnly | FailureKind::Io
        )
    }
}

impl LedgerError {
    /// Classifies the failure for retry decisions ([`FailureKind::is_transient`]).
    pub fn kind(&self) -> FailureKind {
        use rusqlite::ffi::ErrorCode as C;
        match self {
            LedgerError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => match e.code {
                C::DatabaseBusy | C::DatabaseLocked => FailureKind::Busy,
                C::DiskFull => FailureKind::Full,
                C::ReadOnly => FailureKind::ReadOnly,
                C::SystemIoFailure | C::CannotOpen | C::OutOfMemory => FailureKind::Io,
                _ => FailureKind::Other,
            },
            LedgerError::Invalid(UsageError::OverCap { .. }) => FailureKind::OverCap,
            LedgerError::Invalid(_) => FailureKind::Invalid,
            LedgerError::Overflow { .. } => FailureKind::Overflow,
            _ => FailureKind::Other,
        }
    }
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordOutcome {
    /// A generation not seen before.
    Inserted,
    /// A more authoritative record replaced the stored one; rollups moved by the delta.
    Corrected,
    /// Already stored with the same or higher authority; nothing changed.
    Unchanged,
}

/// An event as stored, with its change sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    #[serde(flatten)]
    pub event: UsageEvent,
}

/// Durability of each commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: a committed event survives power loss (default).
    Full,
    /// fsync at WAL checkpoints only: survives a process crash (kill -9), not power
    /// loss. For caches that can be re-pulled.
    Normal,
}

/// The ledger. Owns one SQLite connection.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    /// Sanity caps every recorded event must meet (beyond [`UsageEvent::validate`]).
    caps: Caps,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path` with [`Durability::Full`].
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Self::open_with(path, Durability::Full)
    }

    pub fn open_with(path: &Path, durability: Durability) -> Result<Ledger, LedgerError> {
        let conn = Connection::open(path).map_err(|e| LedgerError::Sqlite {
            path: path.into(),
            source: e,
        })?;
        Self::init(conn, path.to_path_buf(), durability)
    }

    /// Opens an existing ledger for reading only, e.g. from a second thread while a
    /// writer owns the read-write connection (WAL lets both proceed). Never migrates.
    pub fn open_read_only(path: &Path) -> Result<Ledger, LedgerError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| LedgerError::Sqlite {
            path: path.into(),
            source: e,
        })?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| LedgerError::Corrupt {
                path: path.into(),
                detail: e.to_string(),
            })?;
        if found != SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                path: path.into(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
            caps: Caps::ABSOLUTE,
        })
    }

    /// A throwaway in-memory ledger (tests, benchmarks).
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| LedgerError::Sqlite {
            path: path.clone(),
            source: e,
        })?;
        Self::init(conn, path, Durability::Normal)
    }

    fn init(
        conn: Connection,
        path: PathBuf,
        durability: Durability,
    ) -> Result<Ledger, LedgerError> {
        let corrupt = |e: rusqlite::Error| LedgerError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        };
        // Read the version before writing anything: a corrupt or newer file must be
        // left exactly as it was.
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        if found > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let integrity: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(corrupt)?;
        if integrity != "ok" {
            return Err(LedgerError::Corrupt {
                path,
                detail: integrity,
            });
        }
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"
        ))
        .map_err(corrupt)?;
        let mut ledger = Ledger {
            conn,
            path,
            caps: Caps::ABSOLUTE,
        };
        ledger.migrate(found)?;
        Ok(ledger)
    }

    fn migrate(&mut self, from: i64) -> Result<(), LedgerError> {
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(from as usize) {
            let version = i as i64 + 1;
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction()
                .map_err(|e| LedgerError::Sqlite { path, source: e })?;
            tx.execute_batch(sql).map_err(|e| LedgerError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
            tx.pragma_update(None, "user_version", version)
                .map_err(|e| LedgerError::Sqlite {
                    path: self.path.clone(),
                    source: e,
                })?;
            tx.commit().map_err(|e| LedgerError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
            tracing::info!(path = %self.path.display(), version, "ledger schema migrated");
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the sanity caps recorded events must meet; an event above them is refused
    /// with [`UsageError::OverCap`] and nothing of its batch is written. The default is
    /// [`Caps::ABSOLUTE`] (what validation always enforces); the tracker sets its
    /// configured caps (`MAI_MAX_EVENT_COST_USD`, `MAI_MAX_EVENT_TOKENS`).
    pub fn set_caps(&mut self, caps: Caps) {
        self.caps = caps;
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    pub(crate) fn overflow(&self, source: Overflow) -> LedgerError {
        LedgerError::Overflow {
            path: self.path.clone(),
            source,
        }
    }

    pub(crate) fn sql(&self, e: rusqlite::Error) -> LedgerError {
        LedgerError::Sqlite {
            path: self.path.clone(),
            source: e,
        }
    }

    /// Records one event in its own transaction.
    pub fn record(&mut self, ev: &UsageEvent) -> Result<RecordOutcome, LedgerError> {
        Ok(self.record_batch(std::slice::from_ref(ev))?[0])
    }

    /// Records many events in one transaction (all or nothing). Every event is
    /// validated first, so one bad event rejects the batch before anything is written.
    pub fn record_batch(
        &mut self,
        events: &[UsageEvent],
    ) -> Result<Vec<RecordOutcome>, LedgerError> {
        self.write(events, |_, _| Ok(()))
    }

    /// Validates `events`, then writes them and whatever `also` adds in one
    /// IMMEDIATE transaction (the write lock is taken up front, so the sequence number
    /// read at its start stays valid).
    fn write(
        &mut self,
        events: &[UsageEvent],
        also: impl FnOnce(&Transaction<'_>, &[RecordOutcome]) -> rusqlite::Result<()>,
    ) -> Result<Vec<RecordOutcome>, LedgerError> {
        for ev in events {
            ev.validate()?;
            check_bounds(ev, &self.caps)?;
        }
        let path = self.path.clone();
        let sql = |e| LedgerError::Sqlite {
            path: path.clone(),
            source: e,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let outcomes = write_batch(&tx, events).map_err(|e| match e {
            WriteError::Sql(e) => sql(e),
            WriteError::Row(id, detail) => LedgerError::BadRow { id, detail },
            WriteError::Overflow(source) => LedgerError::Overflow {
                path: self.path.clone(),
                source,
            },
        })?;
        also(&tx, &outcomes).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(outcomes)
    }

    /// Records a manual correction together with an audit entry saying who and why.
    pub fn record_audited(
        &mut self,
        ev: &UsageEvent,
        actor: &str,
        note: &str,
    ) -> Result<RecordOutcome, LedgerError> {
        let outcomes = self.write(std::slice::from_ref(ev), |tx, outcomes| {
            let detail = serde_json::json!({
                "note": note, "outcome": outcomes[0], "model": ev.model,
                "cost_usd": ev.cost_usd.to_string(), "tokens": ev.tokens,
            });
            tx.execute(
                "INSERT INTO audit (at, actor, action, generation_id, detail) VALUES (?1, ?2, 'record', ?3, ?4)",
                params![Utc::now().to_rfc3339(), actor, ev.generation_id, detail.to_string()],
            )
            .map(|_| ())
        })?;
        Ok(outcomes[0])
    }

    /// The stored event of a generation of `org_id`. Events are keyed by (org,
    /// generation id): the console's cache holds many clients, and a generation id is
    /// unique only within one client's tracker (schema migration 3).
    pub fn get(
        &self,
        org_id: &str,
        generation_id: &str,
    ) -> Result<Option<StoredEvent>, LedgerError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = ?1 AND generation_id = ?2"
            ))
            .map_err(|e| self.sql(e))?;
        let row = st
            .query_row([org_id, generation_id], read_event_row)
            .optional()
            .map_err(|e| self.sql(e))?;
        row.map(|r| r.into_stored()).transpose()
    }

    /// Provisional events of `org` created at or after `since`, oldest first: what the
    /// reconciliation must confirm.
    pub fn ids_needing_confirmation(
        &self,
        org: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT generation_id FROM events WHERE org_id = ?1 AND state = 'provisional' AND created_at >= ?2 ORDER BY created_at",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![org, ts(since)], |r| r.get::<_, String>(0))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Provisional events of `org` on the Warsaw days `from..=to`, oldest first: what a
    /// month still lacks OpenRouter's confirmation of (billing refuses to invoice over
    /// them unless told to, and then lists them).
    pub fn provisional_between(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StoredEvent>, LedgerError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = ?1 AND state = 'provisional' AND day >= ?2 AND day <= ?3 ORDER BY created_at, generation_id"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(
                params![org, from.to_string(), to.to_string()],
                read_event_row,
            )
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(|e| self.sql(e))?.into_stored()?);
        }
        Ok(out)
    }

    /// Number of provisional events of `org`.
    pub fn provisional_count(&self, org: &str) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE org_id = ?1 AND state = 'provisional'",
                [org],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// The markup history an older console or tracker kept in this ledger (table
    /// `markup`), before the fleet file became the one owner of markup. Nothing prices
    /// with it any more; it is read only to tell an operator upgrading an old cache
    /// which dated rates to carry over into the fleet file. `None` when there is none.
    pub fn legacy_markup_schedule(&self, org: &str) -> Result<Option<MarkupSchedule>, LedgerError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT effective_from, rate FROM markup WHERE org_id = ?1 ORDER BY effective_from",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([org], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut s = MarkupSchedule::default();
        for row in rows {
            let (day, rate) = row.map_err(|e| self.sql(e))?;
            let day = NaiveDate::from_str(&day).map_err(|e| LedgerError::BadRow {
                id: format!("markup {org} {day}"),
                detail: e.to_string(),
            })?;
            let rate = Decimal::from_str(&rate).map_err(|e| LedgerError::BadRow {
                id: format!("markup {org} {day}"),
                detail: e.to_string(),
            })?;
            s.set(day, rate);
        }
        Ok((!s.entries.is_empty()).then_some(s))
    }

    /// A month of `org`, priced with `schedule` (the fleet file's, never the ledger's).
    pub fn month_summary(
        &self,
        org: &str,
        month: YearMonth,
        today: NaiveDate,
        schedule: &MarkupSchedule,
    ) -> Result<MonthSummary, LedgerError> {
        let daily = self.daily(org, month.first_day(), month.last_day())?;
        Ok(crate::pricing::month_summary(
            org, month, &daily, schedule, today,
        )?)
    }

    /// Small persistent key/value store (cursors, settings of the ledger's owner).
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Forces a WAL checkpoint (before a backup or at shutdown).
    pub fn checkpoint(&self) -> Result<(), LedgerError> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| self.sql(e))
    }
}

pub(crate) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

const EVENT_COLUMNS: &str = "seq, generation_id, org_id, user_id, user_email, user_name, model, provider, \
     prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd, source, state, created_at, \
     chat_id, task, groups";

/// A row as read, before validation of its text fields.
pub(crate) struct EventRow {
    seq: i64,
    id: String,
    org: String,
    user: UserRef,
    model: String,
    provider: Option<String>,
    tokens: [i64; 4],
    cost: String,
    source: String,
    state: String,
    created_at: String,
    context: ChatContext,
}

pub(crate) fn read_event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        org: r.get(2)?,
        user: UserRef {
            id: r.get(3)?,
            email: r.get(4)?,
            name: r.get(5)?,
        },
        model: r.get(6)?,
        provider: r.get(7)?,
        tokens: [r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?],
        cost: r.get(12)?,
        source: r.get(13)?,
        state: r.get(14)?,
        created_at: r.get(15)?,
        context: ChatContext {
            chat_id: r.get(16)?,
            task: r.get(17)?,
            groups: r.get(18)?,
        },
    })
}

impl EventRow {
    pub(crate) fn into_stored(self) -> Result<StoredEvent, LedgerError> {
        let bad = |d: String| LedgerError::BadRow {
            id: self.id.clone(),
            detail: d,
        };
        let cost =
            Decimal::from_str(&self.cost).map_err(|e| bad(format!("cost `{}`: {e}", self.cost)))?;
        let source = Source::from_str(&self.source).map_err(|e| bad(e.to_string()))?;
        let state = EventState::from_str(&self.state).map_err(|e| bad(e.to_string()))?;
        let created_at = DateTime::parse_from_rfc3339(&self.created_at)
            .map_err(|e| bad(format!("created_at `{}`: {e}", self.created_at)))?
            .with_timezone(&Utc);
        let [p, c, r, k] = self.tokens;
        Ok(StoredEvent {
            seq: self.seq,
            event: UsageEvent {
                generation_id: self.id,
                org_id: self.org,
                user: self.user,
                model: self.model,
                provider: self.provider,
                tokens: Tokens {
                    prompt: p as u64,
                    completion: c as u64,
                    reasoning: r as u64,
                    cached: k as u64,
                },
                cost_usd: cost,
                source,
                state,
                created_at,
                context: self.context,
            },
        })
    }
}

enum WriteError {
    Sql(rusqlite::Error),
    Row(String, String),
    Overflow(Overflow),
}

impl From<Overflow> for WriteError {
    fn from(e: Overflow) -> Self {
        WriteError::Overflow(e)
    }
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sql(e)
    }
}

/// Signed change of one rollup row.
#[derive(Default)]
struct Delta {
    requests: i64,
    tokens: [i64; 4],
    cost: Decimal,
    user: Option<UserRef>,
}

/// `a + b` on i64 counts, or the overflow error (the rollup would be wrong, so the
/// transaction is refused instead).
fn add_i64(a: i64, b: i64, what: &'static str) -> Result<i64, Overflow> {
    a.checked_add(b).ok_or(Overflow { what })
}

impl Delta {
    /// Adds (`sign` 1) or removes (`sign` -1) `ev`'s contribution, checked.
    fn apply(&mut self, ev: &UsageEvent, sign: i64) -> Result<(), Overflow> {
        let t = &ev.tokens;
        let mut tokens = self.tokens;
        for (slot, v) in tokens
            .iter_mut()
            .zip([t.prompt, t.completion, t.reasoning, t.cached])
        {
            let v = i64::try_from(v).map_err(|_| Overflow {
                what: "rollup token count",
            })?;
            *slot = add_i64(*slot, sign * v, "rollup token count")?;
        }
        let cost = if sign > 0 {
            exact_add(self.cost, ev.cost_usd)
        } else {
            exact_sub(self.cost, ev.cost_usd)
        }
        .ok_or(Overflow {
            what: "rollup cost",
        })?;
        self.requests = add_i64(self.requests, sign, "rollup request count")?;
        self.tokens = tokens;
        self.cost = cost;
        Ok(())
    }
}

#[derive(Hash, PartialEq, Eq)]
enum RollupKey {
    Org(String, String),
    User(String, String, String),
    Model(String, String, String),
}

fn contribute(
    deltas: &mut HashMap<RollupKey, Delta>,
    ev: &UsageEvent,
    sign: i64,
) -> Result<(), Overflow> {
    let day = warsaw_day(ev.created_at).to_string();
    deltas
        .entry(RollupKey::Org(ev.org_id.clone(), day.clone()))
        .or_default()
        .apply(ev, sign)?;
    let user = deltas
        .entry(RollupKey::User(
            ev.org_id.clone(),
            day.clone(),
            ev.user.key().to_string(),
        ))
        .or_default();
    user.apply(ev, sign)?;
    if sign > 0 {
        user.user = Some(ev.user.clone());
    }
    deltas
        .entry(RollupKey::Model(ev.org_id.clone(), day, ev.model.clone()))
        .or_default()
        .apply(ev, sign)
}

fn write_batch(
    tx: &Transaction<'_>,
    events: &[UsageEvent],
) -> Result<Vec<RecordOutcome>, WriteError> {
    let mut next_seq: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM events", [], |r| {
            r.get(0)
        })?;
    let mut deltas: HashMap<RollupKey, Delta> = HashMap::new();
    let mut outcomes = Vec::with_capacity(events.len());
    let now = ts(Utc::now());
    let mut select = tx.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = ?1 AND generation_id = ?2"
    ))?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO events (generation_id, seq, org_id, day, user_key, user_id, user_email, user_name, model, provider,
             prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd, source, state, created_at, recorded_at,
             chat_id, task, groups)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
         ON CONFLICT (org_id, generation_id) DO UPDATE SET seq = excluded.seq, day = excluded.day,
             user_key = excluded.user_key, user_id = excluded.user_id, user_email = excluded.user_email,
             user_name = excluded.user_name, model = excluded.model, provider = excluded.provider,
             prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
             reasoning_tokens = excluded.reasoning_tokens, cached_tokens = excluded.cached_tokens,
             cost_usd = excluded.cost_usd, source = excluded.source, state = excluded.state,
             created_at = excluded.created_at, recorded_at = excluded.recorded_at,
             chat_id = excluded.chat_id, task = excluded.task, groups = excluded.groups",
    )?;
    // Events of this batch not yet visible through `select` are tracked here, so a
    // generation twice in one batch behaves as if recorded one after the other.
    // Keyed like the table: (org, generation id).
    let mut pending: HashMap<(&str, &str), UsageEvent> = HashMap::new();
    for ev in events {
        let key = (ev.org_id.as_str(), ev.generation_id.as_str());
        let old: Option<UsageEvent> = match pending.get(&key) {
            Some(e) => Some(e.clone()),
            None => match select
                .query_row([&ev.org_id, &ev.generation_id], read_event_row)
                .optional()?
            {
                Some(row) => Some(
                    row.into_stored()
                        .map_err(|e| WriteError::Row(ev.generation_id.clone(), e.to_string()))?
                        .event,
                ),
                None => None,
            },
        };
        let (outcome, new) = match old {
            None => (RecordOutcome::Inserted, ev.clone()),
            Some(old) if ev.authority() > old.authority() => {
                let mut merged = ev.clone();
                // The org is part of the key, so old and new share it; user details
                // the new record lacks are kept from the old one.
                merged.user = ev.user.clone().or(&old.user);
                merged.context = ev.context.clone().or(&old.context);
                // An erased person stays erased (GDPR art. 17): reconciliation's record
                // carries OpenRouter's `external_user` (the person's id or e-mail), a
                // late proxy record the whole identity and chat.
                if old.user.is_erased() {
                    merged.user = old.user.clone();
                    merged.context.chat_id = None;
                }
                if merged.provider.is_none() {
                    merged.provider = old.provider.clone();
                }
                contribute(&mut deltas, &old, -1)?;
                (RecordOutcome::Corrected, merged)
            }
            Some(_) => {
                outcomes.push(RecordOutcome::Unchanged);
                continue;
            }
        };
        contribute(&mut deltas, &new, 1)?;
        let t = &new.tokens;
        upsert.execute(params![
            new.generation_id,
            next_seq,
            new.org_id,
            warsaw_day(new.created_at).to_string(),
            new.user.key(),
            new.user.id,
            new.user.email,
            new.user.name,
            new.model,
            new.provider,
            t.prompt as i64,
            t.completion as i64,
            t.reasoning as i64,
            t.cached as i64,
            new.cost_usd.normalize().to_string(),
            new.source.as_str(),
            new.state.as_str(),
            ts(new.created_at),
            now,
            new.context.chat_id,
            new.context.task,
            new.context.groups,
        ])?;
        next_seq += 1;
        pending.insert(key, new);
        outcomes.push(outcome);
    }
    apply_deltas(tx, deltas)?;
    Ok(outcomes)
}

fn apply_deltas(tx: &Transaction<'_>, deltas: HashMap<RollupKey, Delta>) -> Result<(), WriteError> {
    for (key, d) in deltas {
        if d.requests == 0 && d.tokens == [0; 4] && d.cost.is_zero() && d.user.is_none() {
            continue;
        }
        let (table, where_sql, args): (&str, &str, Vec<String>) = match &key {
            RollupKey::Org(o, day) => (
                "rollup_org_day",
                "org_id = ?1 AND day = ?2",
                vec![o.clone(), day.clone()],
            ),
            RollupKey::User(o, day, u) => (
                "rollup_user_day",
                "org_id = ?1 AND day = ?2 AND user_key = ?3",
                vec![o.clone(), day.clone(), u.clone()],
            ),
            RollupKey::Model(o, day, m) => (
                "rollup_model_day",
                "org_id = ?1 AND day = ?2 AND model = ?3",
                vec![o.clone(), day.clone(), m.clone()],
            ),
        };
        let mut st = tx.prepare_cached(&format!(
            "SELECT requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd FROM {table} WHERE {where_sql}"
        ))?;
        let cur = st
            .query_row(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                    r.get::<_, String>(5)?,
                ))
            })
            .optional()?;
        let (mut req, mut tok, mut cost) = match cur {
            Some((r, t, c)) => (
                r,
                t,
                Decimal::from_str(&c).map_err(|e| {
                    WriteError::Row(format!("{table} {}", args.join("/")), e.to_string())
                })?,
            ),
            None => (0, [0; 4], Decimal::ZERO),
        };
        req = add_i64(req, d.requests, "rollup request count")?;
        for (a, b) in tok.iter_mut().zip(d.tokens) {
            *a = add_i64(*a, b, "rollup token count")?;
        }
        cost = exact_add(cost, d.cost).ok_or(Overflow {
            what: "rollup cost",
        })?;
        if req == 0 && tok == [0; 4] && cost.is_zero() {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE {where_sql}"))?
                .execute(rusqlite::params_from_iter(args.iter()))?;
            continue;
        }
        let cost = cost.normalize().to_string();
        match key {
            RollupKey::Org(o, day) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO rollup_org_day (org_id, day, requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![o, day, req, tok[0], tok[1], tok[2], tok[3], cost])?;
            }
            RollupKey::Model(o, day, m) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO rollup_model_day (org_id, day, model, requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![o, day, m, req, tok[0], tok[1], tok[2], tok[3], cost])?;
            }
            RollupKey::User(o, day, u) => {
                // Display fields: the latest record's, falling back to what the row had.
                let user = d.user.unwrap_or_default();
                tx.prepare_cached(
                    "INSERT INTO rollup_user_day (org_id, day, user_key, user_id, user_email, user_name, requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (org_id, day, user_key) DO UPDATE SET
                        user_id = COALESCE(excluded.user_id, user_id), user_email = COALESCE(excluded.user_email, user_email),
                        user_name = COALESCE(excluded.user_name, user_name), requests = excluded.requests,
                        prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
                        reasoning_tokens = excluded.reasoning_tokens, cached_tokens = excluded.cached_tokens, cost_usd = excluded.cost_usd",
                )?
                .execute(params![o, day, u, user.id, user.email, user.name, req, tok[0], tok[1], tok[2], tok[3], cost])?;
            }
        }
    }
    Ok(())
}
