//! Read side of the ledger: what dashboards and invoices ask. Everything reads the
//! daily rollups (at most one row per org/day/user or model), never scans events,
//! except the raw "events since cursor" feed.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rusqlite::params;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{read_event_row, Ledger, LedgerError, StoredEvent, EVENT_COLUMNS};
use crate::pricing::{client_cost, price_days, MarkupSchedule};
use crate::usage::{exact_add, Overflow, Tokens, Totals, UserRef};

/// Longest range a query may span (a bit more than a year, for year-over-year views).
pub const MAX_RANGE_DAYS: i64 = 400;

/// A row with its client cost (exact, priced by markup segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced<T> {
    pub row: T,
    pub client_cost_usd: Decimal,
}

/// Highest raw cost first, then by key; costs normalized.
fn sorted<T>(
    mut v: Vec<Priced<T>>,
    key: impl Fn(&Priced<T>) -> String,
    cost: impl Fn(&Priced<T>) -> Decimal,
) -> Vec<Priced<T>> {
    v.sort_by(|a, b| cost(b).cmp(&cost(a)).then_with(|| key(a).cmp(&key(b))));
    for p in &mut v {
        p.client_cost_usd = p.client_cost_usd.normalize();
    }
    v
}

/// One user's usage over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTotals {
    pub user: UserRef,
    pub totals: Totals,
}

/// One model's usage over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelTotals {
    pub model: String,
    pub totals: Totals,
}

/// What [`Ledger::by_context_priced`] groups a range's events by: a part of their
/// [`crate::usage::ChatContext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextKey {
    /// The task kind: `chat` (the user's own message), a background task's name, or
    /// `(unknown)` when the chat app did not say.
    Task,
    /// The user's group set, or `(no group)`.
    Group,
    /// The chat id, or `(no chat)`.
    Chat,
}

impl ContextKey {
    fn column(self) -> &'static str {
        match self {
            ContextKey::Task => "task",
            ContextKey::Group => "groups",
            ContextKey::Chat => "chat_id",
        }
    }
    /// The row key of events that lack this part (one owner: mai-wire's constants).
    pub fn missing(self) -> &'static str {
        match self {
            ContextKey::Task => mai_wire::tracker::TASK_UNKNOWN,
            ContextKey::Group => mai_wire::tracker::NO_GROUP,
            ContextKey::Chat => mai_wire::tracker::NO_CHAT,
        }
    }
}

/// The usage of the events sharing one key (a task kind, group set or chat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTotals {
    pub key: String,
    pub totals: Totals,
}

/// A page of the raw event feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    /// Pass back as `cursor` to continue; equals the input cursor when empty.
    pub next_cursor: i64,
    pub has_more: bool,
}

fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), LedgerError> {
    if from > to {
        return Err(LedgerError::BadQuery(format!(
            "range {from}..{to} is inverted: `from` must not be after `to`"
        )));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(LedgerError::BadQuery(format!(
            "range {from}..{to} spans more than {MAX_RANGE_DAYS} days; query it in parts"
        )));
    }
    Ok(())
}

const TOTALS_COLS: &str =
    "requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd";

