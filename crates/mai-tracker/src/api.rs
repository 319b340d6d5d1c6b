//! The tracker's HTTP API (docs/tracker-api.md): probes, metrics, our own usage API,
//! the seed-compatible endpoints and the Broadcast webhook.
//!
//! Every JSON body read or written here is a `mai_wire` type (errors are
//! [`ErrorBody`]), so the console's client, the test fakes and the TypeScript of the UI
//! read exactly what this module writes; nothing is assembled with `json!`.

// Handlers return a ready error `Response` from their parsing helpers; the error path is
// cold, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

use crate::auth::{bearer, token_matches, Role};
use crate::recon;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Datelike, NaiveDate, Utc};
use mai_core::ledger::{
    ContextKey, KeyTotals, Ledger, LedgerError, Priced, RecordOutcome, StoredEvent,
};
use mai_core::pricing::{limit_state, price, MarkupSchedule};
use mai_core::time::{warsaw_today, YearMonth};
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_wire::tracker::{
    seed, ByChat, ByGroup, ByModel, ByTask, ByUser, Daily, DayUsage, EraseRequest, ErasureReport,
    ErrorBody, Event, EventPage, KeyHandover, KeyLabel, KeyedUsage, ModelUsage, Month,
    PrivacyExport, ProxyState, Status, SyncRequest, SyncStatus, Today, UserUsage, WebhookState,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `{"error":{"code":N,"message":"..."}}`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody::new(status.as_u16(), message))).into_response()
}

/// A `200` with a wire type as its JSON body.
fn reply<T: Serialize>(body: T) -> Response {
    Json(body).into_response()
}

