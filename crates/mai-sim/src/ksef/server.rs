//! The HTTP adapter: router under `/v2`, the outer layer (faults, error rendering),
//! start/stop, and the `/__sim/*` control endpoints. The handlers live in `api.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State as AxState};
use axum::http::{HeaderMap, Method, Response};
use axum::middleware::Next;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::api;
use super::config::{KsefConfig, TokenParseError, TokenSpec};
use super::crypto::{KeyUsage, PublishedKey};
use super::errors::{render, ApiError};
use super::faults::{FaultEndpoint, FaultRule, FaultSpec, Firing};
use super::ids::reference_number;
use super::invoice::SchemaValidator;
use super::model::{AcceptedInvoice, ActiveRule, RegisteredToken, SentInvoice, State};
use crate::openrouter::ClockMode;

pub(crate) type Resp = Response<Body>;

pub(crate) struct Shared {
    pub cfg: KsefConfig,
    pub token_key: PublishedKey,
    pub symmetric_key: PublishedKey,
    pub validator: Option<SchemaValidator>,
    pub tls: bool,
    state: Mutex<State>,
    trace: AtomicU64,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now()
    }

    fn trace_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let n = self.trace.fetch_add(1, Ordering::Relaxed);
        hex::encode(&Sha256::digest(format!("trace:{}:{n}", self.cfg.seed).as_bytes())[..16])
    }
}

/// Faults a handler applies itself (they change an invoice or a session, not the answer).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct InvoiceFaults {
    pub slow: Option<Duration>,
    pub reject: Option<u16>,
}

/// Which endpoint a `/v2` request is, and the session it names, for fault rules.
fn classify(method: &Method, path: &str) -> Option<(FaultEndpoint, Option<String>)> {
    let rest = path.strip_prefix("/v2/")?;
    let seg: Vec<&str> = rest.split('/').collect();
    let ep = match (method, seg.as_slice()) {
        (_, ["security", ..]) => (FaultEndpoint::PublicKeys, None),
        (_, ["auth", "challenge"]) => (FaultEndpoint::Challenge, None),
        (_, ["auth", ..]) => (FaultEndpoint::Auth, None),
        (&Method::POST, ["sessions", "online"]) => (FaultEndpoint::OpenSession, None),
        (&Method::POST, ["sessions", "online", r, "invoices"]) => {
            (FaultEndpoint::SendInvoice, Some(r.to_string()))
        }
        (&Method::POST, ["sessions", "online", r, "close"]) => {
            (FaultEndpoint::CloseSession, Some(r.to_string()))
        }
        (_, ["sessions", r, rest @ ..]) if rest.contains(&"upo") => {
            (FaultEndpoint::Upo, Some(r.to_string()))
        }
        (_, ["sessions", r, ..]) => (FaultEndpoint::Status, Some(r.to_string())),
        _ => (FaultEndpoint::Any, None),
    };
    Some(ep)
}

/// The outer layer: faults first (as a rate limiter answers before the service), then
/// the handler, then any [`ApiError`] rendered in the format the request asked for.
async fn outer(AxState(shared): AxState<Arc<Shared>>, mut req: Request, next: Next) -> Resp {
    let problem = req
        .headers()
        .get("x-error-format")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("problem-details"));
    let path = req.uri().path().to_string();
    let finish = |shared: &Shared, e: &ApiError| {
        let now = shared.now();
        render(e, problem, &path, &shared.trace_id(), now)
    };
    if let Some((endpoint, session)) = classify(req.method(), &path) {
        let firing = match pick_faults(&shared, req.headers(), endpoint, session.is_some()) {
            Ok(f) => f,
            Err(msg) => {
                return finish(
                    &shared,
                    &super::errors::bad(21405, format!("X-Sim-Fault: {msg}")),
                )
            }
        };
        if let Some(l) = firing.latency {
            tokio::time::sleep(l).await;
        }
        if firing.expire_session {
            if let Some(r) = &session {
                let mut st = shared.lock();
                let now = st.now();
                if let Some(s) = st.sessions.get_mut(r) {
                    if s.closed_at.is_none() && s.valid_until > now {
                        s.valid_until = now;
                    }
                }
            }
        }
        if let Some((status, retry_after)) = firing.status {
            let e = if status == 429 {
                ApiError::TooManyRequests {
                    retry_after: retry_after.unwrap_or(1),
                }
            } else {
                ApiError::Server { status }
            };
            let mut r = finish(&shared, &e);
            if status != 429 {
                if let Some(s) =
                    retry_after.and_then(|s| http::HeaderValue::from_str(&s.to_string()).ok())
                {
                    r.headers_mut().insert(http::header::RETRY_AFTER, s);
                }
            }
            return r;
        }
        req.extensions_mut().insert(InvoiceFaults {
            slow: firing.slow,
            reject: firing.reject,
        });
    }
    let mut resp = next.run(req).await;
    match resp.extensions_mut().remove::<ApiError>() {
        Some(e) => finish(&shared, &e),
        None => resp,
    }
}