fn read_totals(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<(Totals, String)> {
    let cost: String = r.get(at + 5)?;
    Ok((
        Totals {
            requests: r.get::<_, i64>(at)? as u64,
            tokens: Tokens {
                prompt: r.get::<_, i64>(at + 1)? as u64,
                completion: r.get::<_, i64>(at + 2)? as u64,
                reasoning: r.get::<_, i64>(at + 3)? as u64,
                cached: r.get::<_, i64>(at + 4)? as u64,
            },
            cost_usd: Decimal::ZERO,
        },
        cost,
    ))
}

/// Like [`read_totals`] for an event row: columns 1..=5 are the four token counts and
/// the cost, there is no request count.
fn read_totals_without_requests(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Totals, String)> {
    Ok((
        Totals {
            requests: 0,
            tokens: Tokens {
                prompt: r.get::<_, i64>(1)? as u64,
                completion: r.get::<_, i64>(2)? as u64,
                reasoning: r.get::<_, i64>(3)? as u64,
                cached: r.get::<_, i64>(4)? as u64,
            },
            cost_usd: Decimal::ZERO,
        },
        r.get(5)?,
    ))
}

fn with_cost(t: (Totals, String), what: &str) -> Result<Totals, LedgerError> {
    let (mut t, c) = t;
    t.cost_usd = Decimal::from_str(&c).map_err(|e| LedgerError::BadRow {
        id: what.to_string(),
        detail: format!("cost `{c}`: {e}"),
    })?;
    Ok(t)
}

impl Ledger {
    /// One Warsaw day of `org`.
    pub fn day(&self, org: &str, day: NaiveDate) -> Result<Totals, LedgerError> {
        self.range(org, day, day)
    }

    /// Every day of `from..=to` (zeros included), oldest first.
    pub fn daily(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, Totals)>, LedgerError> {
        check_range(from, to)?;
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT day, {TOTALS_COLS} FROM rollup_org_day WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![org, from.to_string(), to.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, read_totals(r, 1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut found = BTreeMap::new();
        for row in rows {
            let (day, t) = row.map_err(|e| self.sql(e))?;
            let what = format!("rollup_org_day {org}/{day}");
            let d = NaiveDate::from_str(&day).map_err(|e| LedgerError::BadRow {
                id: what.clone(),
                detail: e.to_string(),
            })?;
            found.insert(d, with_cost(t, &what)?);
        }
        Ok(from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| (d, found.get(&d).copied().unwrap_or_default()))
            .collect())
    }

    /// Sum over `from..=to`.
    pub fn range(&self, org: &str, from: NaiveDate, to: NaiveDate) -> Result<Totals, LedgerError> {
        let mut total = Totals::default();
        for (_, t) in self.daily(org, from, to)? {
            total.add(&t).map_err(|e| self.overflow(e))?;
        }
        total.cost_usd = total.cost_usd.normalize();
        Ok(total)
    }

    /// Per user over `from..=to`, highest raw cost first.
    pub fn by_user(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UserTotals>, LedgerError> {
        check_range(from, to)?;
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT user_key, user_id, user_email, user_name, {TOTALS_COLS} FROM rollup_user_day
                 WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![org, from.to_string(), to.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    UserRef {
                        id: r.get(1)?,
                        email: r.get(2)?,
                        name: r.get(3)?,
                    },
                    read_totals(r, 4)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut acc: BTreeMap<String, UserTotals> = BTreeMap::new();
        for row in rows {
            let (key, user, t) = row.map_err(|e| self.sql(e))?;
            let t = with_cost(t, &format!("rollup_user_day {org}/{key}"))?;
            let entry = acc.entry(key).or_insert_with(|| UserTotals {
                user: UserRef::default(),
                totals: Totals::default(),
            });
            // Rows come oldest first: later days' display fields win.
            entry.user = user.or(&entry.user);
            entry.totals.add(&t).map_err(|e| self.overflow(e))?;
        }
        let mut out: Vec<UserTotals> = acc.into_values().collect();
        for u in &mut out {
            u.totals.cost_usd = u.totals.cost_usd.normalize();
        }
        out.sort_by(|a, b| {
            b.totals
                .cost_usd
                .cmp(&a.totals.cost_usd)
                .then_with(|| a.user.key().cmp(b.user.key()))
        });
        Ok(out)
    }

    /// Per model over `from..=to`, highest raw cost first.
    pub fn by_model(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ModelTotals>, LedgerError> {
        check_range(from, to)?;
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT model, {TOTALS_COLS} FROM rollup_model_day WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![org, from.to_string(), to.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, read_totals(r, 1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut acc: BTreeMap<String, Totals> = BTreeMap::new();
        for row in rows {
            let (model, t) = row.map_err(|e| self.sql(e))?;
            let t = with_cost(t, &format!("rollup_model_day {org}/{model}"))?;
            acc.entry(model)
                .or_default()
                .add(&t)
                .map_err(|e| self.overflow(e))?;
        }
        let mut out: Vec<ModelTotals> = acc
            .into_iter()
            .map(|(model, mut totals)| {
                totals.cost_usd = totals.cost_usd.normalize();
                ModelTotals { model, totals }
            })
            .collect();
        out.sort_by(|a, b| {
            b.totals
                .cost_usd
                .cmp(&a.totals.cost_usd)
                .then_with(|| a.model.cmp(&b.model))
        });
        Ok(out)
    }

    /// [`Ledger::by_user`] with each user's client cost, priced by markup segment: the
    /// range splits into stretches of one rate and each stretch is priced at its rate,
    /// so the users' costs sum exactly to the range's client cost (`price_period`).
    /// The tracker's and the console's per-user views both come from here.
    pub fn by_user_priced(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
        schedule: &MarkupSchedule,
    ) -> Result<Vec<Priced<UserTotals>>, LedgerError> {
        let mut acc: BTreeMap<String, Priced<UserTotals>> = BTreeMap::new();
        for seg in price_days(schedule, &self.daily(org, from, to)?)? {
            for u in self.by_user(org, seg.from, seg.to)? {
                let e = acc
                    .entry(u.user.key().to_owned())
                    .or_insert_with(|| Priced {
                        row: UserTotals {
                            user: u.user.clone(),
                            totals: Totals::default(),
                        },
                        client_cost_usd: Decimal::ZERO,
                    });
                e.row.user = u.user.clone().or(&e.row.user);
                e.row.totals.add(&u.totals).map_err(|e| self.overflow(e))?;
                let c = client_cost(u.totals.cost_usd, seg.rate)?;
                e.client_cost_usd = exact_add(e.client_cost_usd, c).ok_or_else(|| {
                    self.overflow(Overflow {
                        what: "client cost",
                    })
                })?;
            }
        }
        let mut v: Vec<_> = acc.into_values().collect();
        v.iter_mut()
            .for_each(|p| p.row.totals.cost_usd = p.row.totals.cost_usd.normalize());
        Ok(sorted(
            v,
            |p| p.row.user.key().to_owned(),
            |p| p.row.totals.cost_usd,
        ))
    }

    /// [`Ledger::by_model`] priced by markup segment, as [`Ledger::by_user_priced`].
    pub fn by_model_priced(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
        schedule: &MarkupSchedule,
    ) -> Result<Vec<Priced<ModelTotals>>, LedgerError> {
        let mut acc: BTreeMap<String, Priced<ModelTotals>> = BTreeMap::new();
        for seg in price_days(schedule, &self.daily(org, from, to)?)? {
            for m in self.by_model(org, seg.from, seg.to)? {
                let e = acc.entry(m.model.clone()).or_insert_with(|| Priced {
                    row: ModelTotals {
                        model: m.model.clone(),
                        totals: Totals::default(),
                    },
                    client_cost_usd: Decimal::ZERO,
                });
                e.row.totals.add(&m.totals).map_err(|e| self.overflow(e))?;
                let c = client_cost(m.totals.cost_usd, seg.rate)?;
                e.client_cost_usd = exact_add(e.client_cost_usd, c).ok_or_else(|| {
                    self.overflow(Overflow {
                        what: "client cost",
                    })
                })?;
            }
        }
        let mut v: Vec<_> = acc.into_values().collect();
        v.iter_mut()
            .for_each(|p| p.row.totals.cost_usd = p.row.totals.cost_usd.normalize());
        Ok(sorted(
            v,
            |p| p.row.model.clone(),
            |p| p.row.totals.cost_usd,
        ))
    }

    /// Per task kind, group set or chat over `from..=to` (Warsaw days), unordered.
    ///
    /// There is no rollup by these keys (a chat id is nearly one key per few events),
    /// so this sums the range's events themselves through the `(org_id, day)` index:
    /// one pass, costs added as exact decimals, never in SQL (the text would go
    /// through a float there).
    pub fn by_context(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
        key: ContextKey,
    ) -> Result<BTreeMap<String, Totals>, LedgerError> {
        check_range(from, to)?;
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {}, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd
                 FROM events WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3",
                key.column()
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![org, from.to_string(), to.to_string()], |r| {
                let mut t = read_totals_without_requests(r)?;
                t.0.requests = 1;
                Ok((r.get::<_, Option<String>>(0)?, t))
            })
            .map_err(|e| self.sql(e))?;
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        for row in rows {
            let (k, t) = row.map_err(|e| self.sql(e))?;
            let k = k.unwrap_or_else(|| key.missing().to_owned());
            let t = with_cost(t, &format!("event of {org}/{k}"))?;
            out.entry(k)
                .or_default()
                .add(&t)
                .map_err(|e| self.overflow(e))?;
        }
        Ok(out)
    }

    /// [`Ledger::by_context`] priced by markup segment, as [`Ledger::by_user_priced`]:
    /// the rows sum exactly to the range's totals and client cost. Highest raw cost
    /// first, then by key.
    pub fn by_context_priced(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
        schedule: &MarkupSchedule,
        key: ContextKey,
    ) -> Result<Vec<Priced<KeyTotals>>, LedgerError> {
        let mut acc: BTreeMap<String, Priced<KeyTotals>> = BTreeMap::new();
        for seg in price_days(schedule, &self.daily(org, from, to)?)? {
            for (k, t) in self.by_context(org, seg.from, seg.to, key)? {
                let e = acc.entry(k.clone()).or_insert_with(|| Priced {
                    row: KeyTotals {
                        key: k,
                        totals: Totals::default(),
                    },
                    client_cost_usd: Decimal::ZERO,
                });
                e.row.totals.add(&t).map_err(|e| self.overflow(e))?;
                let c = client_cost(t.cost_usd, seg.rate)?;
                e.client_cost_usd = exact_add(e.client_cost_usd, c).ok_or_else(|| {
                    self.overflow(Overflow {
                        what: "client cost",
                    })
                })?;
            }
        }
        let mut v: Vec<_> = acc.into_values().collect();
        v.iter_mut()
            .for_each(|p| p.row.totals.cost_usd = p.row.totals.cost_usd.normalize());
        Ok(sorted(v, |p| p.row.key.clone(), |p| p.row.totals.cost_usd))
    }

    /// Orgs with any usage.
    pub fn orgs(&self) -> Result<Vec<String>, LedgerError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT DISTINCT org_id FROM rollup_org_day ORDER BY org_id")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Per model, the usage of `org`'s events created in the UTC window `[from, to)`.
    ///
    /// OpenRouter's counters (`/key` daily and monthly, `/activity`) use UTC days, the
    /// rollups use Warsaw days, so drift checks sum the events themselves. Scans the
    /// window's events through the `(org_id, created_at)` index: for background jobs,
    /// not dashboards.
    pub fn utc_window_by_model(
        &self,
        org: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<BTreeMap<String, Totals>, LedgerError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT model, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd
                 FROM events WHERE org_id = ?1 AND created_at >= ?2 AND created_at < ?3",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![org, super::ts(from), super::ts(to)], |r| {
                let mut t = read_totals_without_requests(r)?;
                t.0.requests = 1;
                Ok((r.get::<_, String>(0)?, t))
            })
            .map_err(|e| self.sql(e))?;
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        for row in rows {
            let (model, t) = row.map_err(|e| self.sql(e))?;
            let t = with_cost(t, &format!("event of {org}/{model}"))?;
            out.entry(model)
                .or_default()
                .add(&t)
                .map_err(|e| self.overflow(e))?;
        }
        for t in out.values_mut() {
            t.cost_usd = t.cost_usd.normalize();
        }
        Ok(out)
    }

    /// How many events of `org` fall on the Warsaw days `from..=to`.
    pub fn count_events(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u64, LedgerError> {
        check_range(from, to)?;
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM events WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3",
            )
            .map_err(|e| self.sql(e))?
            .query_row(params![org, from.to_string(), to.to_string()], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        Ok(n as u64)
    }

    /// Every event of `org` on the Warsaw days `from..=to`, oldest first (creation time,
    /// then generation id), handed to `f` one at a time without holding them all: a
    /// month of any size streams. Stops at `f`'s first error.
    pub fn for_each_event<E: From<LedgerError>>(
        &self,
        org: &str,
        from: NaiveDate,
        to: NaiveDate,
        mut f: impl FnMut(StoredEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        check_range(from, to)?;
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY created_at, generation_id"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(
                params![org, from.to_string(), to.to_string()],
                read_event_row,
            )
            .map_err(|e| self.sql(e))?;
        for row in rows {
            f(row.map_err(|e| self.sql(e))?.into_stored()?)?;
        }
        Ok(())
    }

    /// Raw events changed after `cursor` (a previous `next_cursor`, or 0), in change order.
    pub fn events_since(&self, cursor: i64, limit: usize) -> Result<EventPage, LedgerError> {
        let limit = limit.clamp(1, 10_000);
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![cursor, (limit + 1) as i64], read_event_row)
            .map_err(|e| self.sql(e))?;
        let mut events = Vec::with_capacity(limit);
        for row in rows {
            events.push(row.map_err(|e| self.sql(e))?.into_stored()?);
        }
        let has_more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = events.last().map_or(cursor, |e| e.seq);
        Ok(EventPage {
            events,
            next_cursor,
            has_more,
        })
    }
}
