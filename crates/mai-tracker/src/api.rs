//! The tracker's HTTP API (docs/tracker-api.md): probes, metrics, our own usage API,
//! the seed-compatible endpoints and the Broadcast webhook.

// Handlers return a ready error `Response` from their parsing helpers; the error path is
// cold, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

use crate::auth::{bearer, token_matches, webhook_signature_ok, Role};
use crate::recon;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, Utc};
use mai_core::ledger::{LedgerError, RecordOutcome};
use mai_core::pricing::{client_cost, limit_state, MarkupSchedule};
use mai_core::time::{warsaw_today, YearMonth};
use mai_core::usage::{EventState, Source, Tokens, Totals, UsageEvent, UserRef};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `{"error":{"code":N,"message":"..."}}`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

fn ledger_error(e: LedgerError) -> Response {
    match e {
        LedgerError::BadQuery(m) => error_response(StatusCode::BAD_REQUEST, &m),
        other => {
            tracing::error!(error = %other, "ledger read failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reading the ledger failed: {other}"),
            )
        }
    }
}

/// Checks the bearer token for `role`; `Err` is the 401 to return.
fn require(st: &AppState, headers: &HeaderMap, role: Role) -> Result<(), Response> {
    let ok = bearer(headers).is_some_and(|t| match role {
        Role::Admin => token_matches(t, st.cfg.admin_token.expose()),
        // Evaluate both comparisons: no early exit that would time which one matched.
        Role::Read => {
            let a = token_matches(t, st.cfg.read_token.expose());
            let b = token_matches(t, st.cfg.admin_token.expose());
            a | b
        }
        Role::Proxy => token_matches(t, st.cfg.proxy_token.expose()),
    });
    if ok {
        Ok(())
    } else {
        let what = match role {
            Role::Admin => "the admin token (MAI_TRACKER_ADMIN_TOKEN)",
            Role::Read => "the read or admin token",
            Role::Proxy => "the proxy token",
        };
        Err(error_response(
            StatusCode::UNAUTHORIZED,
            &format!("missing or wrong bearer token: this endpoint needs {what}"),
        ))
    }
}

macro_rules! auth {
    ($st:expr, $h:expr, $role:expr) => {
        if let Err(r) = require(&$st, &$h, $role) {
            return r;
        }
    };
}

fn d(x: Decimal) -> String {
    x.normalize().to_string()
}

fn tokens_json(t: &Tokens) -> Value {
    json!({"prompt": t.prompt, "completion": t.completion, "reasoning": t.reasoning,
           "cached": t.cached, "total": t.total()})
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.writer.is_alive() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "ledger writer stopped").into_response()
    }
}