fn pick_faults(
    shared: &Shared,
    headers: &HeaderMap,
    endpoint: FaultEndpoint,
    names_session: bool,
) -> Result<Firing, String> {
    let mut firing = Firing::default();
    if let Some(v) = headers.get("x-sim-fault") {
        let spec: FaultSpec = v
            .to_str()
            .unwrap_or("")
            .parse()
            .map_err(|e: super::faults::FaultParseError| e.to_string())?;
        firing.add(&spec, endpoint, names_session);
    }
    let mut st = shared.lock();
    for r in st.faults.iter_mut() {
        let left = r.rule.count.is_none_or(|c| r.fired < c);
        if left && r.rule.applies(endpoint, names_session) {
            r.fired += 1;
            firing.add(&r.rule.fault, endpoint, names_session);
        }
    }
    st.faults
        .retain(|r| r.rule.count.is_none_or(|c| r.fired < c));
    Ok(firing)
}

/// The KSeF 2.0 simulator, running; stops on [`KsefSim::shutdown`] or drop.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use mai_sim::ksef::{KsefConfig, KsefSim, TokenSpec};
/// let sim = KsefSim::spawn(KsefConfig {
///     tokens: vec![TokenSpec::new("5265877635", "test-token")],
///     ..KsefConfig::default()
/// })
/// .await?;
/// let base = sim.base_url(); // "http://127.0.0.1:PORT/v2"
/// // ... the client under test authenticates, opens a session, sends invoices ...
/// for inv in sim.accepted() {
///     println!("{} {} {}", inv.seller_nip, inv.invoice_number, inv.ksef_number);
/// }
/// sim.shutdown().await;
/// # Ok(()) }
/// ```
pub struct KsefSim {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl KsefSim {
    /// Starts on `127.0.0.1:0` (an ephemeral port), plain HTTP.
    pub async fn spawn(config: KsefConfig) -> anyhow::Result<KsefSim> {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)), config, false).await
    }

    /// Starts on `addr`, plain HTTP.
    pub async fn spawn_on(addr: SocketAddr, config: KsefConfig) -> anyhow::Result<KsefSim> {
        Self::start(addr, config, false).await
    }

    /// Starts on `addr`; over HTTPS (a CA made up at start, see [`crate::tls`]) when `tls`.
    pub async fn start(addr: SocketAddr, config: KsefConfig, tls: bool) -> anyhow::Result<KsefSim> {
        let shared = Arc::new(build_shared(config, tls)?);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; pick a free port or use port 0"))?;
        let local = listener.local_addr()?;
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let (task, ca_pem) = if tls {
            let identity = crate::tls::TlsIdentity::generate()?;
            let ca = identity.ca_pem().to_owned();
            let task = tokio::spawn(async move {
                crate::tls::serve(
                    listener,
                    app,
                    &identity,
                    crate::tls::DEFAULT_H2_MAX_STREAMS,
                    rx,
                )
                .await
            });
            (task, Some(ca))
        } else {
            let task = tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
            });
            (task, None)
        };
        tracing::debug!(%local, https = tls, "KSeF simulator listening");
        Ok(KsefSim {
            shared,
            addr: local,
            ca_pem,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT/v2` (`https://` over TLS): what a client is configured with,
    /// as `https://api-test.ksef.mf.gov.pl/v2` for the Ministry's test environment.
    pub fn base_url(&self) -> String {
        format!("{}/v2", self.origin())
    }

    /// `http://127.0.0.1:PORT/__sim`, the control endpoints (not part of KSeF).
    pub fn control_url(&self) -> String {
        format!("{}/__sim", self.origin())
    }

    fn origin(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA (PEM) clients must trust when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
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

    /// Accepts `spec` from now on; returns the token's reference number.
    pub fn register_token(&self, spec: TokenSpec) -> Result<String, TokenParseError> {
        register(&self.shared, spec)
    }

    /// Revokes every registered token equal to `token` for `nip` (450 on its next use).
    pub fn revoke_token(&self, nip: &str, token: &str) {
        for t in self.shared.lock().tokens.iter_mut() {
            if t.spec.nip == nip && t.spec.token == token {
                t.spec.revoked = true;
            }
        }
    }

    /// The invoices KSeF has accepted (status 200) by now, in the order sent.
    pub fn accepted(&self) -> Vec<AcceptedInvoice> {
        let st = self.shared.lock();
        st.accepted(st.now())
    }

    /// Every invoice sent, with its status now.
    pub fn invoices(&self) -> Vec<SentInvoice> {
        let st = self.shared.lock();
        st.sent(st.now())
    }

    /// Adds a standing fault rule (see [`super::faults`]).
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared
            .lock()
            .faults
            .push(ActiveRule { rule, fired: 0 });
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Ends an open session's validity now, as if its 12 hours had run out; false when
    /// there is no such open session.
    pub fn expire_session(&self, reference: &str) -> bool {
        expire(&self.shared, reference)
    }

    /// `publicKeyId` of the (`KsefTokenEncryption`, `SymmetricKeyEncryption`) keys.
    pub fn public_key_ids(&self) -> (String, String) {
        (
            self.shared.token_key.public_key_id.clone(),
            self.shared.symmetric_key.public_key_id.clone(),
        )
    }

    /// The simulator's time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// The clock reads `t` now and runs on from there.
    pub fn set_now(&self, t: DateTime<Utc>) {
        self.shared.lock().clock = ClockMode::starting_at(t);
    }

    /// The clock stops at `t` (statuses, tokens and sessions stop ageing).
    pub fn freeze_clock(&self, t: DateTime<Utc>) {
        self.shared.lock().clock = ClockMode::Frozen(t);
    }

    /// Moves the clock forward by `d` (frozen stays frozen, running stays running):
    /// expires tokens and sessions, finishes processing, without waiting.
    pub fn advance(&self, d: Duration) {
        advance(&self.shared, d);
    }

    /// Back to real time.
    pub fn reset_clock(&self) {
        self.shared.lock().clock = ClockMode::Real;
    }
}

impl Drop for KsefSim {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn advance(shared: &Shared, d: Duration) {
    let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let mut st = shared.lock();
    st.clock = match st.clock {
        ClockMode::Real => ClockMode::Offset(d),
        ClockMode::Offset(o) => ClockMode::Offset(o + d),
        ClockMode::Frozen(t) => ClockMode::Frozen(t + d),
    };
}

fn expire(shared: &Shared, reference: &str) -> bool {
    let mut st = shared.lock();
    let now = st.now();
    match st.sessions.get_mut(reference) {
        Some(s) if s.closed_at.is_none() && s.valid_until > now => {
            s.valid_until = now;
            true
        }
        _ => false,
    }
}

fn register(shared: &Shared, spec: TokenSpec) -> Result<String, TokenParseError> {
    spec.validate()?;
    let mut st = shared.lock();
    let n = st.next();
    let now = st.now();
    let reference = reference_number("TK", now, shared.cfg.seed, n);
    tracing::debug!(nip = %spec.nip, token = %super::config::mask(&spec.token), "KSeF token registered");
    st.tokens.push(RegisteredToken {
        spec,
        reference: reference.clone(),
    });
    Ok(reference)
}

fn build_shared(config: KsefConfig, tls: bool) -> anyhow::Result<Shared> {
    let clock = ClockMode::Real;
    let now = clock.now();
    let validator = if config.validate_schema {
        Some(SchemaValidator::new()?)
    } else {
        None
    };
    let token_key = PublishedKey::generate(config.seed, KeyUsage::KsefTokenEncryption, now)?;
    let symmetric_key = PublishedKey::generate(config.seed, KeyUsage::SymmetricKeyEncryption, now)?;
    let faults = config
        .faults
        .iter()
        .cloned()
        .map(|rule| ActiveRule { rule, fired: 0 })
        .collect();
    let shared = Shared {
        token_key,
        symmetric_key,
        validator,
        tls,
        state: Mutex::new(State {
            clock,
            counter: 0,
            tokens: Vec::new(),
            challenges: Default::default(),
            auth_ops: Default::default(),
            bearers: Default::default(),
            sessions: Default::default(),
            invoices: Vec::new(),
            issued: Default::default(),
            faults,
        }),
        trace: AtomicU64::new(0),
        cfg: config,
    };
    for t in shared.cfg.tokens.clone() {
        register(&shared, t).map_err(anyhow::Error::new)?;
    }
    Ok(shared)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v2/security/public-key-certificates",
            get(api::public_key_certificates),
        )
        .route("/v2/auth/challenge", post(api::challenge))
        .route("/v2/auth/ksef-token", post(api::ksef_token))
        .route("/v2/auth/token/redeem", post(api::redeem))
        .route("/v2/auth/token/refresh", post(api::refresh))
        .route("/v2/auth/{reference}", get(api::auth_status))
        .route("/v2/sessions/online", post(api::open_session))
        .route(
            "/v2/sessions/online/{reference}/invoices",
            post(api::send_invoice),
        )
        .route(
            "/v2/sessions/online/{reference}/close",
            post(api::close_session),
        )
        .route("/v2/sessions/{reference}", get(api::get_session))
        .route("/v2/sessions/{reference}/invoices", get(api::session_invoices))
        .route(
            "/v2/sessions/{reference}/invoices/failed",
            get(api::failed_invoices),
        )
        .route(
            "/v2/sessions/{reference}/invoices/{invoice}",
            get(api::invoice_status),
        )
        .route(
            "/v2/sessions/{reference}/invoices/{invoice}/upo",
            get(api::invoice_upo_by_reference),
        )
        .route(
            "/v2/sessions/{reference}/invoices/ksef/{ksef}/upo",
            get(api::invoice_upo_by_ksef_number),
        )
        .route(
            "/v2/sessions/{reference}/upo/{upo}",
            get(api::session_upo),
        )
        .route(
            "/storage/{reference}/invoice-upo/{ksef}",
            get(api::storage_invoice_upo),
        )
        .route(
            "/storage/{reference}/session-upo/{upo}",
            get(api::storage_session_upo),
        )
        .route("/__sim/tokens", post(control_token))
        .route("/__sim/accepted", get(control_accepted))
        .route("/__sim/invoices", get(control_invoices))
        .route(
            "/__sim/faults",
            post(control_add_fault).delete(control_clear_faults),
        )
        .route("/__sim/clock", post(control_clock))
        .route("/__sim/sessions/{reference}/expire", post(control_expire))
        .fallback(|req: Request| async move {
            ApiError::NotFound(format!(
                "{} {} is not an endpoint of this simulator (KSeF API 2.0 under /v2; controls under /__sim)",
                req.method(),
                req.uri().path()
            ))
        })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), outer))
        .with_state(shared)
}

