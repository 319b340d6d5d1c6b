//! HTTP adapter: axum server, content negotiation, fault injection, control endpoints.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::nbp::api::{self, Answer, Cutoffs, NbpError};
use crate::nbp::fault::{BodyFault, Fault};
use crate::nbp::rates::RateBook;
use crate::nbp::render::{self, Format};
use crate::nbp::NbpConfig;

/// Header carrying a per-request fault (see [`crate::nbp::fault`]).
pub const FAULT_HEADER: &str = "x-sim-fault";

struct Shared {
    book: RateBook,
    cutoffs: Cutoffs,
    /// `None`: the real Europe/Warsaw clock.
    clock: RwLock<Option<NaiveDateTime>>,
    fault: Mutex<Option<Fault>>,
    served: AtomicU64,
    /// Path and query of each API request, oldest first (capped).
    log: Mutex<Vec<String>>,
    shutdown: watch::Receiver<bool>,
}

/// Most API requests remembered by [`NbpHandle::requests`].
pub const REQUEST_LOG_CAP: usize = 100_000;

impl Shared {
    fn now(&self) -> NaiveDateTime {
        let pinned = *self.clock.read().unwrap_or_else(|e| e.into_inner());
        pinned.unwrap_or_else(warsaw_now)
    }

    /// Takes the server-side fault for one request, counting down `times`.
    fn take_fault(&self) -> Option<Fault> {
        let mut slot = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        let fault = slot.clone()?;
        if let Some(left) = fault.times {
            if left <= 1 {
                *slot = None;
            } else if let Some(f) = slot.as_mut() {
                f.times = Some(left - 1);
            }
            if left == 0 {
                return None;
            }
        }
        Some(fault)
    }

    /// Resolves when the server is shutting down (so hung requests let go).
    async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|down| *down).await;
    }
}

/// Current wall-clock time in Warsaw.
pub fn warsaw_now() -> NaiveDateTime {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Warsaw)
        .naive_local()
}

/// Entry point for starting the simulator in-process.
pub struct NbpSim;

impl NbpSim {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn spawn(config: NbpConfig) -> anyhow::Result<NbpHandle> {
        NbpSim::spawn_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr` (use a loopback address; the simulator never calls out).
    pub async fn spawn_on(addr: SocketAddr, config: NbpConfig) -> anyhow::Result<NbpHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("NBP simulator cannot listen on {addr}; pick a free port or use 127.0.0.1:0")
        })?;
        let local = listener
            .local_addr()
            .context("NBP simulator: reading the bound address")?;
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            book: RateBook::new(config.seed, config.fixture),
            cutoffs: config.cutoffs,
            clock: RwLock::new(config.now),
            fault: Mutex::new(None),
            served: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            shutdown: rx.clone(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let mut stop = rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|down| *down).await;
                })
                .await
        });
        tracing::info!(addr = %local, seed = config.seed, "NBP simulator listening");
        Ok(NbpHandle {
            addr: local,
            shared,
            shutdown_tx: tx,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server too; `shutdown` waits for it.
pub struct NbpHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl NbpHandle {
    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/api`; clients append `/exchangerates/…`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Pins the simulated Europe/Warsaw wall clock (it does not advance by itself).
    pub fn set_now(&self, now: NaiveDateTime) {
        *self.shared.clock.write().unwrap_or_else(|e| e.into_inner()) = Some(now);
    }

    /// Goes back to the real Warsaw clock.
    pub fn use_system_clock(&self) {
        *self.shared.clock.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The simulator's current Warsaw wall-clock time.
    pub fn now(&self) -> NaiveDateTime {
        self.shared.now()
    }

    /// Applies `fault` to every following API request (or the next `fault.times`).
    /// A per-request `X-Sim-Fault` header takes precedence over it.
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(fault);
    }

    pub fn clear_faults(&self) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// API requests received so far (every `/api/…` request, errors and faults
    /// included; control endpoints excluded).
    pub fn requests_served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// Path and query (e.g. `/api/exchangerates/rates/a/usd/today/?format=json`) of
    /// every API request so far, oldest first; the first [`REQUEST_LOG_CAP`] are kept.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Table A mid this simulator publishes for `code` on `date` (clock ignored).
    pub fn rate_a(&self, code: &str, date: NaiveDate) -> Option<Decimal> {
        self.shared.book.rate_a(code, date)
    }

    /// Table C (bid, ask) this simulator publishes for `code` on `date` (clock ignored).
    pub fn rate_c(&self, code: &str, date: NaiveDate) -> Option<(Decimal, Decimal)> {
        self.shared.book.rate_c(code, date)
    }

    /// Stops accepting, releases hung requests and waits for the server to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.task.take() {
            task.await
                .context("NBP simulator task panicked")?
                .context("NBP simulator server failed")?;
        }
        Ok(())
    }
}

impl Drop for NbpHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

fn plain(status: StatusCode, reason: Option<&str>, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(reason) = reason {
        if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.as_bytes()) {
            resp.extensions_mut().insert(phrase);
        }
    }
    resp
}

fn nbp_error(e: NbpError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    plain(status, Some(&e.reason_phrase()), e.to_string())
}