pub async fn metrics(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    auth!(st, headers, Role::Read);
    let org = st.cfg.org_id.clone();
    let sync = st.sync.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let pending = st
        .read({
            let org = org.clone();
            move |l| l.provisional_count(&org)
        })
        .await
        .unwrap_or(0);
    let mut extra = vec![(
        "mai_provisional_pending",
        "Provisional events waiting for reconciliation.",
        format!("mai_provisional_pending{{org=\"{org}\"}} {pending}"),
    )];
    if let Some(dr) = &sync.drift {
        extra.push((
            "mai_sync_drift_usd",
            "OpenRouter /key usage minus ledger cost (USD).",
            format!(
                "mai_sync_drift_usd{{org=\"{org}\",window=\"day\"}} {}\nmai_sync_drift_usd{{org=\"{org}\",window=\"month\"}} {}",
                d(dr.day_usd),
                d(dr.month_usd)
            ),
        ));
    }
    if let Some(t) = sync.last_success {
        extra.push((
            "mai_sync_last_success_timestamp_seconds",
            "Unix time of the last successful reconciliation.",
            format!(
                "mai_sync_last_success_timestamp_seconds{{org=\"{org}\"}} {}",
                t.timestamp()
            ),
        ));
    }
    let body = st.metrics.render(&org, &extra);
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

pub async fn status(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    auth!(st, headers, Role::Read);
    let org = st.cfg.org_id.clone();
    let pending = st.read(move |l| l.provisional_count(&org)).await.ok();
    let key = st
        .key_status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let sync = st.sync.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Json(json!({
        "org_id": st.cfg.org_id,
        "org_name": st.cfg.org_name,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": st.started.elapsed().as_secs(),
        "markup_rate": d(st.cfg.markup_rate),
        "key": key,
        "sync": {
            "interval_seconds": st.cfg.sync_interval.map_or(0, |i| i.as_secs()),
            "days_back": st.cfg.sync_days_back,
            "running": sync.running,
            "last_run": sync.last_run,
            "last_success": sync.last_success,
            "last_error": sync.last_error,
            "next_run": sync.next_run,
            "provisional_pending": pending,
            "drift": sync.drift,
        },
        "proxy": {"inflight": st.metrics.inflight.load(Ordering::Relaxed)},
    }))
    .into_response()
}

async fn schedule(st: &Arc<AppState>) -> Result<MarkupSchedule, LedgerError> {
    let org = st.cfg.org_id.clone();
    st.read(move |l| l.markup_schedule(&org)).await
}

pub async fn today(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    auth!(st, headers, Role::Read);
    let day = warsaw_today();
    let org = st.cfg.org_id.clone();
    let (t, sched) = match tokio::try_join!(st.read(move |l| l.day(&org, day)), schedule(&st)) {
        Ok(x) => x,
        Err(e) => return ledger_error(e),
    };
    let rate = sched.rate_on(day);
    Json(json!({
        "org_id": st.cfg.org_id, "date": day, "requests": t.requests,
        "tokens": tokens_json(&t.tokens), "raw_cost_usd": d(t.cost_usd),
        "client_cost_usd": d(client_cost(t.cost_usd, rate)), "markup_rate": d(rate),
        "last_updated": Utc::now(),
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

fn parse_range(q: &RangeQuery) -> Result<(NaiveDate, NaiveDate), Response> {
    let today = warsaw_today();
    let p = |name: &str, v: &Option<String>, default: NaiveDate| match v {
        None => Ok(default),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            error_response(
                StatusCode::BAD_REQUEST,
                &format!("query parameter {name}={s:?} is not a date; use YYYY-MM-DD"),
            )
        }),
    };
    let to = p("to", &q.to, today)?;
    let from = p("from", &q.from, to.with_day0(0).unwrap_or(to))?;
    if from > to {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!("from={from} is after to={to}; swap them"),
        ));
    }
    if (to - from).num_days() >= 400 {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!("range {from}..{to} is longer than 400 days; ask in parts"),
        ));
    }
    Ok((from, to))
}

use chrono::Datelike;