/// A price that does not fit exactly: a 500 naming it, never a wrong number.
fn pricing_error(e: mai_core::pricing::PricingError) -> Response {
    tracing::error!(error = %e, "pricing failed");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("pricing failed: {e}"),
    )
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
pub(crate) fn require(st: &AppState, headers: &HeaderMap, role: Role) -> Result<(), Response> {
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
            Role::Proxy => {
                "the proxy token (MAI_TRACKER_PROXY_TOKEN: the chat app's OpenAI API key)"
            }
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

/// `ok`; over HTTPS a second line `tls_cert_sha256=AB:CD:…`: the certificate's
/// fingerprint, which the operator reads on the tracker's host (`curl -sk
/// https://localhost:8080/healthz`) and pins in the fleet file. Unauthenticated like the
/// rest of `/healthz`: a fingerprint is public (every TLS client sees the certificate).
pub async fn healthz(State(st): State<Arc<AppState>>) -> String {
    match st.tls_fingerprint.get().and_then(Option::as_deref) {
        Some(fp) => format!("ok\ntls_cert_sha256={fp}\n"),
        None => "ok".to_owned(),
    }
}

/// Ready while the ledger writer is alive and its writes succeed; 503 while events wait
/// for a retry (the proxy keeps serving: their ids are in the crash journal).
pub async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    match st.writer.not_ready_reason() {
        None => (StatusCode::OK, "ready").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
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
    {
        let state = st
            .key_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state;
        extra.push((
            "mai_openrouter_key_state",
            "The OpenRouter key's state (1 = current): limit_reached = the key's own cap, account_out_of_credits = the account's balance.",
            format!("mai_openrouter_key_state{{org=\"{org}\",state=\"{state}\"}} 1"),
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
    let mut body = st.metrics.render(&org, &extra);
    st.writer.render_metrics(&org, &mut body);
    body.push_str(&format!(
        "# HELP mai_journal_quarantined_total Crash-journal lines set aside in the quarantine file (<db>.journal.quarantine).\n# TYPE mai_journal_quarantined_total counter\nmai_journal_quarantined_total{{org=\"{org}\"}} {}\n",
        st.journal.quarantined()
    ));
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
    let mut sync = st.sync.lock().unwrap_or_else(|p| p.into_inner()).clone();
    sync.provisional_pending = pending;
    reply(Status {
        org_id: st.cfg.org_id.clone(),
        org_name: Some(st.cfg.org_name.clone()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: st.started.elapsed().as_secs(),
        terms: st.terms(),
        key,
        sync,
        proxy: ProxyState {
            inflight: st.metrics.inflight.load(Ordering::Relaxed),
        },
        webhook: WebhookState {
            enabled: st.cfg.webhook_secret.is_some(),
            secret_header: st
                .cfg
                .webhook_secret
                .as_ref()
                .map(|_| st.cfg.webhook_secret_header.to_string()),
            key_names: st.webhook_key_names(),
        },
    })
}

pub async fn today(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    auth!(st, headers, Role::Read);
    let day = warsaw_today();
    let org = st.cfg.org_id.clone();
    let sched = st.schedule();
    let t = match st.read(move |l| l.day(&org, day)).await {
        Ok(t) => t,
        Err(e) => return ledger_error(e),
    };
    let client_cost_usd = match price(&sched, day, t.cost_usd) {
        Ok(c) => c,
        Err(e) => return pricing_error(e),
    };
    reply(Today {
        org_id: st.cfg.org_id.clone(),
        date: day,
        requests: t.requests,
        tokens: t.tokens.into(),
        raw_cost_usd: t.cost_usd.normalize(),
        client_cost_usd,
        markup_rate: sched.rate_on(day).normalize(),
        last_updated: Utc::now(),
    })
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
    let sched = st.schedule();
    let days = match st.read(move |l| l.daily(&org, from, to)).await {
        Ok(d) => d,
        Err(e) => return ledger_error(e),
    };
    let days = match days
        .iter()
        .map(|(day, t)| {
            Ok(DayUsage {
                date: *day,
                requests: t.requests,
                tokens: t.tokens.into(),
                raw_cost_usd: t.cost_usd.normalize(),
                client_cost_usd: price(&sched, *day, t.cost_usd)?,
            })
        })
        .collect::<Result<_, _>>()
    {
        Ok(d) => d,
        Err(e) => return pricing_error(e),
    };
    reply(Daily {
        org_id: st.cfg.org_id.clone(),
        from,
        to,
        days,
    })
}

/// The ledger query `by-user`, `by-model`, `by-task`, `by-group` and `by-chat` price with: rows over a range, priced by
/// markup segment (the console prices its own copy with the same query).
type PricedQuery<T> =
    fn(&Ledger, &str, NaiveDate, NaiveDate, &MarkupSchedule) -> Result<Vec<Priced<T>>, LedgerError>;

/// What `by-user` and `by-model` share: the range, the priced query, the error reply;
/// `body` builds the reply from the range and the rows.
async fn priced_groups<T: Send + 'static>(
    st: &Arc<AppState>,
    q: &RangeQuery,
    query: PricedQuery<T>,
    body: impl FnOnce(NaiveDate, NaiveDate, Vec<Priced<T>>) -> Response,
) -> Response {
    let (from, to) = match parse_range(q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (org, sched) = (st.cfg.org_id.clone(), st.schedule());
    match st.read(move |l| query(l, &org, from, to, &sched)).await {
        Ok(rows) => body(from, to, rows),
        Err(e) => ledger_error(e),
    }
}

pub async fn by_user(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    priced_groups(&st, &q, Ledger::by_user_priced, |from, to, rows| {
        reply(ByUser {
            org_id: st.cfg.org_id.clone(),
            from,
            to,
            users: rows
                .into_iter()
                .map(|p| UserUsage {
                    user_id: p.row.user.id,
                    email: p.row.user.email,
                    name: p.row.user.name,
                    requests: p.row.totals.requests,
                    tokens: p.row.totals.tokens.into(),
                    raw_cost_usd: p.row.totals.cost_usd,
                    client_cost_usd: p.client_cost_usd,
                })
                .collect(),
        })
    })
    .await
}

pub async fn by_model(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    priced_groups(&st, &q, Ledger::by_model_priced, |from, to, rows| {
        reply(ByModel {
            org_id: st.cfg.org_id.clone(),
            from,
            to,
            models: rows
                .into_iter()
                .map(|p| ModelUsage {
                    model: p.row.model,
                    requests: p.row.totals.requests,
                    tokens: p.row.totals.tokens.into(),
                    raw_cost_usd: p.row.totals.cost_usd,
                    client_cost_usd: p.client_cost_usd,
                })
                .collect(),
        })
    })
    .await
}

/// The rows of `by-task`, `by-group` and `by-chat` (the ledger's
/// [`Ledger::by_context_priced`]) as the wire has them.
fn keyed_rows(rows: Vec<Priced<KeyTotals>>) -> Vec<KeyedUsage> {
    rows.into_iter()
        .map(|p| KeyedUsage {
            key: p.row.key,
            requests: p.row.totals.requests,
            tokens: p.row.totals.tokens.into(),
            raw_cost_usd: p.row.totals.cost_usd,
            client_cost_usd: p.client_cost_usd,
        })
        .collect()
}

/// `GET /api/v1/usage/by-task`: the user's own messages (`chat`) against Open WebUI's
/// background tasks, which are separate paid calls.
pub async fn by_task(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    priced_groups(
        &st,
        &q,
        |l, o, f, t, s| l.by_context_priced(o, f, t, s, ContextKey::Task),
        |from, to, rows| {
            reply(ByTask {
                org_id: st.cfg.org_id.clone(),
                from,
                to,
                tasks: keyed_rows(rows),
            })
        },
    )
    .await
}

/// `GET /api/v1/usage/by-group`: per set of Open WebUI groups (departments).
pub async fn by_group(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    priced_groups(
        &st,
        &q,
        |l, o, f, t, s| l.by_context_priced(o, f, t, s, ContextKey::Group),
        |from, to, rows| {
            reply(ByGroup {
                org_id: st.cfg.org_id.clone(),
                from,
                to,
                groups: keyed_rows(rows),
            })
        },
    )
    .await
}

/// `GET /api/v1/usage/by-chat`: per Open WebUI chat.
pub async fn by_chat(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    auth!(st, headers, Role::Read);
    priced_groups(
        &st,
        &q,
        |l, o, f, t, s| l.by_context_priced(o, f, t, s, ContextKey::Chat),
        |from, to, rows| {
            reply(ByChat {
                org_id: st.cfg.org_id.clone(),
                from,
                to,
                chats: keyed_rows(rows),
            })
        },
    )
    .await
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
    // One snapshot of the terms, so the schedule and the limit come from one push.
    let terms = st.terms();
    let sched = crate::terms::schedule_of(terms.as_ref());
    let org = st.cfg.org_id.clone();
    let s = match st
        .read(move |l| l.month_summary(&org, month, today, &sched))
        .await
    {
        Ok(s) => s,
        Err(e) => return ledger_error(e),
    };
    let limit = terms
        .and_then(|t| t.monthly_limit_usd)
        .map(|lim| limit_state(lim.normalize(), s.client_cost_usd));
    reply(Month {
        org_id: st.cfg.org_id.clone(),
        month: month.to_string(),
        provisional: s.provisional,
        days_elapsed: s.days_elapsed,
        requests: s.totals.requests,
        tokens: s.totals.tokens.into(),
        raw_cost_usd: s.totals.cost_usd.normalize(),
        client_cost_usd: s.client_cost_usd.normalize(),
        profit_usd: s.profit_usd.normalize(),
        daily_average_client_cost_usd: s.daily_average_client_cost_usd.normalize(),
        markup_segments: s.segments,
        limit,
    })
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
    reply(EventPage {
        events: page.events.into_iter().map(wire_event).collect(),
        next_cursor: page.next_cursor,
        has_more: page.has_more,
    })
}

/// A ledger event as `GET /api/v1/events` exports it.
fn wire_event(s: StoredEvent) -> Event {
    let e = s.event;
    Event {
        seq: s.seq,
        generation_id: e.generation_id,
        org_id: e.org_id,
        user: e.user,
        model: e.model,
        provider: e.provider,
        tokens: e.tokens.into(),
        cost_usd: e.cost_usd.normalize(),
        source: e.source,
        state: e.state,
        created_at: e.created_at,
        context: e.context,
    }
}

fn parse_sync_body(body: &Bytes, default: u32) -> Result<u32, Response> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(default);
    }
    let b: SyncRequest = serde_json::from_slice(body).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            &format!("sync body rejected ({e}); send {{\"days_back\":1}} or nothing"),
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
    reply(recon::run_once(&st, days).await)
}

/// `PUT /api/v1/admin/openrouter-key`: the console hands a new key over. The new key is
/// checked with OpenRouter (`GET /key`) first; the old key's counters are read at the
/// same time (for drift without a management key), so a slow `/key` costs one wait, not
/// two. Then, in this order: the key is stored next to the ledger ([`crate::handover`],
/// so a restart keeps it), the key history records it, and the tracker switches. If the
/// key cannot be stored the hand-over is refused and the old key stays in use: a switch
/// that a restart would undo would take the client offline once the old key is disabled.
///
/// The switch runs in its own task: a console that gives up waiting (and drops the
/// connection) cannot leave the key stored but not used, or the other way round. The
/// console learns the outcome from `/api/v1/status` (`key.hash`, and `key.state` from
/// this hand-over's check) whatever happened to this reply.
pub async fn put_key(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    auth!(st, headers, Role::Admin);
    let Ok(b) = serde_json::from_slice::<KeyHandover>(&body) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "body must be {\"key\":\"sk-or-v1-...\"}",
        );
    };
    let key = mai_core::openrouter::SecretKey::new(b.key.trim());
    let name = b
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let st2 = st.clone();
    match tokio::spawn(async move { hand_over(&st2, key, name).await }).await {
        Ok(r) => r,
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the key hand-over failed ({e}); the old key stays in use"),
        ),
    }
}

