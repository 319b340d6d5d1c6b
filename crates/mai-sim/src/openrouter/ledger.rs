//! The simulator's books: keys, every generation it served, and the per-key and
//! per-account counters derived from them (UTC days, Monday weeks, months).
//! Pure logic: no HTTP, no clock of its own (callers pass `now`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::config::{mask_key, KeySpec, LimitReset};

/// What the simulator served, for tests to compare a ledger against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationTruth {
    pub id: String,
    /// SHA-256 hex of the key that paid (the management API's `hash`).
    pub key_hash: String,
    /// Masked key, `sk-or-v1-3f9...a12`.
    pub key_label: String,
    pub key_name: String,
    pub model: String,
    pub provider: String,
    /// The request's `user` field.
    pub external_user: Option<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub reasoning_tokens: u32,
    pub cached_tokens: u32,
    pub cache_write_tokens: u32,
    /// USD charged to credits (`usage.cost`, `/generation` `total_cost`).
    pub cost: Decimal,
    /// USD the upstream charged.
    pub upstream_cost: Decimal,
    pub is_byok: bool,
    pub streamed: bool,
    pub cancelled: bool,
    /// `stop`, `length`, `error`, or `None` for a cancelled stream.
    pub finish_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Per-key sums over the generations served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct KeyTotals {
    pub generations: u64,
    pub cost: Decimal,
}

/// Fields of `GET /generation` that are not in the truth.
#[derive(Debug, Clone)]
pub(crate) struct GenMeta {
    /// `api_type` of `/generation`: `completions` for every text API, `embeddings`.
    pub api_type: &'static str,
    pub request_id: String,
    pub upstream_id: String,
    pub native_finish_reason: Option<String>,
    pub latency_ms: u64,
    pub generation_time_ms: u64,
    pub http_referer: Option<String>,
    pub user_agent: Option<String>,
    pub session_id: Option<String>,
    pub model_permaslug: String,
    /// When `/generation` starts answering 200; `None` = never.
    pub ready_at: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct GenRecord {
    pub truth: GenerationTruth,
    pub meta: GenMeta,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Money {
    pub usage: Decimal,
    pub byok: Decimal,
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.usage += o.usage;
        self.byok += o.byok;
    }
}

/// A key as the service stores it: the hash, never the plaintext.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub hash: String,
    pub label: String,
    pub name: String,
    pub disabled: bool,
    pub deleted: bool,
    pub management: bool,
    pub byok: bool,
    pub limit: Option<Decimal>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub workspace_id: String,
    /// Creation order, for "newest first".
    pub seq: u64,
    pub all_time: Money,
    pub by_day: BTreeMap<NaiveDate, Money>,
    pub generations: u64,
}

/// Usage of one key over the windows of spec 3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Windows {
    pub total: Money,
    pub daily: Money,
    pub weekly: Money,
    pub monthly: Money,
}

impl KeyEntry {
    pub fn windows(&self, now: DateTime<Utc>) -> Windows {
        let today = now.date_naive();
        let week_start = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
        let month_start = today.with_day(1).unwrap_or(today);
        let sum = |from: NaiveDate| {
            let mut m = Money::default();
            for (_, v) in self.by_day.range(from..=today) {
                m += *v;
            }
            m
        };
        Windows {
            total: self.all_time,
            daily: sum(today),
            weekly: sum(week_start),
            monthly: sum(month_start),
        }
    }

    /// Spend counted against the cap in the current reset window.
    pub fn spent_in_limit_window(&self, now: DateTime<Utc>) -> Decimal {
        let w = self.windows(now);
        let m = match self.limit_reset {
            None => w.total,
            Some(LimitReset::Daily) => w.daily,
            Some(LimitReset::Weekly) => w.weekly,
            Some(LimitReset::Monthly) => w.monthly,
        };
        if self.include_byok_in_limit {
            m.usage + m.byok
        } else {
            m.usage
        }
    }

    /// `limit_remaining`: cap minus window spend, never below 0; `None` without a cap.
    pub fn limit_remaining(&self, now: DateTime<Utc>) -> Option<Decimal> {
        self.limit
            .map(|l| (l - self.spent_in_limit_window(now)).max(Decimal::ZERO))
    }

    /// `Some("monthly")` etc. when the cap is spent (the 403 message's window name).
    pub fn limit_exceeded(&self, now: DateTime<Utc>) -> Option<&'static str> {
        let limit = self.limit?;
        (self.spent_in_limit_window(now) >= limit)
            .then(|| self.limit_reset.map_or("total", LimitReset::as_str))
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// SHA-256 hex of a key string.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Why a key cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Unknown,
    Disabled,
    Deleted,
    Expired,
}

/// One `/activity` row before serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActivityRow {
    pub date: NaiveDate,
    pub model: String,
    pub model_permaslug: String,
    pub provider_name: String,
    pub usage: Decimal,
    pub byok_usage_inference: Decimal,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub keys: HashMap<String, KeyEntry>,
    next_seq: u64,
    pub gens: Vec<GenRecord>,
    by_id: HashMap<String, usize>,
    /// All-time account usage (deleted keys included).
    pub total_usage: Decimal,
    /// Free-model requests per UTC day and per minute (epoch minute).
    pub free_day: (Option<NaiveDate>, u32),
    pub free_minute: (i64, u32),
}

