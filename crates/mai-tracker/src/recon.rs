//! Reconciliation: completes provisional events from OpenRouter's own records and
//! measures the drift between the ledger and OpenRouter's counters.
//!
//! OpenRouter has no endpoint that lists generations, so the ids come from the proxy
//! (ledger + crash journal); each is confirmed with `GET /generation?id=`, which lags
//! (404 for a while after the request) and is rate limited, hence retries with backoff
//! honouring `Retry-After`. Totals are checked against `GET /key` (live, UTC windows)
//! and, with a management key, `GET /activity` (completed UTC days per model).

use crate::shutdown::Shutdown;
use crate::state::AppState;
use chrono::{Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc};
use futures::StreamExt;
use mai_core::ledger::RecordOutcome;
use mai_core::openrouter::{GenerationStats, OpenRouterClient, OpenRouterError, Refusal};
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_wire::tracker::{ActivityDrift, Drift, KeyState, SyncReport, SyncStatus};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Attempts per id within one run (404s are not retried within a run: the next run
/// asks again).
const ATTEMPTS: u32 = 4;
/// Concurrent `/generation` lookups.
const CONCURRENCY: usize = 4;
/// Longest wait between attempts, whatever Retry-After says.
const MAX_WAIT: Duration = Duration::from_secs(30);

enum Lookup {
    Found(Box<GenerationStats>),
    NotYet,
    Failed(String),
}

async fn lookup(client: &OpenRouterClient, id: &str) -> Lookup {
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        match client.generation(id).await {
            Ok(g) => return Lookup::Found(Box::new(g)),
            Err(OpenRouterError::Api(a)) if a.is_not_found() => return Lookup::NotYet,
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                let w = e.retry_after().unwrap_or(wait).min(MAX_WAIT);
                tracing::debug!(generation_id = id, error = %e, wait_ms = w.as_millis() as u64, "retrying /generation");
                tokio::time::sleep(w).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
            Err(e) => return Lookup::Failed(format!("{id}: {e}")),
        }
    }
    Lookup::Failed(format!("{id}: gave up after {ATTEMPTS} attempts"))
}

/// One reconciliation run. Serialised with other runs by `sync_lock`.
pub async fn run_once(st: &Arc<AppState>, days_back: u32) -> SyncReport {
    let _guard = st.sync_lock.lock().await;
    let started = Utc::now();
    {
        let mut s = st.sync.lock().unwrap_or_else(|p| p.into_inner());
        s.running = true;
        s.last_run = Some(started);
    }
    let report = run_inner(st, days_back).await;
    let mut s = st.sync.lock().unwrap_or_else(|p| p.into_inner());
    s.running = false;
    match report.status {
        SyncStatus::Ok => {
            s.last_success = Some(started);
            s.last_error = None;
        }
        SyncStatus::Partial | SyncStatus::Error => s.last_error = report.errors.first().cloned(),
    }
    if report.drift.is_some() {
        s.drift = report.drift.clone();
    }
    st.metrics.count_sync(report.status);
    report
}