pub async fn daily(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    let (from, to) = match parse_range(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let org = st.cfg.org_id.clone();
    let (days, sched) =
        match tokio::try_join!(st.read(move |l| l.daily(&org, from, to)), schedule(&st)) {
            Ok(x) => x,
            Err(e) => return ledger_error(e),
        };
    let days: Vec<Value> = days
        .iter()
        .map(|(day, t)| {
            json!({"date": day, "requests": t.requests, "tokens": tokens_json(&t.tokens),
                   "raw_cost_usd": d(t.cost_usd),
                   "client_cost_usd": d(client_cost(t.cost_usd, sched.rate_on(*day)))})
        })
        .collect();
    Json(json!({"org_id": st.cfg.org_id, "from": from, "to": to, "days": days})).into_response()
}

/// Per-user or per-model totals, priced exactly: the range is split into stretches of
/// one markup rate and each stretch is priced with its rate.
async fn grouped(
    st: &Arc<AppState>,
    from: NaiveDate,
    to: NaiveDate,
    by_user: bool,
) -> Result<Vec<(String, UserRef, Totals, Decimal)>, LedgerError> {
    let org = st.cfg.org_id.clone();
    st.read(move |l| {
        let sched = l.markup_schedule(&org)?;
        let daily = l.daily(&org, from, to)?;
        let mut acc: HashMap<String, (UserRef, Totals, Decimal)> = HashMap::new();
        for seg in sched.price_days(&daily) {
            let rows: Vec<(String, UserRef, Totals)> = if by_user {
                l.by_user(&org, seg.from, seg.to)?
                    .into_iter()
                    .map(|u| (u.user.key().to_owned(), u.user, u.totals))
                    .collect()
            } else {
                l.by_model(&org, seg.from, seg.to)?
                    .into_iter()
                    .map(|m| (m.model, UserRef::default(), m.totals))
                    .collect()
            };
            for (k, user, t) in rows {
                let e = acc
                    .entry(k)
                    .or_insert_with(|| (user.clone(), Totals::default(), Decimal::ZERO));
                e.0 = user.or(&e.0);
                e.1.add(&t);
                e.2 += client_cost(t.cost_usd, seg.rate);
            }
        }
        let mut v: Vec<_> = acc.into_iter().map(|(k, (u, t, c))| (k, u, t, c)).collect();
        v.sort_by(|a, b| b.2.cost_usd.cmp(&a.2.cost_usd).then(a.0.cmp(&b.0)));
        Ok(v)
    })
    .await
}

pub async fn by_user(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    grouped_response(&st, &q, true, |(_, u, t, c)| {
        json!({"user_id": u.id, "email": u.email, "name": u.name,
               "requests": t.requests, "tokens": tokens_json(&t.tokens),
               "raw_cost_usd": d(t.cost_usd), "client_cost_usd": d(*c)})
    })
    .await
}

pub async fn by_model(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    grouped_response(&st, &q, false, |(m, _, t, c)| {
        json!({"model": m, "requests": t.requests, "tokens": tokens_json(&t.tokens),
               "raw_cost_usd": d(t.cost_usd), "client_cost_usd": d(*c)})
    })
    .await
}

/// The body of `by-user` (`users`) or `by-model` (`models`): one JSON row per group.
async fn grouped_response(
    st: &Arc<AppState>,
    q: &RangeQuery,
    by_user: bool,
    row: impl Fn(&(String, UserRef, Totals, Decimal)) -> Value,
) -> Response {
    let (from, to) = match parse_range(q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match grouped(st, from, to, by_user).await {
        Ok(rows) => {
            let list: Vec<Value> = rows.iter().map(row).collect();
            let field = if by_user { "users" } else { "models" };
            Json(json!({"org_id": st.cfg.org_id, "from": from, "to": to, field: list}))
                .into_response()
        }
        Err(e) => ledger_error(e),
    }
}

#[derive(Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

pub async fn month(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    let today = warsaw_today();
    let month = match &q.month {
        None => YearMonth::of(today),
        Some(m) => match YearMonth::from_str(m) {
            Ok(m) => m,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("query parameter month={m:?} is invalid ({e}); use YYYY-MM"),
                )
            }
        },
    };
    let org = st.cfg.org_id.clone();
    let s = match st.read(move |l| l.month_summary(&org, month, today)).await {
        Ok(s) => s,
        Err(e) => return ledger_error(e),
    };
    let segments: Vec<Value> = s
        .segments
        .iter()
        .map(|g| {
            json!({"from": g.from, "to": g.to, "rate": d(g.rate),
                   "raw_cost_usd": d(g.raw_cost_usd), "client_cost_usd": d(g.client_cost_usd)})
        })
        .collect();
    let limit = st.cfg.monthly_limit_usd.map(|lim| {
        serde_json::to_value(limit_state(lim, s.client_cost_usd)).unwrap_or(Value::Null)
    });
    Json(json!({
        "org_id": st.cfg.org_id, "month": month.to_string(), "provisional": s.provisional,
        "days_elapsed": s.days_elapsed, "requests": s.totals.requests,
        "tokens": tokens_json(&s.totals.tokens), "raw_cost_usd": d(s.totals.cost_usd),
        "client_cost_usd": d(s.client_cost_usd), "profit_usd": d(s.profit_usd),
        "daily_average_client_cost_usd": d(s.daily_average_client_cost_usd),
        "markup_segments": segments, "limit": limit,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct EventsQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

pub async fn events(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    auth!(st, headers, Role::Read);
    let Ok(Query(q)) = q else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "after and limit must be whole numbers, e.g. /api/v1/events?after=0&limit=500",
        );
    };
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let page = match st.read(move |l| l.events_since(after, limit)).await {
        Ok(p) => p,
        Err(e) => return ledger_error(e),
    };
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|s| {
            let e = &s.event;
            json!({"seq": s.seq, "generation_id": e.generation_id, "org_id": e.org_id,
                   "user": {"id": e.user.id, "email": e.user.email, "name": e.user.name},
                   "model": e.model, "provider": e.provider, "tokens": tokens_json(&e.tokens),
                   "cost_usd": d(e.cost_usd), "source": e.source, "state": e.state,
                   "created_at": e.created_at})
        })
        .collect();
    Json(json!({"events": events, "next_cursor": page.next_cursor, "has_more": page.has_more}))
        .into_response()
}

#[derive(Deserialize, Default)]
pub struct SyncBody {
    days_back: Option<u32>,
}

fn parse_sync_body(body: &Bytes, default: u32) -> Result<u32, Response> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(default);
    }
    let b: SyncBody = serde_json::from_slice(body).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            &format!("sync body is not valid JSON ({e}); send {{\"days_back\":1}} or nothing"),
        )
    })?;
    match b.days_back {
        None => Ok(default),
        Some(n) if (1..=30).contains(&n) => Ok(n),
        Some(n) => Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!("days_back={n} is out of range; use 1 to 30"),
        )),
    }
}