impl Ledger {
    /// Adds or replaces a key; returns its hash. Counters survive a replace.
    pub fn register(&mut self, spec: &KeySpec, now: DateTime<Utc>) -> String {
        let hash = key_hash(&spec.key);
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = self.keys.entry(hash.clone()).or_insert_with(|| KeyEntry {
            hash: hash.clone(),
            label: mask_key(&spec.key),
            name: String::new(),
            disabled: false,
            deleted: false,
            management: false,
            byok: false,
            limit: None,
            limit_reset: None,
            include_byok_in_limit: false,
            created_at: now,
            updated_at: None,
            expires_at: None,
            workspace_id: String::new(),
            seq,
            all_time: Money::default(),
            by_day: BTreeMap::new(),
            generations: 0,
        });
        entry.name = spec.name.clone();
        entry.disabled = spec.disabled;
        entry.deleted = false;
        entry.management = spec.management;
        entry.byok = spec.byok;
        entry.limit = spec.limit;
        entry.limit_reset = spec.limit_reset;
        entry.include_byok_in_limit = spec.include_byok_in_limit;
        entry.expires_at = spec.expires_at;
        entry.workspace_id = spec
            .workspace_id
            .clone()
            .unwrap_or_else(|| super::config::DEFAULT_WORKSPACE_ID.to_owned());
        hash
    }

    /// Finds a usable key by its plaintext; registers unknown well-formed keys when
    /// `accept_any` (spec: a test can invent a key).
    pub fn authenticate(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
        accept_any: bool,
    ) -> Result<String, AuthFailure> {
        let hash = key_hash(key);
        match self.keys.get(&hash) {
            Some(k) if k.deleted => Err(AuthFailure::Deleted),
            Some(k) if k.disabled => Err(AuthFailure::Disabled),
            Some(k) if k.expired(now) => Err(AuthFailure::Expired),
            Some(_) => Ok(hash),
            None if accept_any && super::config::is_well_formed_key(key) => {
                Ok(self.register(&KeySpec::new(key), now))
            }
            None => Err(AuthFailure::Unknown),
        }
    }

    pub fn record(&mut self, rec: GenRecord) {
        let t = &rec.truth;
        let money = if t.is_byok {
            Money {
                usage: t.cost,
                byok: t.upstream_cost,
            }
        } else {
            Money {
                usage: t.cost,
                byok: Decimal::ZERO,
            }
        };
        if let Some(k) = self.keys.get_mut(&t.key_hash) {
            k.all_time += money;
            *k.by_day.entry(t.created_at.date_naive()).or_default() += money;
            k.generations += 1;
        }
        self.total_usage += money.usage;
        self.by_id.insert(t.id.clone(), self.gens.len());
        self.gens.push(rec);
    }

    pub fn generation(&self, id: &str) -> Option<&GenRecord> {
        self.by_id.get(id).map(|&i| &self.gens[i])
    }

    pub fn totals_by_hash(&self, hash: &str) -> KeyTotals {
        self.keys
            .get(hash)
            .map(|k| KeyTotals {
                generations: k.generations,
                cost: k.all_time.usage,
            })
            .unwrap_or_default()
    }

