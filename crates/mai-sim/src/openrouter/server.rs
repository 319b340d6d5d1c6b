//! The HTTP adapter: shared state, router, start/stop, auth, error bodies, faults and
//! the `/__sim/*` control endpoints.

// Handlers return a ready error response on the cold path; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use chrono::{DateTime, Days, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::clock::ClockMode;
use super::config::{KeySpec, ModelSpec, SimConfig};
use super::faults::{FaultEndpoint, FaultRule, FaultSpec};
use super::ledger::{key_hash, AuthFailure, GenerationTruth, KeyTotals, Ledger};
use super::wire::{ErrorBody, ErrorEnvelope, ErrorMeta, Null, RateLimitHeaders, RetryAfterHeaders};
use super::{admin, chat, endpoints};

pub(crate) type Resp = Response<Body>;

pub(crate) struct Shared {
    pub cfg: SimConfig,
    pub models: HashMap<String, Arc<ModelSpec>>,
    pub state: Mutex<SimState>,
    /// Generations started; also the RNG stream of each request's ids.
    pub counter: AtomicU64,
    ray: AtomicU64,
}

pub(crate) struct SimState {
    pub ledger: Ledger,
    pub clock: ClockMode,
    pub faults: Vec<ActiveRule>,
    pub fault_rng: ChaCha8Rng,
    pub key_rng: ChaCha8Rng,
}

pub(crate) struct ActiveRule {
    pub rule: FaultRule,
    pub key_hash: Option<String>,
    pub fired: u64,
}

impl ActiveRule {
    fn new(rule: FaultRule) -> Self {
        let key_hash = rule
            .key_hash
            .clone()
            .or_else(|| rule.key.as_deref().map(key_hash));
        ActiveRule {
            rule,
            key_hash,
            fired: 0,
        }
    }
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.lock().clock.now()
    }

    /// The fault for this request: the `X-Sim-Fault` header wins, then standing rules.
    pub fn pick_fault(
        &self,
        headers: &HeaderMap,
        endpoint: FaultEndpoint,
        key_hash: Option<&str>,
    ) -> Result<Option<FaultSpec>, Resp> {
        if let Some(v) = headers.get("x-sim-fault") {
            let text = v.to_str().unwrap_or("");
            return text
                .parse::<FaultSpec>()
                .map(Some)
                .map_err(|e| error_response(400, e.to_string(), None, None));
        }
        let mut st = self.lock();
        let SimState {
            faults, fault_rng, ..
        } = &mut *st;
        for r in faults.iter_mut() {
            let ep_ok = r.rule.endpoint == FaultEndpoint::Any || r.rule.endpoint == endpoint;
            let key_ok = match (&r.key_hash, key_hash) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            };
            let left = r.rule.count.is_none_or(|c| r.fired < c);
            if !(ep_ok && key_ok && left) {
                continue;
            }
            let fire = r.rule.rate >= 1.0 || fault_rng.gen_bool(r.rule.rate.clamp(0.0, 1.0));
            if fire {
                r.fired += 1;
                return Ok(Some(r.rule.fault.clone()));
            }
        }
        Ok(None)
    }

    fn next_ray(&self) -> String {
        let n = self.ray.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}-WAW",
            splitmix(self.cfg.seed ^ n.wrapping_mul(0x9e37_79b9))
        )
    }
}

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The caller behind `Authorization: Bearer …`.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub hash: String,
    pub management: bool,
    pub byok: bool,
}

/// Resolves the bearer key; 401 bodies as the real service sends them.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller, Resp> {
    let key = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(error_response(401, "No auth credentials found", None, None));
    };
    let mut st = shared.lock();
    let now = st.clock.now();
    match st.ledger.authenticate(key, now, shared.cfg.accept_any_key) {
        Ok(hash) => {
            let k = &st.ledger.keys[&hash];
            Ok(Caller {
                management: k.management,
                byok: k.byok,
                hash,
            })
        }
        // The real service answers "User not found." for revoked keys as well [unconfirmed
        // for disabled/expired]; the status is what clients act on.
        Err(
            AuthFailure::Unknown
            | AuthFailure::Deleted
            | AuthFailure::Disabled
            | AuthFailure::Expired,
        ) => Err(error_response(401, "User not found.", None, None)),
    }
}