pub async fn sync(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    auth!(st, headers, Role::Admin);
    let days = match parse_sync_body(&body, st.cfg.sync_days_back) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let r = recon::run_once(&st, days).await;
    Json(r).into_response()
}

#[derive(Deserialize)]
pub struct KeyBody {
    key: String,
}

pub async fn put_key(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    auth!(st, headers, Role::Admin);
    let Ok(b) = serde_json::from_slice::<KeyBody>(&body) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "body must be {\"key\":\"sk-or-v1-...\"}",
        );
    };
    let key = mai_core::openrouter::SecretKey::new(b.key.trim());
    let label = key.label();
    let client = match mai_core::openrouter::OpenRouterClient::with_http(
        st.api_http.clone(),
        &st.cfg.openrouter_base_url,
        key.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if let Err(e) = client.key_info().await {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("OpenRouter refused the new key {label}: {e}; the old key stays in use"),
        );
    }
    st.set_key(key);
    tracing::info!(key = %label, "OpenRouter key replaced");
    Json(json!({"label": label})).into_response()
}

// ---------- seed-compatible endpoints ----------

pub async fn seed_sync(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    auth!(st, headers, Role::Admin);
    let days = match parse_sync_body(&body, st.cfg.sync_days_back) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let r = recon::run_once(&st, days).await;
    let status = if r.status == "error" {
        "error"
    } else {
        "success"
    };
    Json(json!({
        "status": status,
        "results": [{"organization": st.cfg.org_id, "synced_generations": r.confirmed,
                     "status": if r.status == "ok" { "success" } else { r.status }}],
        "total_organizations": 1,
    }))
    .into_response()
}

#[derive(Serialize)]
struct RealTime {
    client_org_id: String,
    date: NaiveDate,
    tokens: u64,
    requests: u64,
    #[serde(with = "mai_core::money::json_number")]
    cost: Decimal,
    #[serde(with = "mai_core::money::json_number")]
    raw_cost: Decimal,
    last_updated: chrono::DateTime<Utc>,
}

