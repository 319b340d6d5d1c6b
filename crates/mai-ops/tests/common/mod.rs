//! In-process fakes for mai-ops tests and benches: a tracker speaking docs/tracker-api.md
//! and the OpenRouter key-management endpoints. Real servers on 127.0.0.1, real HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use mai_wire::tracker as wire;
use mai_wire::{ChatContext, CommercialTerms, EventState, Source, TokenCounts, UserRef};

#[derive(Clone, Debug)]
pub struct FakeEvent {
    pub seq: i64,
    pub id: String,
    pub user: &'static str,
    pub model: &'static str,
    pub cost: Decimal,
    pub prompt: u64,
    pub completion: u64,
    pub state: EventState,
    pub source: Source,
    pub at: DateTime<Utc>,
    /// Chat id, task and groups, as the tracker reports what Open WebUI told it.
    pub context: ChatContext,
}

#[derive(Default)]
pub struct TrackerState {
    pub org: String,
    /// The admin token; the read token is [`read_token_of`] it.
    pub token: String,
    /// Which token each request carried: (method and path, "read" | "admin"), as the
    /// real tracker's roles see them (read routes take either, admin routes only admin).
    pub auth_log: Vec<(String, &'static str)>,
    pub latency: Duration,
    pub events: Vec<FakeEvent>,
    pub next_seq: i64,
    pub key_label: String,
    pub received_keys: Vec<String>,
    /// The OpenRouter names handed over with the keys.
    pub received_names: Vec<Option<String>>,
    pub syncs: u32,
    /// What the console pushed (`PUT /api/v1/admin/terms`); the fake prices with it.
    pub terms: Option<CommercialTerms>,
    pub terms_pushes: u32,
}

pub type Shared = Arc<Mutex<TrackerState>>;

impl TrackerState {
    pub fn add(
        &mut self,
        id: &str,
        user: &'static str,
        model: &'static str,
        cost: &str,
        state: &'static str,
    ) {
        self.next_seq += 1;
        let state: EventState = state.parse().unwrap();
        let e = FakeEvent {
            seq: self.next_seq,
            id: id.to_string(),
            user,
            model,
            cost: cost.parse().unwrap(),
            prompt: 100,
            completion: 50,
            state,
            source: if state == EventState::Confirmed {
                Source::Reconciliation
            } else {
                Source::Proxy
            },
            at: Utc::now(),
            context: ChatContext::default(),
        };
        // A correction re-emits the event with a higher seq.
        self.events.retain(|x| x.id != id);
        self.events.push(e);
    }
    /// Like [`TrackerState::add`], with the chat id, task and groups of the event.
    pub fn add_in_chat(
        &mut self,
        id: &str,
        user: &'static str,
        cost: &str,
        chat: Option<&str>,
        task: Option<&str>,
        groups: Option<&str>,
    ) {
        self.add(id, user, "openai/gpt-4o-mini", cost, "confirmed");
        self.events.last_mut().unwrap().context = ChatContext {
            chat_id: chat.map(String::from),
            task: task.map(String::from),
            groups: groups.map(String::from),
        };
    }
    fn today_cost(&self) -> Decimal {
        let today = mai_core::time::warsaw_today();
        self.events
            .iter()
            .filter(|e| mai_core::time::warsaw_day(e.at) == today)
            .map(|e| e.cost)
            .sum()
    }
    fn schedule(&self) -> mai_wire::MarkupSchedule {
        self.terms.clone().unwrap_or_default().markup
    }
}

fn err(code: StatusCode, msg: &str) -> Response {
    (
        code,
        Json(wire::ErrorBody {
            error: wire::ErrorDetail {
                code: code.as_u16(),
                message: msg.into(),
            },
        }),
    )
        .into_response()
}

/// The fake's read token for an admin token (`FAKE_TRACKER_READ_TOKEN` in the tests).
pub fn read_token_of(admin: &str) -> String {
    format!("read-{admin}")
}

/// Checks the bearer token like the real tracker's roles: `admin` routes take only the
/// admin token, the others the read or the admin token. Logs which one came.
async fn auth_as(s: &Shared, h: &HeaderMap, route: &str, admin: bool) -> Result<(), Response> {
    let (token, latency) = {
        let g = s.lock().unwrap();
        (g.token.clone(), g.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await; // simulated network/tracker latency
    }
    let presented = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let kind = if presented == format!("Bearer {token}") {
        "admin"
    } else if presented == format!("Bearer {}", read_token_of(&token)) {
        "read"
    } else {
        "none"
    };
    s.lock().unwrap().auth_log.push((route.to_string(), kind));
    if kind == "admin" || (kind == "read" && !admin) {
        Ok(())
    } else {
        Err(err(StatusCode::UNAUTHORIZED, "bad token"))
    }
}

fn tokens(p: u64, c: u64) -> TokenCounts {
    TokenCounts {
        prompt: p,
        completion: c,
        reasoning: 0,
        cached: 0,
        total: p + c,
    }
}

async fn status(State(s): State<Shared>, h: HeaderMap) -> Response {
    if let Err(r) = auth_as(&s, &h, "GET /api/v1/status", false).await {
        return r;
    }
    let g = s.lock().unwrap();
    Json(wire::Status {
        org_id: g.org.clone(),
        org_name: Some("Fake".into()),
        version: "0.1.0".into(),
        uptime_seconds: 5,
        terms: g.terms.clone(),
        key: wire::KeyStatus {
            label: g.key_label.clone(),
            hash: g
                .received_keys
                .last()
                .map(|k| mai_core::openrouter::key_hash(k))
                .unwrap_or_else(|| "ab".repeat(32)),
            name: None,
            state: wire::KeyState::Ok,
            limit: Some(Decimal::from(100)),
            limit_remaining: Some("90.5".parse().unwrap()),
            usage_daily: Some(Decimal::ZERO),
            usage_monthly: Some("9.5".parse().unwrap()),
            checked_at: Some(Utc::now()),
            error: None,
        },
        sync: wire::SyncState {
            interval_seconds: 600,
            days_back: 1,
            running: false,
            last_run: Some(Utc::now()),
            last_success: Some(Utc::now()),
            last_error: None,
            next_run: None,
            provisional_pending: Some(0),
            drift: None,
        },
        proxy: wire::ProxyState { inflight: 0 },
        webhook: Default::default(),
    })
    .into_response()
}

async fn today(State(s): State<Shared>, h: HeaderMap) -> Response {
    if let Err(r) = auth_as(&s, &h, "GET /api/v1/usage/today", false).await {
        return r;
    }
    let g = s.lock().unwrap();
    let raw = g.today_cost();
    let n = g.events.len() as u64;
    let day = mai_core::time::warsaw_today();
    let rate = g.schedule().rate_on(day);
    Json(wire::Today {
        org_id: g.org.clone(),
        date: day,
        requests: n,
        tokens: tokens(100 * n, 50 * n),
        raw_cost_usd: raw,
        client_cost_usd: raw * rate,
        markup_rate: rate,
        last_updated: Utc::now(),
    })
    .into_response()
}

/// Every day of the range; the fake's events all fall on their own Warsaw day.
async fn daily(
    State(s): State<Shared>,
    h: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = auth_as(&s, &h, "GET /api/v1/usage/daily", false).await {
        return r;
    }
    let g = s.lock().unwrap();
    let today = mai_core::time::warsaw_today();
    let day = |k: &str| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(today);
    let (from, to) = (day("from"), day("to"));
    let sched = g.schedule();
    let days = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|d| {
            let evs: Vec<&FakeEvent> = g
                .events
                .iter()
                .filter(|e| mai_core::time::warsaw_day(e.at) == d)
                .collect();
            let raw: Decimal = evs.iter().map(|e| e.cost).sum();
            let n = evs.len() as u64;
            wire::DayUsage {
                date: d,
                requests: n,
                tokens: tokens(100 * n, 50 * n),
                raw_cost_usd: raw,
                client_cost_usd: raw * sched.rate_on(d),
            }
        })
        .collect();
    Json(wire::Daily {
        org_id: g.org.clone(),
        from,
        to,
        days,
    })
    .into_response()
}

async fn events(
    State(s): State<Shared>,
    h: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = auth_as(&s, &h, "GET /api/v1/events", false).await {
        return r;
    }
    let after: i64 = q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
        .min(5000);
    let g = s.lock().unwrap();
    let mut evs: Vec<&FakeEvent> = g.events.iter().filter(|e| e.seq > after).collect();
    evs.sort_by_key(|e| e.seq);
    let has_more = evs.len() > limit;
    evs.truncate(limit);
    let next = evs.last().map(|e| e.seq).unwrap_or(after);
    let events = evs
        .iter()
        .map(|e| wire::Event {
            seq: e.seq,
            generation_id: e.id.clone(),
            org_id: g.org.clone(),
            user: UserRef {
                id: Some(e.user.into()),
                email: Some(format!("{}@example.pl", e.user)),
                name: Some(e.user.into()),
            },
            model: e.model.into(),
            provider: Some("OpenAI".into()),
            tokens: tokens(e.prompt, e.completion),
            cost_usd: e.cost,
            source: e.source,
            state: e.state,
            created_at: e.at,
            context: e.context.clone(),
        })
        .collect();
    Json(wire::EventPage {
        events,
        next_cursor: next,
        has_more,
    })
    .into_response()
}

async fn sync(State(s): State<Shared>, h: HeaderMap) -> Response {
    if let Err(r) = auth_as(&s, &h, "POST /api/v1/sync", true).await {
        return r;
    }
    let mut g = s.lock().unwrap();
    g.syncs += 1;
    let n = g.events.len() as u64;
    Json(wire::SyncReport {
        status: wire::SyncStatus::Ok,
        checked: n,
        confirmed: n,
        still_provisional: 0,
        corrected: 0,
        errors: vec![],
        drift: None,
    })
    .into_response()
}

async fn put_terms(
    State(s): State<Shared>,
    h: HeaderMap,
    Json(terms): Json<CommercialTerms>,
) -> Response {
    if let Err(r) = auth_as(&s, &h, "PUT /api/v1/admin/terms", true).await {
        return r;
    }
    let mut g = s.lock().unwrap();
    g.terms = Some(terms.clone());
    g.terms_pushes += 1;
    Json(terms).into_response()
}

async fn put_key(
    State(s): State<Shared>,
    h: HeaderMap,
    Json(body): Json<wire::KeyHandover>,
) -> Response {
    if let Err(r) = auth_as(&s, &h, "PUT /api/v1/admin/openrouter-key", true).await {
        return r;
    }
    let key = body.key;
    if !key.starts_with("sk-or-v1-") {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "OpenRouter refused the key",
        );
    }
    let mut g = s.lock().unwrap();
    g.key_label = mai_core::secret::mask_key(&key);
    g.received_keys.push(key);
    g.received_names.push(body.name);
    Json(wire::KeyLabel {
        label: g.key_label.clone(),
    })
    .into_response()
}

pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub async fn fake_tracker(org: &str, token: &str, latency: Duration) -> (SocketAddr, Shared) {
    let st: Shared = Arc::new(Mutex::new(TrackerState {
        org: org.into(),
        token: token.into(),
        latency,
        key_label: "sk-or-v1-…0000".into(),
        ..Default::default()
    }));
    let app = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/usage/today", get(today))
        .route("/api/v1/usage/daily", get(daily))
        .route("/api/v1/events", get(events))
        .route("/api/v1/sync", post(sync))
        .route("/api/v1/admin/openrouter-key", put(put_key))
        .route("/api/v1/admin/terms", put(put_terms))
        .with_state(st.clone());
    (serve(app).await, st)
}

// ---- OpenRouter management API (subset used by rotation) ----

#[derive(Default)]
pub struct OrState {
    pub mgmt: String,
    pub keys: Vec<(String, String, bool, Option<String>)>, // (hash, plaintext, disabled, limit)
}
pub type OrShared = Arc<Mutex<OrState>>;

fn key_obj(hash: &str, key: &str, disabled: bool, limit: &Option<String>) -> Value {
    let label = format!("{}...{}", &key[..12], &key[key.len() - 3..]);
    json!({"hash": hash, "name": "k", "label": label, "disabled": disabled,
           "limit": limit.as_ref().map(|l| serde_json::from_str::<Value>(l).unwrap()), "usage": 0,
           "created_at": "2026-01-02T08:00:00Z", "updated_at": null})
}