    /// Counts one free-model request; `Err((limit, reset_ms, per_day))` when over a limit.
    pub fn take_free_request(
        &mut self,
        now: DateTime<Utc>,
        per_minute: u32,
        per_day: u32,
    ) -> Result<(), (u32, i64, bool)> {
        let today = now.date_naive();
        if self.free_day.0 != Some(today) {
            self.free_day = (Some(today), 0);
        }
        let minute = now.timestamp().div_euclid(60);
        if self.free_minute.0 != minute {
            self.free_minute = (minute, 0);
        }
        if self.free_day.1 >= per_day {
            let reset = (today + Days::new(1))
                .and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp_millis());
            return Err((per_day, reset, true));
        }
        if self.free_minute.1 >= per_minute {
            return Err((per_minute, (minute + 1) * 60_000, false));
        }
        self.free_day.1 += 1;
        self.free_minute.1 += 1;
        Ok(())
    }

    /// `/activity`: last 30 completed UTC days, per (date, model, provider).
    pub fn activity(
        &self,
        now: DateTime<Utc>,
        date: Option<NaiveDate>,
        key_hash: Option<&str>,
    ) -> Vec<ActivityRow> {
        let today = now.date_naive();
        let first = today - Days::new(30);
        let mut rows: BTreeMap<(NaiveDate, String, String), ActivityRow> = BTreeMap::new();
        for g in &self.gens {
            let t = &g.truth;
            let d = t.created_at.date_naive();
            if d >= today || d < first || date.is_some_and(|x| x != d) {
                continue;
            }
            if key_hash.is_some_and(|h| h != t.key_hash) {
                continue;
            }
            let row = rows
                .entry((d, t.model.clone(), t.provider.clone()))
                .or_insert_with(|| ActivityRow {
                    date: d,
                    model: t.model.clone(),
                    model_permaslug: g.meta.model_permaslug.clone(),
                    provider_name: t.provider.clone(),
                    usage: Decimal::ZERO,
                    byok_usage_inference: Decimal::ZERO,
                    requests: 0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    reasoning_tokens: 0,
                });
            row.usage += t.cost;
            if t.is_byok {
                row.byok_usage_inference += t.upstream_cost;
            }
            row.requests += 1;
            row.prompt_tokens += u64::from(t.prompt_tokens);
            row.completion_tokens += u64::from(t.completion_tokens);
            row.reasoning_tokens += u64::from(t.reasoning_tokens);
        }
        rows.into_values().collect()
    }

    /// Keys of one workspace for the management list: newest first, deleted ones never.
    pub fn keys_newest_first(&self, workspace_id: &str, include_disabled: bool) -> Vec<&KeyEntry> {
        let mut v: Vec<&KeyEntry> = self
            .keys
            .values()
            .filter(|k| {
                !k.deleted && k.workspace_id == workspace_id && (include_disabled || !k.disabled)
            })
            .collect();
        v.sort_by_key(|k| std::cmp::Reverse(k.seq));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    const K: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn gen(id: &str, hash: &str, at: DateTime<Utc>, cost: &str) -> GenRecord {
        GenRecord {
            truth: GenerationTruth {
                id: id.into(),
                key_hash: hash.into(),
                key_label: String::new(),
                key_name: String::new(),
                model: "a/b".into(),
                provider: "P".into(),
                external_user: None,
                prompt_tokens: 10,
                completion_tokens: 5,
                reasoning_tokens: 1,
                cached_tokens: 0,
                cache_write_tokens: 0,
                cost: Decimal::from_str(cost).unwrap(),
                upstream_cost: Decimal::from_str(cost).unwrap(),
                is_byok: false,
                streamed: false,
                cancelled: false,
                finish_reason: Some("stop".into()),
                created_at: at,
            },
            meta: GenMeta {
                api_type: "completions",
                request_id: String::new(),
                upstream_id: String::new(),
                native_finish_reason: None,
                latency_ms: 0,
                generation_time_ms: 0,
                http_referer: None,
                user_agent: None,
                session_id: None,
                model_permaslug: "a/b".into(),
                ready_at: None,
            },
        }
    }

    #[test]
    fn windows_follow_utc_days_monday_weeks_and_months() {
        let mut l = Ledger::default();
        // Wednesday 2026-01-14.
        let now = Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0).unwrap();
        let h = l.register(&KeySpec::new(K), now);
        l.record(gen(
            "g1",
            &h,
            Utc.with_ymd_and_hms(2026, 1, 14, 0, 0, 0).unwrap(),
            "1",
        ));
        l.record(gen(
            "g2",
            &h,
            Utc.with_ymd_and_hms(2026, 1, 12, 0, 0, 0).unwrap(),
            "2",
        )); // Monday
        l.record(gen(
            "g3",
            &h,
            Utc.with_ymd_and_hms(2026, 1, 11, 23, 59, 59).unwrap(),
            "4",
        )); // Sunday
        l.record(gen(
            "g4",
            &h,
            Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap(),
            "8",
        ));
        let w = l.keys[&h].windows(now);
        assert_eq!(w.daily.usage, Decimal::from(1));
        assert_eq!(w.weekly.usage, Decimal::from(3));
        assert_eq!(w.monthly.usage, Decimal::from(7));
        assert_eq!(w.total.usage, Decimal::from(15));
        assert_eq!(l.totals_by_hash(&h).generations, 4);

        let act = l.activity(now, None, Some(&h));
        assert_eq!(act.len(), 3, "today excluded, the rest one row per day");
        assert_eq!(act[0].date, NaiveDate::from_ymd_opt(2025, 12, 31).unwrap());
    }

    #[test]
    fn limit_window_and_message() {
        let mut l = Ledger::default();
        let now = Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0).unwrap();
        let mut spec = KeySpec::new(K);
        spec.limit = Some(Decimal::from(3));
        spec.limit_reset = Some(LimitReset::Daily);
        let h = l.register(&spec, now);
        l.record(gen("g1", &h, now - chrono::TimeDelta::days(1), "5"));
        assert_eq!(l.keys[&h].limit_exceeded(now), None);
        assert_eq!(l.keys[&h].limit_remaining(now), Some(Decimal::from(3)));
        l.record(gen("g2", &h, now, "3"));
        assert_eq!(l.keys[&h].limit_exceeded(now), Some("daily"));
        assert_eq!(l.keys[&h].limit_remaining(now), Some(Decimal::ZERO));
    }

    #[test]
    fn unknown_keys_only_with_accept_any() {
        let mut l = Ledger::default();
        let now = Utc::now();
        assert_eq!(l.authenticate(K, now, false), Err(AuthFailure::Unknown));
        assert!(l.authenticate(K, now, true).is_ok());
        assert_eq!(
            l.authenticate("sk-or-v1-zz", now, true),
            Err(AuthFailure::Unknown)
        );
    }
}