pub async fn seed_real_time(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Response {
    auth!(st, headers, Role::Read);
    if org != st.cfg.org_id {
        return error_response(
            StatusCode::NOT_FOUND,
            &format!(
                "this tracker serves organisation {:?}, not {org:?}",
                st.cfg.org_id
            ),
        );
    }
    let day = warsaw_today();
    let o = org.clone();
    let (t, sched) = match tokio::try_join!(st.read(move |l| l.day(&o, day)), schedule(&st)) {
        Ok(x) => x,
        Err(e) => return ledger_error(e),
    };
    let body = RealTime {
        client_org_id: org,
        date: day,
        tokens: t.tokens.total(),
        requests: t.requests,
        cost: client_cost(t.cost_usd, sched.rate_on(day)),
        raw_cost: t.cost_usd,
        last_updated: Utc::now(),
    };
    match serde_json::to_string(&body) {
        Ok(s) => ([(http::header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct ManualRecord {
    model: String,
    #[serde(default)]
    tokens: u64,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(with = "mai_core::money::json_number")]
    cost: Decimal,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

pub async fn seed_manual(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    auth!(st, headers, Role::Admin);
    let m: ManualRecord = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("manual record rejected: {e}; send {{\"model\":\"openai/gpt-4o-mini\",\"tokens\":1000,\"cost\":0.5}}"),
            )
        }
    };
    if m.cost.is_sign_negative() && !m.cost.is_zero() {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "cost {} is negative; a correction records an additional charge, not a refund",
                m.cost
            ),
        );
    }
    let id = format!(
        "man-{}-{:016x}",
        Utc::now().timestamp(),
        rand::random::<u64>()
    );
    let ev = UsageEvent {
        generation_id: id.clone(),
        org_id: st.cfg.org_id.clone(),
        user: UserRef {
            id: m.user_id,
            email: None,
            name: None,
        },
        model: m.model,
        provider: None,
        tokens: Tokens {
            prompt: m.prompt_tokens.unwrap_or(m.tokens),
            completion: m.completion_tokens.unwrap_or(0),
            reasoning: 0,
            cached: 0,
        },
        cost_usd: m.cost,
        source: Source::Manual,
        state: EventState::Confirmed,
        created_at: Utc::now(),
    };
    if let Err(e) = ev.validate() {
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string());
    }
    let note = m.note.unwrap_or_default();
    match st.writer.record_audited(ev, "admin-token", &note).await {
        Ok(_) => (
            StatusCode::CREATED,
            Json(json!({"status": "recorded", "generation_id": id})),
        )
            .into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub async fn seed_webhook(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(secret) = &st.cfg.webhook_secret {
        let sig = headers.get("x-signature").and_then(|v| v.to_str().ok());
        if !webhook_signature_ok(secret.expose(), &body, sig) {
            st.metrics.webhook_rejected.fetch_add(1, Ordering::Relaxed);
            return error_response(
                StatusCode::UNAUTHORIZED,
                "missing or wrong X-Signature: send sha256=<hex HMAC-SHA256 of the raw body keyed with MAI_WEBHOOK_SECRET>",
            );
        }
    }
    let test = headers
        .get("x-test-connection")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if test || body.iter().all(|b| b.is_ascii_whitespace()) {
        return Json(json!({"status": "ok", "recorded": 0, "duplicates": 0})).into_response();
    }
    let evs = match crate::otlp::parse_export(&body, &st.cfg.org_id) {
        Ok(e) => e,
        Err(e) => {
            st.metrics.webhook_rejected.fetch_add(1, Ordering::Relaxed);
            return error_response(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    if let Some(bad) = evs.iter().find_map(|e| e.validate().err()) {
        st.metrics.webhook_rejected.fetch_add(1, Ordering::Relaxed);
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, &bad.to_string());
    }
    if evs.is_empty() {
        return Json(json!({"status": "ok", "recorded": 0, "duplicates": 0})).into_response();
    }
    match st.writer.record_wait(evs).await {
        Ok(outcomes) => {
            let recorded = outcomes
                .iter()
                .filter(|o| **o != RecordOutcome::Unchanged)
                .count();
            let duplicates = outcomes.len() - recorded;
            Json(json!({"status": "ok", "recorded": recorded, "duplicates": duplicates}))
                .into_response()
        }
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