pub(crate) fn require_management(caller: &Caller) -> Result<(), Resp> {
    if caller.management {
        Ok(())
    } else {
        Err(error_response(
            403,
            "Only management keys can perform this operation",
            None,
            None,
        ))
    }
}

/// A section-7 error body, sent chunked without `Content-Length` (spec 0.3).
pub(crate) fn error_response(
    status: u16,
    message: impl Into<String>,
    metadata: Option<ErrorMeta>,
    user_id: Option<String>,
) -> Resp {
    let env = ErrorEnvelope {
        error: ErrorBody {
            message: message.into(),
            code: status,
            metadata,
        },
        user_id,
    };
    let bytes = Bytes::from(serde_json::to_vec(&env).unwrap_or_default());
    let body = Body::from_stream(futures::stream::once(
        async move { Ok::<_, Infallible>(bytes) },
    ));
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON success body.
pub(crate) fn json_response<T: Serialize>(status: u16, value: &T) -> Resp {
    let mut r = Response::new(Body::from(serde_json::to_vec(value).unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The error a scripted `status=` fault produces, with the bodies of spec 7.
pub(crate) fn scripted_error(
    shared: &Shared,
    fault: &FaultSpec,
    status: u16,
    model: Option<&ModelSpec>,
) -> Resp {
    let provider = model.map_or("OpenAI", |m| m.provider.as_str()).to_string();
    let model_id = model
        .map_or("openai/gpt-4o-mini", |m| m.id.as_str())
        .to_string();
    let user = Some(shared.cfg.user_id.clone());
    let msg = |default: &str| fault.message.clone().unwrap_or_else(|| default.to_string());
    let mut resp = match status {
        429 if fault.free_tier => {
            let now = shared.now();
            let reset = (now.date_naive() + Days::new(1))
                .and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp_millis());
            return free_tier_429(
                msg("Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day"),
                50,
                reset,
                user,
            );
        }
        429 => error_response(
            429,
            msg("Provider returned error"),
            Some(ErrorMeta::Provider {
                raw: format!("{model_id} is temporarily rate-limited upstream. Please retry shortly."),
                provider_name: provider,
                is_byok: false,
                retry_after_seconds: fault.retry_after,
                headers: fault.retry_after.map(|s| RetryAfterHeaders {
                    retry_after: s.to_string(),
                }),
            }),
            user,
        ),
        502 => error_response(
            502,
            msg("Provider returned error"),
            Some(ErrorMeta::Provider {
                raw: "upstream connect error or disconnect/reset before headers".into(),
                provider_name: provider,
                is_byok: false,
                retry_after_seconds: None,
                headers: None,
            }),
            user,
        ),
        529 => error_response(
            529,
            msg("Provider returned error"),
            Some(ErrorMeta::Provider {
                raw: "Overloaded".into(),
                provider_name: provider,
                is_byok: false,
                retry_after_seconds: None,
                headers: None,
            }),
            user,
        ),
        400 => error_response(400, msg("Invalid request parameters"), None, user),
        401 => error_response(401, msg("User not found."), None, None),
        402 => error_response(
            402,
            msg("Insufficient credits. Add more using https://openrouter.ai/credits"),
            None,
            user,
        ),
        403 => error_response(
            403,
            msg("Key limit exceeded (total limit). Manage it using https://openrouter.ai/settings/keys"),
            None,
            None,
        ),
        404 => error_response(404, msg(&format!("No endpoints found for {model_id}.")), None, None),
        408 => error_response(408, msg("Operation timed out. Please try again later."), None, user),
        500 => error_response(500, msg("Internal Server Error"), None, user),
        503 => error_response(
            503,
            msg("Service temporarily unavailable. Please retry shortly."),
            Some(ErrorMeta::Typed {
                error_type: "provider_overloaded",
            }),
            user,
        ),
        524 => error_response(
            524,
            msg("Provider timed out. Please try again later."),
            Some(ErrorMeta::Typed { error_type: "timeout" }),
            user,
        ),
        other => {
            let reason = StatusCode::from_u16(other)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            error_response(other, msg(reason), None, user)
        }
    };
    if let Some(s) = fault.retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
    resp
}

/// OpenRouter's own limiter: three `X-RateLimit-*` headers, reset in epoch ms, no Retry-After.
pub(crate) fn free_tier_429(
    message: String,
    limit: u32,
    reset_ms: i64,
    user: Option<String>,
) -> Resp {
    let headers = RateLimitHeaders {
        limit: limit.to_string(),
        remaining: "0".into(),
        reset: reset_ms.to_string(),
    };
    let mut r = error_response(
        429,
        message,
        Some(ErrorMeta::FreeTier {
            headers,
            provider_name: Null,
        }),
        user,
    );
    let h = r.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", reset_ms.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    r
}

/// The simulator, started; stops on [`SimHandle::shutdown`] or drop.
pub struct SimHandle {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    /// The test CA's PEM when serving HTTPS.
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Serving over HTTPS (see [`crate::tls`]).
#[derive(Debug, Clone, Copy)]
pub struct TlsOptions {
    /// SETTINGS_MAX_CONCURRENT_STREAMS of each HTTP/2 connection.
    pub h2_max_streams: u32,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            h2_max_streams: crate::tls::DEFAULT_H2_MAX_STREAMS,
        }
    }
}

/// Entry point of the OpenRouter simulator.
pub struct OpenRouterSim;

impl OpenRouterSim {
    /// Starts on `127.0.0.1:0` (an ephemeral port), plain HTTP/1.1.
    pub async fn spawn(config: SimConfig) -> anyhow::Result<SimHandle> {
        Self::spawn_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr`, plain HTTP/1.1.
    pub async fn spawn_on(addr: SocketAddr, config: SimConfig) -> anyhow::Result<SimHandle> {
        Self::start(addr, config, None).await
    }

    /// Starts on `127.0.0.1:0` over HTTPS with HTTP/2, as openrouter.ai is reached.
    pub async fn spawn_tls(config: SimConfig, tls: TlsOptions) -> anyhow::Result<SimHandle> {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)), config, Some(tls)).await
    }

    /// Starts on `addr`; HTTPS (ALPN h2, http/1.1) when `tls` is given.
    pub async fn start(
        addr: SocketAddr,
        config: SimConfig,
        tls: Option<TlsOptions>,
    ) -> anyhow::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; pick a free port or use port 0"))?;
        let local = listener.local_addr()?;
        let shared = Arc::new(build_shared(config)?);
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let (task, ca_pem) = match tls {
            None => {
                let listener = listener.tap_io(|tcp| {
                    // Small SSE writes must not wait for Nagle + delayed ACK.
                    let _ = tcp.set_nodelay(true);
                });
                let task = tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await
                });
                (task, None)
            }
            Some(opts) => {
                let identity = crate::tls::TlsIdentity::generate()?;
                let ca = identity.ca_pem().to_owned();
                let task = tokio::spawn(async move {
                    crate::tls::serve(listener, app, &identity, opts.h2_max_streams, rx).await
                });
                (task, Some(ca))
            }
        };
        tracing::debug!(%local, https = ca_pem.is_some(), "openrouter simulator listening");
        Ok(SimHandle {
            shared,
            addr: local,
            ca_pem,
            stop: Some(tx),
            task: Some(task),
        })
    }
}

fn build_shared(config: SimConfig) -> anyhow::Result<Shared> {
    let mut models = HashMap::new();
    for m in &config.models {
        models.insert(m.id.clone(), Arc::new(m.clone()));
    }
    let clock = ClockMode::Real;
    let now = clock.now();
    let mut ledger = Ledger::default();
    for k in &config.keys {
        anyhow::ensure!(
            super::config::is_well_formed_key(&k.key),
            "key {} is not sk-or-v1- followed by 64 lowercase hex; fix the keys file",
            super::config::mask_key(&k.key)
        );
        ledger.register(k, now);
    }
    if let Some(m) = &config.management_key {
        anyhow::ensure!(
            super::config::is_well_formed_key(m),
            "the management key is not sk-or-v1- followed by 64 lowercase hex"
        );
        let mut spec = KeySpec::management(m.clone());
        spec.name = "management".into();
        ledger.register(&spec, now);
    }
    let faults = config.faults.iter().cloned().map(ActiveRule::new).collect();
    Ok(Shared {
        models,
        state: Mutex::new(SimState {
            ledger,
            clock,
            faults,
            fault_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0xfa17),
            key_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x6e7),
        }),
        counter: AtomicU64::new(0),
        ray: AtomicU64::new(0),
        cfg: config,
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT/api/v1` (`https://` when serving TLS), the base URL
    /// clients are given.
    pub fn base_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/api/v1", self.addr)
    }

    /// The PEM of the CA clients must trust, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open responses finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Every generation served so far, in completion order.
    pub fn generations(&self) -> Vec<GenerationTruth> {
        self.shared
            .lock()
            .ledger
            .gens
            .iter()
            .map(|g| g.truth.clone())
            .collect()
    }

    /// Sum of what `api_key` was charged (all generations, all days).
    pub fn key_totals(&self, api_key: &str) -> KeyTotals {
        self.key_totals_by_hash(&key_hash(api_key))
    }

    pub fn key_totals_by_hash(&self, hash: &str) -> KeyTotals {
        self.shared.lock().ledger.totals_by_hash(hash)
    }

    /// All usage of the account (the `/credits` `total_usage`).
    pub fn total_usage(&self) -> Decimal {
        self.shared.lock().ledger.total_usage
    }

    /// Adds or updates a key; returns its hash (the management API id).
    pub fn register_key(&self, spec: KeySpec) -> String {
        let mut st = self.shared.lock();
        let now = st.clock.now();
        st.ledger.register(&spec, now)
    }

    /// Adds a standing fault rule (after the existing ones).
    pub fn set_fault(&self, rule: FaultRule) {
        self.shared.lock().faults.push(ActiveRule::new(rule));
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Makes the clock read `t` now and keep running from there.
    pub fn set_now(&self, t: DateTime<Utc>) {
        self.shared.lock().clock = ClockMode::starting_at(t);
    }

    /// Stops the clock at `t`.
    pub fn freeze_clock(&self, t: DateTime<Utc>) {
        self.shared.lock().clock = ClockMode::Frozen(t);
    }

    /// Back to real time.
    pub fn reset_clock(&self) {
        self.shared.lock().clock = ClockMode::Real;
    }

    /// The simulator's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let ray_shared = shared.clone();
    Router::new()
        .route("/api/v1/chat/completions", post(chat::chat_completions))
        .route("/api/v1/completions", post(endpoints::completions))
        .route("/api/v1/responses", post(endpoints::responses))
        .route("/api/v1/messages", post(endpoints::messages))
        .route("/api/v1/embeddings", post(endpoints::embeddings))
        .route("/api/v1/generation", get(admin::generation))
        .route("/api/v1/key", get(admin::key_info))
        .route("/api/v1/auth/key", get(admin::key_info))
        .route("/api/v1/credits", get(admin::credits))
        .route("/api/v1/activity", get(admin::activity))
        .route("/api/v1/models", get(admin::models))
        .route(
            "/api/v1/keys",
            get(admin::list_keys).post(admin::create_key),
        )
        .route(
            "/api/v1/keys/{hash}",
            get(admin::get_key)
                .patch(admin::update_key)
                .delete(admin::delete_key),
        )
        .route(
            "/__sim/faults",
            post(control_add_fault).delete(control_clear_faults),
        )
        .route("/__sim/truth", get(control_truth))
        .route("/__sim/clock", post(control_clock))
        .fallback(|| async { error_response(404, "Not Found", None, None) })
        .layer(axum::middleware::map_response(move |mut r: Resp| {
            let ray = ray_shared.next_ray();
            async move {
                let h = r.headers_mut();
                h.insert(http::header::SERVER, HeaderValue::from_static("cloudflare"));
                if let Ok(v) = HeaderValue::from_str(&ray) {
                    h.insert(HeaderName::from_static("cf-ray"), v);
                }
                r
            }
        }))
        .with_state(shared)
}

async fn control_add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Resp {
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => {
            let mut st = shared.lock();
            st.faults.push(ActiveRule::new(rule));
            json_response(200, &serde_json::json!({ "rules": st.faults.len() }))
        }
        Err(e) => error_response(
            400,
            format!("POST /__sim/faults: invalid rule: {e}; send {{\"fault\":\"status=503;retry_after=2\",\"endpoint\":\"chat\",\"rate\":1.0}}"),
            None,
            None,
        ),
    }
}

async fn control_clear_faults(State(shared): State<Arc<Shared>>) -> Resp {
    shared.lock().faults.clear();
    json_response(200, &serde_json::json!({ "rules": 0 }))
}

#[derive(Serialize)]
struct TruthKey {
    hash: String,
    label: String,
    name: String,
    disabled: bool,
    deleted: bool,
    generations: u64,
    cost: Decimal,
}

#[derive(Serialize)]
struct Truth {
    generations: Vec<GenerationTruth>,
    keys: Vec<TruthKey>,
    total_usage: Decimal,
    now: DateTime<Utc>,
}

/// Ground truth for out-of-process tests; money as exact decimal strings.
async fn control_truth(State(shared): State<Arc<Shared>>) -> Resp {
    let st = shared.lock();
    let mut keys: Vec<&_> = st.ledger.keys.values().collect();
    keys.sort_by_key(|k| k.seq);
    let truth = Truth {
        generations: st.ledger.gens.iter().map(|g| g.truth.clone()).collect(),
        keys: keys
            .into_iter()
            .map(|k| TruthKey {
                hash: k.hash.clone(),
                label: k.label.clone(),
                name: k.name.clone(),
                disabled: k.disabled,
                deleted: k.deleted,
                generations: k.generations,
                cost: k.all_time.usage,
            })
            .collect(),
        total_usage: st.ledger.total_usage,
        now: st.clock.now(),
    };
    json_response(200, &truth)
}

#[derive(Deserialize)]
struct ClockBody {
    now: Option<DateTime<Utc>>,
    #[serde(default)]
    frozen: bool,
}

/// `{"now": "2026-01-05T10:00:00Z", "frozen": false}`; `{"now": null}` = real time.
async fn control_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Resp {
    match serde_json::from_slice::<ClockBody>(&body) {
        Ok(b) => {
            let mut st = shared.lock();
            st.clock = match (b.now, b.frozen) {
                (None, _) => ClockMode::Real,
                (Some(t), true) => ClockMode::Frozen(t),
                (Some(t), false) => ClockMode::starting_at(t),
            };
            json_response(200, &serde_json::json!({ "now": st.clock.now() }))
        }
        Err(e) => error_response(
            400,
            format!("POST /__sim/clock: {e}; send {{\"now\":\"2026-01-05T10:00:00Z\",\"frozen\":false}} or {{\"now\":null}}"),
            None,
            None,
        ),
    }
}