async fn hand_over(
    st: &Arc<AppState>,
    key: mai_core::openrouter::SecretKey,
    name: Option<String>,
) -> Response {
    // One hand-over at a time: the stored file, the history and the key in memory
    // always name the same key.
    let _one = st.handover_lock.lock().await;
    let label = key.label();
    let client = match mai_core::openrouter::OpenRouterClient::with_http(
        st.api_http.clone(),
        &st.cfg.openrouter_base_url,
        key.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let old = st.key();
    let same = old.hash() == key.hash();
    let old_counters = async {
        if same {
            return None;
        }
        // The old key's own counters as they stand at the hand-over: without a management
        // key they are all the drift check will know of it (a new key starts at zero).
        match st.openrouter().key_info().await {
            Ok(k) => Some(crate::key_history::Counters {
                at: Utc::now(),
                usage_daily: k.usage_daily.unwrap_or_default(),
                usage_monthly: k.usage_monthly.unwrap_or_default(),
            }),
            Err(e) => {
                tracing::warn!(key = %old.label(), error = %e, "the old key's counters were not read at the hand-over");
                None
            }
        }
    };
    let (checked, at_handover) = tokio::join!(client.key_info(), old_counters);
    let info = match checked {
        Ok(i) => i,
        Err(e) => {
            return error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("OpenRouter refused the new key {label}: {e}; the old key stays in use"),
            )
        }
    };
    let db = st.cfg.db_path.clone();
    let (k1, n1) = (key.clone(), name.clone());
    let stored =
        tokio::task::spawn_blocking(move || crate::handover::store(&db, &k1, n1.as_deref()))
            .await
            .unwrap_or_else(|e| {
                Err(crate::handover::HandoverError::Write {
                    path: crate::handover::path_for(&st.cfg.db_path),
                    source: std::io::Error::other(e.to_string()),
                })
            });
    if let Err(e) = stored {
        tracing::error!(error = %e, key = %label, "hand-over refused: the key could not be stored for restarts");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{e}; the new key {label} is not used (a restart would lose it), the old key stays in use: fix the tracker's data volume and hand the key over again"),
        );
    }
    let now = Utc::now();
    let (k2, n2) = (key.clone(), name.clone());
    if let Err(e) = st
        .update_keys(move |h| h.use_key(&k2, n2, at_handover, now))
        .await
    {
        // The running tracker still switches: the key itself is stored, and refusing
        // would leave the console's new key unused while the old one is about to be
        // disabled.
        tracing::error!(error = %e, "key history not stored; drift after this rotation may be reported falsely");
    }
    let name = st.key_history().current().and_then(|k| k.name.clone());
    st.set_key(key, name.clone(), Some(&info));
    tracing::info!(key = %label, name = ?name, "OpenRouter key replaced (stored next to the ledger for restarts)");
    reply(KeyLabel { label })
}