fn or_auth(s: &OrShared, h: &HeaderMap) -> bool {
    let m = s.lock().unwrap().mgmt.clone();
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {m}"))
}

pub async fn fake_openrouter(mgmt: &str) -> (SocketAddr, OrShared) {
    let st: OrShared = Arc::new(Mutex::new(OrState {
        mgmt: mgmt.into(),
        keys: vec![],
    }));
    async fn list(State(s): State<OrShared>, h: HeaderMap) -> Response {
        if !or_auth(&s, &h) {
            return err(StatusCode::UNAUTHORIZED, "User not found.");
        }
        let g = s.lock().unwrap();
        let data: Vec<Value> = g
            .keys
            .iter()
            .filter(|k| !k.2)
            .map(|k| key_obj(&k.0, &k.1, k.2, &k.3))
            .collect();
        Json(json!({"data": data})).into_response()
    }
    async fn create(State(s): State<OrShared>, h: HeaderMap, body: String) -> Response {
        if !or_auth(&s, &h) {
            return err(
                StatusCode::FORBIDDEN,
                "Only management keys can perform this operation",
            );
        }
        let v: Value = serde_json::from_str(&body).unwrap();
        // keep the limit's JSON text exactly as sent
        let limit = v
            .get("limit")
            .filter(|l| !l.is_null())
            .map(|l| l.to_string());
        let mut g = s.lock().unwrap();
        let n = g.keys.len();
        let key = format!("sk-or-v1-{:064x}", 0xabc000 + n);
        let hash = format!("{:064x}", 0xfeed00 + n);
        g.keys
            .push((hash.clone(), key.clone(), false, limit.clone()));
        (
            StatusCode::CREATED,
            Json(json!({"data": key_obj(&hash, &key, false, &limit), "key": key})),
        )
            .into_response()
    }
    async fn update(
        State(s): State<OrShared>,
        h: HeaderMap,
        Path(hash): Path<String>,
        Json(v): Json<Value>,
    ) -> Response {
        if !or_auth(&s, &h) {
            return err(StatusCode::UNAUTHORIZED, "User not found.");
        }
        let mut g = s.lock().unwrap();
        let Some(k) = g.keys.iter_mut().find(|k| k.0 == hash) else {
            return err(StatusCode::NOT_FOUND, "not found");
        };
        if let Some(d) = v["disabled"].as_bool() {
            k.2 = d;
        }
        let o = key_obj(&k.0, &k.1, k.2, &k.3);
        Json(json!({"data": o})).into_response()
    }
    let app = Router::new()
        .route("/keys", get(list).post(create))
        .route("/keys/{hash}", patch(update))
        .with_state(st.clone());
    (serve(app).await, st)
}