/// `?format=` first, then `Accept` (first JSON or XML media type listed), else JSON.
pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Format {
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if k.eq_ignore_ascii_case("format") {
                    if v.eq_ignore_ascii_case("json") {
                        return Format::Json;
                    }
                    if v.eq_ignore_ascii_case("xml") {
                        return Format::Xml;
                    }
                }
            }
        }
    }
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for media in value.split(',') {
            let media = media
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if media == "application/json" || media == "text/json" {
                return Format::Json;
            }
            if media == "application/xml" || media == "text/xml" {
                return Format::Xml;
            }
        }
    }
    Format::Json
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path.starts_with("/__sim/") {
        return control(&shared, req).await;
    }
    shared.served.fetch_add(1, Ordering::SeqCst);
    {
        let mut log = shared.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() < REQUEST_LOG_CAP {
            let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
            log.push(pq.to_string());
        }
    }
    tracing::debug!(uri = %req.uri(), "NBP simulator request");

    let header_fault =
        match req.headers().get(FAULT_HEADER).map(|v| v.to_str()) {
            None => None,
            Some(Ok(text)) => match text.parse::<Fault>() {
                Ok(f) => Some(f),
                Err(e) => return plain(StatusCode::BAD_REQUEST, None, format!("400 {e}")),
            },
            Some(Err(_)) => return plain(
                StatusCode::BAD_REQUEST,
                None,
                "400 X-Sim-Fault header is not ASCII; see the fault grammar in mai_sim::nbp::fault"
                    .into(),
            ),
        };
    let fault = header_fault
        .or_else(|| shared.take_fault())
        .unwrap_or_default();

    if !fault.latency.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(fault.latency) => {}
            _ = shared.shutting_down() => {}
        }
    }
    if fault.timeout {
        shared.shutting_down().await;
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "503 simulator shutting down".into(),
        );
    }
    if let Some(code) = fault.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Error");
        let mut resp = plain(status, None, format!("{code} {reason}"));
        if let Some(secs) = fault.retry_after() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return resp;
    }
    if fault.retry_after().is_some() {
        tracing::debug!("retry_after without status: ignored");
    }

    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            "405 MethodNotAllowed - the NBP API only answers GET".into(),
        );
    }
    let format = negotiate(req.uri().query(), req.headers());
    let now = shared.now();
    let result = api::parse_path(&path)
        .and_then(|request| api::answer(&shared.book, &request, now, &shared.cutoffs));
    let answer = match result {
        Ok(a) => a,
        Err(e) => return nbp_error(e),
    };
    let answer = match fault.body {
        Some(BodyFault::EmptyRates) => answer.with_empty_rates(),
        _ => answer,
    };
    let mut body = match (&answer, format) {
        (Answer::Series(s), Format::Json) => render::series_json(s),
        (Answer::Series(s), Format::Xml) => render::series_xml(s),
        (Answer::Tables(t), Format::Json) => render::tables_json(t),
        (Answer::Tables(t), Format::Xml) => render::tables_xml(t),
    };
    if fault.body == Some(BodyFault::Malformed) {
        let mut cut = body.len() / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    let etag = {
        let digest = Sha256::digest(body.as_bytes());
        format!("\"{}\"", hex::encode(&digest[..16]))
    };
    let mut resp = Response::new(Body::from(body));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    resp
}

/// `POST/DELETE /__sim/faults`, `GET /__sim/stats`, `POST/DELETE /__sim/now`.
async fn control(shared: &Shared, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                None,
                format!("cannot read control body: {e}"),
            )
        }
    };
    match (method, path.as_str()) {
        (Method::POST, "/__sim/faults") => match body.parse::<Fault>() {
            Ok(f) => {
                *shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
                plain(StatusCode::NO_CONTENT, None, String::new())
            }
            Err(e) => plain(StatusCode::BAD_REQUEST, None, e.to_string()),
        },
        (Method::DELETE, "/__sim/faults") => {
            *shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = None;
            plain(StatusCode::NO_CONTENT, None, String::new())
        }
        (Method::POST, "/__sim/now") => {
            match NaiveDateTime::parse_from_str(&body, "%Y-%m-%dT%H:%M:%S") {
                Ok(now) => {
                    *shared.clock.write().unwrap_or_else(|e| e.into_inner()) = Some(now);
                    plain(StatusCode::NO_CONTENT, None, String::new())
                }
                Err(_) => plain(
                    StatusCode::BAD_REQUEST,
                    None,
                    format!("cannot parse `{body}` as a Warsaw wall-clock time; send e.g. 2026-11-23T10:00:00"),
                ),
            }
        }
        (Method::DELETE, "/__sim/now") => {
            *shared.clock.write().unwrap_or_else(|e| e.into_inner()) = None;
            plain(StatusCode::NO_CONTENT, None, String::new())
        }
        (Method::GET, "/__sim/stats") => {
            let mut resp = Response::new(Body::from(format!(
                "{{\"requests_served\":{},\"now\":\"{}\"}}",
                shared.served.load(Ordering::SeqCst),
                shared.now().format("%Y-%m-%dT%H:%M:%S")
            )));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            resp
        }
        (m, p) => plain(
            StatusCode::NOT_FOUND,
            None,
            format!("no control endpoint {m} {p}; use POST|DELETE /__sim/faults, POST|DELETE /__sim/now, GET /__sim/stats"),
        ),
    }
}