fn control_error(msg: String) -> Resp {
    let mut r = Response::new(Body::from(json!({ "error": msg }).to_string()));
    *r.status_mut() = http::StatusCode::BAD_REQUEST;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn json_ok<T: serde::Serialize>(status: u16, v: &T) -> Resp {
    let mut r = Response::new(Body::from(serde_json::to_vec(v).unwrap_or_default()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

#[derive(Deserialize)]
struct TokenBody {
    nip: String,
    token: String,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    revoked: bool,
}

/// `{"nip":"5265877635","token":"...","permissions":["InvoiceWrite"]}` → `{"referenceNumber":...}`.
async fn control_token(AxState(shared): AxState<Arc<Shared>>, body: Bytes) -> Resp {
    let b: TokenBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return control_error(format!(
                "POST /__sim/tokens: {e}; send {{\"nip\":\"5265877635\",\"token\":\"...\",\"permissions\":[\"InvoiceWrite\",\"InvoiceRead\"]}}"
            ))
        }
    };
    let mut spec = TokenSpec::new(b.nip, b.token);
    spec.revoked = b.revoked;
    if let Some(p) = b.permissions {
        match p.iter().map(|x| x.parse()).collect::<Result<Vec<_>, _>>() {
            Ok(p) => spec.permissions = p,
            Err(e) => return control_error(format!("POST /__sim/tokens: {e}")),
        }
    }
    match register(&shared, spec) {
        Ok(reference) => json_ok(200, &json!({ "referenceNumber": reference })),
        Err(e) => control_error(format!("POST /__sim/tokens: {e}")),
    }
}

async fn control_accepted(AxState(shared): AxState<Arc<Shared>>) -> Resp {
    let st = shared.lock();
    json_ok(200, &st.accepted(st.now()))
}

async fn control_invoices(AxState(shared): AxState<Arc<Shared>>) -> Resp {
    let st = shared.lock();
    json_ok(200, &st.sent(st.now()))
}

async fn control_add_fault(AxState(shared): AxState<Arc<Shared>>, body: Bytes) -> Resp {
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => {
            let mut st = shared.lock();
            st.faults.push(ActiveRule { rule, fired: 0 });
            json_ok(200, &json!({ "rules": st.faults.len() }))
        }
        Err(e) => control_error(format!(
            "POST /__sim/faults: invalid rule: {e}; send {{\"fault\":\"status=429;retry_after=3\",\"endpoint\":\"send_invoice\",\"count\":2}}"
        )),
    }
}

async fn control_clear_faults(AxState(shared): AxState<Arc<Shared>>) -> Resp {
    shared.lock().faults.clear();
    json_ok(200, &json!({ "rules": 0 }))
}

#[derive(Deserialize)]
struct ClockBody {
    #[serde(default)]
    now: Option<DateTime<Utc>>,
    #[serde(default)]
    frozen: bool,
    #[serde(default)]
    advance_ms: Option<u64>,
}

/// `{"now":"2026-03-01T10:00:00Z","frozen":false}`, `{"advance_ms":60000}`, or `{}` (real time).
async fn control_clock(AxState(shared): AxState<Arc<Shared>>, body: Bytes) -> Resp {
    let b: ClockBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return control_error(format!(
                "POST /__sim/clock: {e}; send {{\"now\":\"2026-03-01T10:00:00Z\",\"frozen\":false}}, {{\"advance_ms\":60000}} or {{}}"
            ))
        }
    };
    if let Some(ms) = b.advance_ms {
        advance(&shared, Duration::from_millis(ms));
    } else {
        shared.lock().clock = match (b.now, b.frozen) {
            (None, _) => ClockMode::Real,
            (Some(t), true) => ClockMode::Frozen(t),
            (Some(t), false) => ClockMode::starting_at(t),
        };
    }
    json_ok(200, &json!({ "now": shared.now() }))
}

async fn control_expire(
    AxState(shared): AxState<Arc<Shared>>,
    Path(reference): Path<String>,
) -> Resp {
    if expire(&shared, &reference) {
        json_ok(200, &json!({ "expired": reference }))
    } else {
        control_error(format!(
            "POST /__sim/sessions/{reference}/expire: no open session with this reference number"
        ))
    }
}