async fn run_inner(st: &Arc<AppState>, days_back: u32) -> SyncReport {
    let mut errors = Vec::new();
    // Ids the journal knows but the ledger may not (crash, or the file grew).
    if let Err(e) = replay_journal(st).await {
        errors.push(format!("crash journal: {e}"));
    }
    let org = st.cfg.org_id.clone();
    let since = confirmation_since(Utc::now(), days_back);
    let ids = match st
        .read(move |l| l.ids_needing_confirmation(&org, since))
        .await
    {
        Ok(ids) => ids,
        Err(e) => {
            return SyncReport {
                status: SyncStatus::Error,
                checked: 0,
                confirmed: 0,
                still_provisional: 0,
                corrected: 0,
                errors: vec![format!("reading provisional ids from the ledger: {e}")],
                drift: None,
            }
        }
    };
    let client = st.openrouter();
    let checked = ids.len() as u64;
    let results: Vec<(String, Lookup)> = futures::stream::iter(ids)
        .map(|id| {
            let c = client.clone();
            async move {
                let r = lookup(&c, &id).await;
                (id, r)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut events = Vec::new();
    let mut still = 0u64;
    for (id, r) in results {
        match r {
            Lookup::Found(g) => events.push((id, g)),
            Lookup::NotYet => still += 1,
            Lookup::Failed(e) => {
                still += 1;
                errors.push(e)
            }
        }
    }
    let mut confirmed = 0;
    let mut corrected = 0;
    if !events.is_empty() {
        let ids: Vec<String> = events.iter().map(|(id, _)| id.clone()).collect();
        let org = st.cfg.org_id.clone();
        let stored = st
            .read(move |l| {
                ids.iter()
                    .map(|id| l.get(&org, id))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .unwrap_or_default();
        let mut batch = Vec::new();
        for ((id, g), old) in events
            .iter()
            .zip(stored.iter().chain(std::iter::repeat(&None)))
        {
            let old = old.as_ref().map(|s| &s.event);
            let ev = event_from_stats(&st.cfg.org_id, id, g, old);
            if let Some(o) = old {
                if !o.cost_usd.is_zero() && (o.cost_usd != ev.cost_usd || o.tokens != ev.tokens) {
                    corrected += 1;
                }
            }
            batch.push(ev);
        }
        match st.writer.record_wait(batch).await {
            Ok(outcomes) => {
                confirmed = outcomes
                    .iter()
                    .filter(|o| **o != RecordOutcome::Unchanged)
                    .count() as u64
            }
            Err(e) => errors.push(format!("writing confirmed events: {e}")),
        }
    }
    let drift = match check_key_and_drift(st).await {
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let status = if errors.is_empty() {
        SyncStatus::Ok
    } else if confirmed > 0 || drift.is_some() {
        SyncStatus::Partial
    } else {
        SyncStatus::Error
    };
    SyncReport {
        status,
        checked,
        confirmed,
        still_provisional: still,
        corrected,
        errors,
        drift,
    }
}

/// How far back provisional events are looked up: `days_back`, but never less than the
/// start of the previous month (Warsaw calendar, with a day's margin for the offset).
///
/// The tracker does not know what has been invoiced; the console invoices a month after
/// it ends, so the months that may still be invoiced are the current one and the one
/// before. A provisional event in them must keep being asked about: left alone it would
/// stay at $0 (or at a webhook's unchecked cost) on an invoice. A calendar bound rather
/// than a fixed N days: it is exactly "not yet invoiced" on the 1st of a month and costs
/// nothing extra, since only provisional events are looked up (a handful; `/generation`
/// answers 404 for ids it never knew, which are asked once per run). Older provisional
/// events are out of any invoice still to issue; billing refuses a month that has any
/// (mai-billing), so none is billed at $0 silently.
pub fn confirmation_since(now: chrono::DateTime<Utc>, days_back: u32) -> chrono::DateTime<Utc> {
    let by_days = now - ChronoDuration::days(days_back as i64);
    let prev = mai_core::time::YearMonth::of(mai_core::time::warsaw_day(now))
        .prev()
        .first_day();
    let by_month = Utc.from_utc_datetime(&prev.and_hms_opt(0, 0, 0).expect("midnight"))
        - ChronoDuration::days(1);
    by_days.min(by_month)
}

/// Turns OpenRouter's record of a generation into a confirmed ledger event. Keeps the
/// stored day (`created_at`) and user so a correction never moves usage between days.
pub fn event_from_stats(
    org: &str,
    id: &str,
    g: &GenerationStats,
    old: Option<&UsageEvent>,
) -> UsageEvent {
    let user = UserRef {
        id: g.external_user.clone(),
        email: None,
        name: None,
    };
    let user = match old {
        Some(o) => UserRef {
            id: o.user.id.clone().or(user.id),
            email: o.user.email.clone(),
            name: o.user.name.clone(),
        },
        None => user,
    };
    UsageEvent {
        generation_id: id.to_owned(),
        org_id: org.to_owned(),
        user,
        model: g
            .model
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| old.map(|o| o.model.clone()))
            .unwrap_or_else(|| "unknown".into()),
        provider: g
            .provider_name
            .clone()
            .or_else(|| old.and_then(|o| o.provider.clone())),
        tokens: Tokens {
            prompt: g.native_tokens_prompt.or(g.tokens_prompt).unwrap_or(0),
            completion: g
                .native_tokens_completion
                .or(g.tokens_completion)
                .unwrap_or(0),
            reasoning: g.native_tokens_reasoning.unwrap_or(0),
            cached: g.native_tokens_cached.unwrap_or(0),
        },
        cost_usd: g.total_cost,
        source: Source::Reconciliation,
        state: EventState::Confirmed,
        created_at: old
            .map(|o| o.created_at)
            .or(g.created_at)
            .unwrap_or_else(Utc::now),
        // OpenRouter knows nothing of the chat; keep what the proxy saw.
        context: old.map(|o| o.context.clone()).unwrap_or_default(),
    }
}

/// Ids in the crash journal that the ledger lacks become provisional events.
pub async fn replay_journal(st: &Arc<AppState>) -> anyhow::Result<u64> {
    let mut added = 0;
    // Two passes: a leftover `.old` from a crash, then the live file.
    for _ in 0..2 {
        let entries = st.journal.rotate()?;
        if entries.is_empty() {
            st.journal.done_with_old()?;
            continue;
        }
        let org = st.cfg.org_id.clone();
        let evs: Vec<UsageEvent> = entries
            .into_iter()
            .map(|e| UsageEvent {
                generation_id: e.id,
                org_id: org.clone(),
                user: e.user,
                model: if e.model.is_empty() {
                    "unknown".into()
                } else {
                    e.model
                },
                provider: None,
                tokens: Tokens::default(),
                cost_usd: Decimal::ZERO,
                source: Source::Proxy,
                state: EventState::Provisional,
                created_at: e.at,
                context: e.context,
            })
            .collect();
        let outcomes = st.writer.record_wait(evs).await?;
        added += outcomes
            .iter()
            .filter(|o| **o == RecordOutcome::Inserted)
            .count() as u64;
        st.journal.done_with_old()?;
    }
    if added > 0 {
        tracing::info!(
            added,
            "crash journal: generations missing from the ledger recorded as provisional"
        );
    }
    Ok(added)
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, String> {
    a.checked_add(b)
        .ok_or_else(|| format!("USD sum {a} + {b} overflows"))
}

/// Refreshes the key status from `GET /key` (and the account's credits) and computes the
/// drift. After a rotation the day's and month's OpenRouter totals are the sums over every
/// key used in them (spec 6.1: a new key's counters start at zero): the current key's
/// `/key` counters plus each earlier key's, read live with `GET /keys/{hash}` when a
/// management key is configured, else as read at its hand-over.
pub async fn check_key_and_drift(st: &Arc<AppState>) -> Result<Drift, String> {
    let client = st.openrouter();
    let mgmt = st.management();
    let info = client.key_info().await;
    let now = Utc::now();
    let info = match info {
        Ok(k) => k,
        Err(e) => {
            let mut ks = st.key_status.lock().unwrap_or_else(|p| p.into_inner());
            ks.checked_at = Some(now);
            ks.state = match e.refusal() {
                Some(Refusal::AccountOutOfCredits) => KeyState::AccountOutOfCredits,
                Some(Refusal::KeyLimitExceeded { .. }) => KeyState::LimitReached,
                None if e.status() == Some(401) => KeyState::Invalid,
                None => KeyState::Error,
            };
            ks.error = Some(e.to_string());
            return Err(format!("GET /key: {e}"));
        }
    };
    // The account's balance decides apart from the key's cap (spec 7.2). `/credits` is
    // documented for management keys; ordinary keys were seen answered too.
    let credits = match &mgmt {
        Some(m) => m.credits().await,
        None => client.credits().await,
    };
    let out_of_credits = match credits {
        Ok(c) => c.balance() <= Decimal::ZERO,
        Err(e) => {
            tracing::debug!(error = %e, "account credits not read");
            false
        }
    };
    if let Some(m) = &mgmt {
        learn_key_name(st, m).await;
    }
    {
        let mut ks = st.key_status.lock().unwrap_or_else(|p| p.into_inner());
        ks.checked_at = Some(now);
        ks.state = if out_of_credits {
            KeyState::AccountOutOfCredits
        } else if info.limit_remaining.is_some_and(|r| r <= Decimal::ZERO) {
            KeyState::LimitReached
        } else {
            KeyState::Ok
        };
        ks.limit = info.limit;
        ks.limit_remaining = info.limit_remaining;
        ks.usage_daily = info.usage_daily;
        ks.usage_monthly = info.usage_monthly;
        ks.error = None;
    }
    let day_start =
        Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).expect("midnight"));
    let month_start = Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
            .expect("first of month")
            .and_hms_opt(0, 0, 0)
            .expect("midnight"),
    );
    let mut or_day = info.usage_daily.unwrap_or_default();
    let mut or_month = info.usage_monthly.unwrap_or_default();
    let earlier: Vec<_> = st
        .key_history()
        .earlier_since(month_start)
        .cloned()
        .collect();
    for k in earlier {
        let live = match &mgmt {
            Some(m) => match m.keys_get(&k.hash).await {
                Ok(a) => Some((
                    a.usage_daily.unwrap_or_default(),
                    a.usage_monthly.unwrap_or_default(),
                )),
                Err(e) => {
                    tracing::warn!(key = %k.label, error = %e, "earlier key's counters not read; using those of its hand-over");
                    None
                }
            },
            None => None,
        };
        let (d, m) = live.unwrap_or_else(|| {
            k.at_handover
                .map(|c| (c.daily_on(now), c.monthly_on(now)))
                .unwrap_or_default()
        });
        or_day = add(or_day, d)?;
        or_month = add(or_month, m)?;
    }
    let db = st.cfg.db_path.clone();
    let org = st.cfg.org_id.clone();
    let (day_cost, month_cost) = tokio::task::spawn_blocking(move || {
        let d = crate::utc_sums::cost_by_model(&db, &org, day_start, now)?;
        let m = crate::utc_sums::cost_by_model(&db, &org, month_start, now)?;
        let sum = |x: &BTreeMap<String, (Decimal, u64)>| {
            x.values().try_fold(Decimal::ZERO, |acc, v| add(acc, v.0))
        };
        Ok::<_, String>((sum(&d)?, sum(&m)?))
    })
    .await
    .map_err(|e| e.to_string())??;
    let mut drift = Drift {
        day_usd: (or_day - day_cost).normalize(),
        month_usd: (or_month - month_cost).normalize(),
        checked_at: now,
        activity: Vec::new(),
    };
    if let Some(mgmt) = &mgmt {
        match activity_drift(st, mgmt).await {
            Ok(a) => drift.activity = a,
            Err(e) => tracing::warn!(error = %e, "activity comparison skipped"),
        }
    }
    Ok(drift)
}

/// With a management key, the current key's name is OpenRouter's own (`GET /keys/{hash}`):
/// what Broadcast spans carry, so the webhook knows them as this client's.
async fn learn_key_name(st: &Arc<AppState>, mgmt: &OpenRouterClient) {
    let hash = st.key().hash();
    match mgmt.keys_get(&hash).await {
        Ok(k) => {
            let Some(name) = k.name.filter(|n| !n.is_empty()) else {
                return;
            };
            let changed = {
                let mut ks = st.key_status.lock().unwrap_or_else(|p| p.into_inner());
                let changed = ks.name.as_ref() != Some(&name);
                ks.name = Some(name.clone());
                changed
            };
            if changed {
                tracing::info!(name = %name, "OpenRouter key name learned from the management API");
            }
            if let Err(e) = st.update_keys(|h| h.set_current_name(name)).await {
                tracing::warn!(error = %e, "key history not stored");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the management key cannot see this tracker's key (GET /keys/{{hash}}); is it of another account?")
        }
    }
}

/// Per completed UTC day × model: `/activity` of every key this client used in those
/// days (each by its hash, summed), against the ledger. Keys are asked once each for all
/// 30 days rather than per day.
async fn activity_drift(
    st: &Arc<AppState>,
    mgmt: &OpenRouterClient,
) -> Result<Vec<ActivityDrift>, String> {
    let today = Utc::now().date_naive();
    let days: Vec<NaiveDate> = (1..=st.cfg.sync_days_back as i64)
        .map(|back| today - ChronoDuration::days(back))
        .collect();
    let Some(first) = days.last().copied() else {
        return Ok(Vec::new());
    };
    let first_start = Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).expect("midnight"));
    let hashes: Vec<String> = st
        .key_history()
        .used_since(first_start)
        .map(|k| k.hash.clone())
        .collect();
    let mut theirs: BTreeMap<(NaiveDate, String), (Decimal, u64)> = BTreeMap::new();
    for hash in &hashes {
        let rows = mgmt
            .activity(None, Some(hash))
            .await
            .map_err(|e| e.to_string())?;
        for r in rows.into_iter().filter(|r| days.contains(&r.date)) {
            let e = theirs.entry((r.date, r.model)).or_default();
            e.0 = add(e.0, r.usage)?;
            e.1 = e.1.saturating_add(r.requests);
        }
    }
    let mut out = Vec::new();
    for date in days.iter().copied() {
        let from = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"));
        let to = from + ChronoDuration::days(1);
        let db = st.cfg.db_path.clone();
        let org = st.cfg.org_id.clone();
        let ours = tokio::task::spawn_blocking(move || {
            crate::utc_sums::cost_by_model(&db, &org, from, to)
        })
        .await
        .map_err(|e| e.to_string())??;
        let models: std::collections::BTreeSet<String> = theirs
            .range((date, String::new())..)
            .take_while(|((d, _), _)| *d == date)
            .map(|((_, m), _)| m.clone())
            .chain(ours.keys().cloned())
            .collect();
        for m in models {
            let t = theirs.get(&(date, m.clone())).copied().unwrap_or_default();
            let o = ours.get(&m).copied().unwrap_or_default();
            if t.0 != o.0 || t.1 != o.1 {
                out.push(ActivityDrift {
                    date,
                    model: m,
                    openrouter_usd: t.0.normalize(),
                    ledger_usd: o.0.normalize(),
                    openrouter_requests: t.1,
                    ledger_requests: o.1,
                });
            }
        }
    }
    Ok(out)
}

/// The periodic loop; `interval` None = disabled.
pub async fn run_loop(st: Arc<AppState>, interval: Duration, shutdown: Shutdown) {
    // A first run soon after start completes what a crash left provisional.
    let mut next = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        {
            let at = Utc::now()
                + ChronoDuration::from_std(next - tokio::time::Instant::now()).unwrap_or_default();
            st.sync.lock().unwrap_or_else(|p| p.into_inner()).next_run = Some(at);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shutdown.wait() => return,
        }
        let r = run_once(&st, st.cfg.sync_days_back).await;
        if r.status != SyncStatus::Ok {
            tracing::warn!(status = ?r.status, errors = ?r.errors, "reconciliation run incomplete");
        } else {
            tracing::info!(
                checked = r.checked,
                confirmed = r.confirmed,
                "reconciliation run done"
            );
        }
        next = tokio::time::Instant::now() + interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisional_events_are_looked_up_back_to_the_previous_month() {
        let at = |s: &str| s.parse::<chrono::DateTime<Utc>>().unwrap();
        // Mid-month: back to the start of the previous month (and a day's margin).
        assert_eq!(
            confirmation_since(at("2026-11-20T10:00:00Z"), 1),
            at("2026-09-30T00:00:00Z")
        );
        // 1 January: December and November are both still to be invoiced or just were.
        assert_eq!(
            confirmation_since(at("2027-01-01T08:00:00Z"), 1),
            at("2026-11-30T00:00:00Z")
        );
        // Warsaw's day, not UTC's: 23:30 UTC on 31 October is 1 November in Warsaw.
        assert_eq!(
            confirmation_since(at("2026-10-31T23:30:00Z"), 1),
            at("2026-09-30T00:00:00Z")
        );
        // A longer days_back still reaches further.
        assert_eq!(
            confirmation_since(at("2026-11-20T10:00:00Z"), 60),
            at("2026-09-21T10:00:00Z")
        );
    }
}