/// `PUT /api/v1/admin/terms`: the console pushes the client's commercial terms from
/// the fleet file. Stored in the ledger before they are used, so a restart keeps them;
/// the reply is what is now stored.
pub async fn put_terms(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    auth!(st, headers, Role::Admin);
    let t = match crate::terms::parse(&body) {
        Ok(t) => t,
        Err(e @ crate::terms::TermsError::Malformed { .. }) => {
            return error_response(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ crate::terms::TermsError::Invalid { .. }) => {
            return error_response(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())
        }
    };
    // Two pushes at once: the one stored last is the one in memory.
    let _one_push = st.terms_push.lock().await;
    if let Err(e) = st
        .writer
        .set_meta(crate::terms::META_KEY, crate::terms::to_stored(&t))
        .await
    {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("storing the terms failed: {e}; the previous terms stay in use"),
        );
    }
    st.set_terms(t.clone());
    tracing::info!(
        default_rate = %t.markup.default_rate,
        entries = t.markup.entries.len(),
        monthly_limit_usd = ?t.monthly_limit_usd,
        "commercial terms pushed"
    );
    reply(t)
}

// ---------- privacy (GDPR art. 15 and 17) ----------

/// How long `POST /api/v1/admin/probe` waits for its generation to reach the ledger:
/// the writer batches every few milliseconds, so seconds mean the ledger is stuck.
const PROBE_LEDGER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /api/v1/admin/probe`: one chat completion (one output token) through the same
/// path as the chat app's requests — identity, upstream lane, meter, crash journal,
/// writer — answered once its event is in the ledger. After a deployment or an image
/// update it shows that the whole chain works, not just that the process listens (what
/// `/readyz` says). The identity is the operator's, [`mai_wire::tracker::PROBE_USER`]
/// with task `mai_probe`, so reports tell it apart; it is never a chat user's, so it
/// needs no signed Open WebUI token. It costs what one tiny request costs, billed like
/// any other (a few millionths of a dollar).
pub async fn probe(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    use mai_wire::tracker::{ProbeReport, ProbeRequest, DEFAULT_PROBE_MODEL, PROBE_USER};
    auth!(st, headers, Role::Admin);
    let req: ProbeRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        ProbeRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("probe body rejected ({e}); send {{\"model\":\"{DEFAULT_PROBE_MODEL}\"}} or nothing"),
                )
            }
        }
    };
    let model = req
        .model
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| DEFAULT_PROBE_MODEL.to_owned());
    let chat = serde_json::json!({
        "model": model,
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "mAI Fleet health probe: reply with one word."}],
    });
    let uri: axum::http::Uri = "/v1/chat/completions".parse().expect("static URI");
    let method = axum::http::Method::POST;
    let route = match crate::endpoint::route(&method, &uri) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut h = HeaderMap::new();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let ident = crate::identity::Identity {
        user: UserRef {
            id: Some(PROBE_USER.to_owned()),
            email: None,
            name: Some("mAI Fleet probe".to_owned()),
        },
        context: mai_core::usage::ChatContext {
            chat_id: None,
            task: Some("mai_probe".to_owned()),
            groups: None,
        },
    };
    let started = std::time::Instant::now();
    let resp = crate::proxy::forward(
        st.clone(),
        route,
        method,
        uri,
        h,
        Bytes::from(chat.to_string()),
        ident,
    )
    .await;
    let status = resp.status();
    let header_id = resp
        .headers()
        .get("x-generation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = match axum::body::to_bytes(resp.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(
                StatusCode::BAD_GATEWAY,
                &format!("the probe's reply from OpenRouter was cut off ({e}); retry"),
            )
        }
    };
    let upstream_ms = started.elapsed().as_millis() as u64;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        return error_response(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the probe request to OpenRouter failed with {status}: {}; check the key (status), OPENROUTER_BASE_URL and the model {model:?}",
                text.chars().take(300).collect::<String>()
            ),
        );
    }
    let id = header_id.or_else(|| {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
    });
    let Some(id) = id else {
        return error_response(
            StatusCode::BAD_GATEWAY,
            "OpenRouter answered the probe without a generation id, so it cannot be metered; check OPENROUTER_BASE_URL",
        );
    };
    let deadline = std::time::Instant::now() + PROBE_LEDGER_WAIT;
    loop {
        let (org, gid) = (st.cfg.org_id.clone(), id.clone());
        match st.read(move |l| l.get(&org, &gid)).await {
            Ok(Some(ev)) => {
                return reply(ProbeReport {
                    generation_id: id,
                    upstream_ms,
                    event: wire_event(ev),
                })
            }
            Ok(None) if std::time::Instant::now() < deadline => {}
            Ok(None) => {
                return error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!(
                        "the probe's generation {id} is not in the ledger after {} s: the ledger writer is behind or failing; see /readyz and /metrics",
                        PROBE_LEDGER_WAIT.as_secs()
                    ),
                )
            }
            Err(e) => return ledger_error(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

fn subject_or_400(
    s: &mai_core::ledger::PrivacySubject,
) -> Result<mai_core::ledger::PrivacySubject, Response> {
    mai_core::ledger::normalize_subject(s).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            &format!("{e}; send {{\"user\":{{\"id\":\"...\",\"email\":\"...\"}}}}"),
        )
    })
}

/// `POST /api/v1/admin/privacy/erase`: replaces one person's identity in the ledger
/// with a pseudonym (amounts untouched) and scrubs the crash journal. The journal is
/// replayed first, so generations only it knew are in the ledger when it is erased.
/// Logs name the person by the subject's hash only.
pub async fn privacy_erase(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    auth!(st, headers, Role::Admin);
    let req: EraseRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("erase body rejected ({e}); send {{\"user\":{{\"id\":\"...\",\"email\":\"...\"}}}} with the id, the e-mail or both"),
            )
        }
    };
    let subject = match subject_or_400(&req.user) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let hash = mai_core::ledger::subject_hash(&subject);
    let who = crate::journal::ScrubSubject {
        id: subject.id.clone(),
        email: subject.email.clone(),
        pseudonym: mai_core::ledger::new_pseudonym(),
    };
    let scrub = |when: &str| {
        st.journal.scrub(&who).map_err(|e| {
            tracing::error!(subject_hash = %hash, error = %e, when, "crash journal not scrubbed for an erasure");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("scrubbing the crash journal {when} the erasure failed: {e}; fix the journal file's permissions or disk space and repeat the erasure"),
            )
        })
    };
    // The journal's lines of the person take the pseudonym first, so the replay that
    // follows records generations only the journal knew under it; the replay puts
    // every journal id in the ledger before the ledger is erased.
    let mut journal_lines = match scrub("before") {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(e) = recon::replay_journal(&st).await {
        tracing::error!(subject_hash = %hash, error = %e, "erasure refused: the crash journal could not be replayed");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("replaying the crash journal before the erasure failed: {e}; the ledger was not erased, retry"),
        );
    }
    let er = match st
        .writer
        .erase_user(
            &st.cfg.org_id,
            subject.clone(),
            &who.pseudonym,
            "admin-token",
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(subject_hash = %hash, error = %e, "erasure failed");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("erasing failed: {e}; the ledger was not erased, retry"),
            );
        }
    };
    // Requests of the person in flight meanwhile appended lines of their own.
    match scrub("after") {
        Ok(n) => journal_lines += n,
        Err(r) => return r,
    }
    tracing::info!(subject_hash = %hash, events = er.events, rollup_rows = er.rollup_rows, journal_lines, compacted = er.compacted, "personal data erased");
    reply(ErasureReport {
        org_id: st.cfg.org_id.clone(),
        subject_hash: er.subject_hash,
        pseudonym: er.pseudonym,
        events: er.events,
        rollup_rows: er.rollup_rows,
        journal_lines,
        compacted: er.compacted,
        erased_at: Utc::now(),
    })
}

#[derive(Deserialize)]
pub struct ExportQuery {
    user_id: Option<String>,
    email: Option<String>,
}

/// `GET /api/v1/admin/privacy/export?user_id=&email=`: one person's events and totals.
/// Admin only: the reply is personal data.
pub async fn privacy_export(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    auth!(st, headers, Role::Admin);
    let Ok(Query(q)) = q else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "use /api/v1/admin/privacy/export?user_id=...&email=... (either or both)",
        );
    };
    let subject = match subject_or_400(&mai_core::ledger::PrivacySubject {
        id: q.user_id,
        email: q.email,
    }) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (org, s) = (st.cfg.org_id.clone(), subject.clone());
    let x = match st.read(move |l| l.user_export(&org, &s)).await {
        Ok(x) => x,
        Err(e) => return ledger_error(e),
    };
    tracing::info!(subject_hash = %mai_core::ledger::subject_hash(&subject), events = x.events.len(), "personal data exported");
    reply(PrivacyExport {
        org_id: st.cfg.org_id.clone(),
        subject,
        generated_at: Utc::now(),
        requests: x.totals.requests,
        tokens: x.totals.tokens.into(),
        raw_cost_usd: x.totals.cost_usd.normalize(),
        events: x.events.into_iter().map(wire_event).collect(),
    })
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
    let (status, org_status) = match r.status {
        SyncStatus::Ok => (seed::RunStatus::Success, seed::OrgStatus::Success),
        SyncStatus::Partial => (seed::RunStatus::Success, seed::OrgStatus::Partial),
        SyncStatus::Error => (seed::RunStatus::Error, seed::OrgStatus::Error),
    };
    reply(seed::SyncReply {
        status,
        results: vec![seed::OrgResult {
            organization: st.cfg.org_id.clone(),
            synced_generations: r.confirmed,
            status: org_status,
        }],
        total_organizations: 1,
    })
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
    let sched = st.schedule();
    let t = match st.read(move |l| l.day(&o, day)).await {
        Ok(t) => t,
        Err(e) => return ledger_error(e),
    };
    let cost = match price(&sched, day, t.cost_usd) {
        Ok(c) => c,
        Err(e) => return pricing_error(e),
    };
    reply(seed::RealTime {
        client_org_id: org,
        date: day,
        tokens: t.tokens.total(),
        requests: t.requests,
        cost,
        raw_cost: t.cost_usd.normalize(),
        last_updated: Utc::now(),
    })
}

pub async fn seed_manual(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    auth!(st, headers, Role::Admin);
    let m: seed::ManualRecord = match serde_json::from_slice(&body) {
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
        context: Default::default(),
    };
    if let Err(e) = ev
        .validate()
        .and_then(|()| mai_core::usage::check_bounds(&ev, &st.cfg.caps))
    {
        let reason = match e {
            mai_core::usage::UsageError::OverCap { .. } => "over_cap",
            _ => "invalid",
        };
        st.metrics.count_refused("manual", reason);
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string());
    }
    let note = m.note.unwrap_or_default();
    match st.writer.record_audited(ev, "admin-token", &note).await {
        Ok(_) => (
            StatusCode::CREATED,
            Json(seed::Recorded {
                status: seed::RecordedStatus::Recorded,
                generation_id: id,
            }),
        )
            .into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Broadcast deliveries (spec 8). OpenRouter cannot sign them: the destination sends a
/// static custom header holding `MAI_WEBHOOK_SECRET`, compared in constant time. No
/// secret configured = the webhook is off (404), never open. A destination left on
/// "all keys" delivers every key's traces: a span is recorded only when its key name is
/// one of this client's keys (current or used before a rotation); the rest are counted
/// in `mai_webhook_spans_skipped_total`.
pub async fn seed_webhook(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = &st.cfg.webhook_secret else {
        return error_response(
            StatusCode::NOT_FOUND,
            "the Broadcast webhook is off: set MAI_WEBHOOK_SECRET on the tracker and send it in the destination's custom headers",
        );
    };
    let header = &st.cfg.webhook_secret_header;
    let presented = headers.get(header).and_then(|v| v.to_str().ok());
    if !presented.is_some_and(|p| token_matches(p.trim(), secret.expose())) {
        st.metrics.webhook_rejected.fetch_add(1, Ordering::Relaxed);
        return error_response(
            StatusCode::UNAUTHORIZED,
            &format!("missing or wrong {header} header: configure the Broadcast destination's custom headers as {{\"{header}\":\"<MAI_WEBHOOK_SECRET>\"}}"),
        );
    }
    let test = headers
        .get("x-test-connection")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let nothing = || {
        reply(seed::WebhookReply {
            status: seed::WebhookStatus::Ok,
            recorded: 0,
            duplicates: 0,
        })
    };
    // OpenRouter's connection test: an empty POST with the custom headers; the
    // destination is saved only if it answers 200.
    if test || body.iter().all(|b| b.is_ascii_whitespace()) {
        return nothing();
    }
    let spans = match crate::otlp::parse_export(&body, &st.cfg.org_id) {
        Ok(s) => s,
        Err(e) => {
            st.metrics.webhook_rejected.fetch_add(1, Ordering::Relaxed);
            return error_response(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let ours = st.webhook_key_names();
    let mut evs = Vec::new();
    for s in spans {
        let skip = match (&s.key_name, &s.event) {
            _ if ours.is_empty() => Some("own_key_name_unknown"),
            (None, _) => Some("no_key_name"),
            (Some(n), _) if !ours.contains(n) => Some("other_key"),
            (_, None) => Some("no_generation_id"),
            _ => None,
        };
        match (skip, s.event) {
            (Some(reason), _) => {
                st.metrics.count_webhook_skipped(reason);
                tracing::debug!(reason, trace = ?s.trace_id, "Broadcast span skipped");
            }
            (None, Some(e)) => evs.push(e),
            (None, None) => {}
        }
    }
    // The same sanity caps as manual records: a delivery carrying an absurd amount is
    // refused whole (422), so the sender sees it, and counted.
    if let Some(bad) = evs.iter().find_map(|e| {
        e.validate()
            .and_then(|()| mai_core::usage::check_bounds(e, &st.cfg.caps))
            .err()
    }) {
        st.metrics.webhook_rejected.fetch_add(1, Ordering::Relaxed);
        let reason = match bad {
            mai_core::usage::UsageError::OverCap { .. } => "over_cap",
            _ => "invalid",
        };
        st.metrics.count_refused("webhook", reason);
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, &bad.to_string());
    }
    if evs.is_empty() {
        return nothing();
    }
    match st.writer.record_wait(evs).await {
        Ok(outcomes) => {
            let recorded = outcomes
                .iter()
                .filter(|o| **o != RecordOutcome::Unchanged)
                .count();
            let duplicates = outcomes.len() - recorded;
            reply(seed::WebhookReply {
                status: seed::WebhookStatus::Ok,
                recorded: recorded as u64,
                duplicates: duplicates as u64,
            })
        }
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