/// A fleet file text for `n` trackers at the given addresses (no Docker hosts needed:
/// the host points at a socket that does not exist).
pub fn fleet_text(
    data_dir: &std::path::Path,
    clients: &[(String, SocketAddr, &str)],
    or_base: Option<SocketAddr>,
) -> String {
    let mut s = format!(
        "[console]\ndata_dir = {:?}\nconcurrency = 64\ntracker_timeout_ms = 800\ndocker_timeout_ms = 300\n\n",
        data_dir.to_string_lossy()
    );
    if let Some(a) = or_base {
        s += &format!("[openrouter]\nbase_url = \"http://{a}\"\n\n");
    }
    s += "[nbp]\nbase_url = \"http://127.0.0.1:9\"\n\n";
    s += "[[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n";
    for (id, addr, markup) in clients {
        s += &format!(
            "[[clients]]\nid = \"{id}\"\nlegal_name = \"{id} Sp. z o.o.\"\nnip = \"5261040828\"\naddress = \"ul. Testowa 1\"\nhost = \"h1\"\nmarkup = \"{markup}\"\nmonthly_limit_usd = \"10\"\ntracker_url = \"http://{addr}\"\ntracker_admin_token = \"env:FAKE_TRACKER_TOKEN\"\ntracker_read_token = \"env:FAKE_TRACKER_READ_TOKEN\"\n\n"
        );
    }
    s
}
