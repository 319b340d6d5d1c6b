//! The OpenAI-compatible proxy: forwards to OpenRouter with the client's key and
//! meters each generation exactly once.
//!
//! Which requests are metered (chat, completions, responses, messages, embeddings),
//! passed through (reads) or refused is decided by [`crate::endpoint`]; this handler
//! only forwards and hands what it saw to the [`Meter`].
//!
//! Responses are forwarded as they arrive (streams chunk by chunk); the metering side
//! only watches. The ledger write is a message to the writer thread, sent when the
//! response body ends or is dropped (client gone), so nothing on the client's path
//! waits for SQLite.

use crate::api::error_response;
use crate::endpoint::{self, Api};
use crate::journal::JournalEntry;
use crate::sse::SseScanner;
use crate::state::AppState;
use crate::upstream::LaneGuard;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::Stream;
use mai_core::openrouter::chat::ChatUsage;
use mai_core::usage::{ChatContext, EventState, Source, Tokens, UsageEvent, UserRef};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Request headers never forwarded upstream: hop-by-hop, our auth, and the chat app's
/// user headers (attribution stays with us; OpenRouter gets `user` instead).
fn skip_request_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "host"
            | "authorization"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "accept-encoding"
            | "cookie"
    ) || n.starts_with("x-openwebui-")
}

fn skip_response_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "content-length"
            | "upgrade"
            | "trailer"
            | "proxy-connection"
    )
}

/// What the proxy learned from the request before forwarding it.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub user: UserRef,
    /// Chat id, task and groups ([`crate::identity`]).
    pub context: ChatContext,
    pub model: Option<String>,
    pub stream: bool,
}

/// Rewrites a chat-completions body: asks for usage accounting (older deployments need
/// it, current ones ignore it) and sets `user` toward OpenRouter when absent. Values are
/// carried as raw JSON text, so nothing in the body goes through f64.
pub fn rewrite_chat_body(
    body: &[u8],
    header_user: &UserRef,
) -> Result<(Vec<u8>, RequestInfo), String> {
    let mut map: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body)
        .map_err(|e| format!("request body is not a JSON object: {e}"))?;
    let model = map
        .get("model")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    let stream = map
        .get("stream")
        .and_then(|v| serde_json::from_str::<bool>(v.get()).ok())
        .unwrap_or(false);
    let body_user = map
        .get("user")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        .filter(|s| !s.is_empty());
    let mut user = header_user.clone();
    if user.id.is_none() {
        user.id = body_user.clone();
    }
    let raw = |s: &str| RawValue::from_string(s.to_owned()).expect("static JSON");
    map.entry("usage".into())
        .or_insert_with(|| raw(r#"{"include":true}"#));
    if stream {
        map.entry("stream_options".into())
            .or_insert_with(|| raw(r#"{"include_usage":true}"#));
    }
    if body_user.is_none() {
        if let Some(u) = user.id.as_ref().or(user.email.as_ref()) {
            let u: String = u.chars().take(128).collect();
            map.insert(
                "user".into(),
                RawValue::from_string(serde_json::to_string(&u).expect("string"))
                    .expect("valid JSON string"),
            );
        }
    }
    let out = serde_json::to_vec(&map).map_err(|e| e.to_string())?;
    Ok((
        out,
        RequestInfo {
            user,
            context: ChatContext::default(),
            model,
            stream,
        },
    ))
}

/// Meters one proxied request. Dropping it (normal end, cut stream, client gone)
/// sends exactly one ledger record for the generation, if a generation id was seen.
pub struct Meter {
    st: Arc<AppState>,
    api: Api,
    req: RequestInfo,
    header_id: Option<String>,
    journaled: bool,
    pub scan: SseScanner,
    non_stream_usage: Option<ChatUsage>,
    upstream_ok: bool,
    done: bool,
}

impl Meter {
    fn new(
        st: Arc<AppState>,
        api: Api,
        req: RequestInfo,
        header_id: Option<String>,
        ok: bool,
    ) -> Meter {
        st.metrics.inflight.fetch_add(1, Ordering::Relaxed);
        let mut m = Meter {
            st,
            api,
            req,
            header_id,
            journaled: false,
            scan: SseScanner::for_shape(api.shape()),
            non_stream_usage: None,
            upstream_ok: ok,
            done: false,
        };
        m.journal_if_new();
        m
    }

    fn id(&self) -> Option<&str> {
        self.header_id.as_deref().or(self.scan.id.as_deref())
    }

    /// The id goes to the crash journal the moment we know it.
    fn journal_if_new(&mut self) {
        if self.journaled || !self.upstream_ok {
            return;
        }
        if let Some(id) = self.id() {
            self.journal(id.to_owned());
        }
    }

    fn journal(&mut self, id: String) {
        let e = JournalEntry {
            id,
            at: Utc::now(),
            model: self.model(),
            user: self.req.user.clone(),
            context: self.req.context.clone(),
        };
        self.st.journal.append(&e);
        self.journaled = true;
    }

    fn model(&self) -> String {
        self.scan
            .model
            .clone()
            .or_else(|| self.req.model.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    }

    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.st.metrics.inflight.fetch_sub(1, Ordering::Relaxed);
        // An error status comes before any generation starts: nothing is billed.
        if !self.upstream_ok {
            return;
        }
        let usage = self.non_stream_usage.take().or(self.scan.usage.take());
        let id = match self.id() {
            Some(id) => id.to_owned(),
            // Usage without any generation id (no header, none in the body: possible for
            // embeddings [unconfirmed]): the money was spent, so it is recorded under an
            // id of our own rather than lost. Reconciliation cannot look such an id up;
            // with a cost it is exact already, without one it stays provisional and
            // visible (provisional count, drift against /key).
            None if usage.is_some() => {
                let id = mint_id(self.api);
                tracing::warn!(generation_id = %id, api = self.api.name(), "OpenRouter sent usage but no generation id; recorded under a tracker-made id");
                self.journal(id.clone());
                id
            }
            None => {
                tracing::warn!(api = self.api.name(), "a successful reply carried neither a generation id nor usage; nothing to meter it by");
                return;
            }
        };
        let (state, tokens, cost) = match &usage {
            Some(u) if u.cost.is_some() => (
                EventState::Confirmed,
                tokens_of(u),
                u.cost.unwrap_or_default(),
            ),
            Some(u) => (EventState::Provisional, tokens_of(u), Default::default()),
            None => (
                EventState::Provisional,
                Tokens::default(),
                Default::default(),
            ),
        };
        let m = &self.st.metrics;
        if state == EventState::Confirmed {
            m.metered_confirmed.fetch_add(1, Ordering::Relaxed);
            m.tokens_prompt.fetch_add(tokens.prompt, Ordering::Relaxed);
            m.tokens_completion
                .fetch_add(tokens.completion, Ordering::Relaxed);
            m.add_cost(cost);
        } else {
            m.metered_provisional.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(generation_id = %id, upstream_ok = self.upstream_ok, "no usage seen; recorded as provisional for reconciliation");
        }
        let ev = UsageEvent {
            generation_id: id,
            org_id: self.st.cfg.org_id.clone(),
            user: self.req.user.clone(),
            model: self.model(),
            provider: self.scan.provider.clone(),
            tokens,
            cost_usd: cost,
            source: Source::Proxy,
            state,
            created_at: Utc::now(),
            context: self.req.context.clone(),
        };
        self.st.writer.record(ev);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `mai-embeddings-<32 hex>`: never a `gen-` id, so it cannot collide with OpenRouter's.
fn mint_id(api: Api) -> String {
    format!(
        "mai-{}-{:016x}{:016x}",
        api.name(),
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

fn tokens_of(u: &ChatUsage) -> Tokens {
    Tokens {
        prompt: u.prompt_tokens,
        completion: u.completion_tokens,
        reasoning: u.reasoning_tokens,
        cached: u.cached_tokens,
    }
}

type UpstreamBody = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The upstream body, forwarded chunk by chunk while the meter watches.
struct MeteredStream {
    inner: UpstreamBody,
    meter: Meter,
    _lane: LaneGuard,
}

/// An upstream body forwarded as is; its lane is freed when the body is done.
struct LaneStream {
    inner: UpstreamBody,
    _lane: LaneGuard,
}

impl Stream for LaneStream {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.meter.scan.feed(&b);
                self.meter.journal_if_new();
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                // Cut upstream: end the client's stream the same way (no clean end).
                self.meter.scan.finish();
                self.meter.finish();
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(None) => {
                self.meter.scan.finish();
                self.meter.journal_if_new();
                self.meter.finish();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Every `/v1/*` request (and `/api/v1/<metered endpoint>`). The proxy token was checked
/// from the headers by the route layer (`limits::require_role`) before the body was read.
pub async fn handle(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = match endpoint::route(&method, &uri) {
        Ok(r) => r,
        Err(refusal) => {
            tracing::info!(%method, reason = %refusal, "request refused before forwarding");
            return error_response(refusal.status(), &refusal.to_string());
        }
    };
    // Who asked; with a JWT secret configured, a request that spends without a valid
    // signed identity stops here, before anything reaches OpenRouter.
    let spends = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let ident = match st.identity.read(&headers, spends, &st.metrics) {
        Ok(i) => i,
        Err(r) => {
            tracing::warn!(reason = r.reason(), path = %uri.path(), "request refused: signed identity missing or invalid");
            return error_response(
                StatusCode::UNAUTHORIZED,
                &r.message(&st.identity.headers.jwt),
            );
        }
    };
    forward(st, route, method, uri, headers, body, ident).await
}

/// Forwards a routed request on behalf of `ident` and meters it: the proxy's path after
/// the identity decision, shared with the admin probe (`api::probe`), whose identity is
/// the operator's and not a chat user's.
pub(crate) async fn forward(
    st: Arc<AppState>,
    route: endpoint::Route,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    ident: crate::identity::Identity,
) -> Response {
    let (body, info) = match route.api {
        Some(api) => match endpoint::prepare_body(api, body, &ident.user) {
            Ok((b, mut info)) => {
                info.context = ident.context;
                (b, info)
            }
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "POST {}: {e}; send a JSON object of the {} API",
                        uri.path(),
                        api.name()
                    ),
                )
            }
        },
        None => (
            body,
            RequestInfo {
                user: ident.user,
                context: ident.context,
                model: None,
                stream: false,
            },
        ),
    };
    let url = format!("{}{}", st.cfg.openrouter_base_url, route.upstream);
    let lane = match st.upstream.acquire() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot build an upstream client");
            return error_response(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "cannot set up a connection to OpenRouter: {e}; check MAI_UPSTREAM_CA_CERT"
                ),
            );
        }
    };
    let mut rb = lane.http().request(method.clone(), &url);
    for (k, v) in headers.iter() {
        if !skip_request_header(k) && !st.identity.is_own_header(k) {
            rb = rb.header(k, v);
        }
    }
    let key = st.key();
    rb = rb.bearer_auth(key.expose()).body(body);
    let started = Instant::now();
    let resp = match rb.send().await {
        Ok(r) => {
            st.upstream.saw_version(r.version());
            r
        }
        Err(e) => {
            st.upstream.saw_transport_error(&lane);
            st.metrics.count_upstream_error(if e.is_timeout() {
                "timeout".into()
            } else {
                "transport".into()
            });
            let detail = mai_core::openrouter::error_chain(&e);
            tracing::warn!(url = %url, error = %detail, "upstream request failed");
            let hint = if detail.contains("certificate") {
                "the upstream's TLS certificate is not trusted: set MAI_UPSTREAM_CA_CERT to its CA (PEM) if it is a private or inspecting proxy"
            } else {
                "retry the request, and check OPENROUTER_BASE_URL if it persists"
            };
            return error_response(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "could not reach OpenRouter at {}: {detail}; {hint}",
                    st.cfg.openrouter_base_url
                ),
            );
        }
    };
    st.metrics.observe_latency(started.elapsed());
    let status = resp.status();
    st.metrics.count_status(status.as_u16());
    if !status.is_success() {
        st.metrics.count_upstream_error(status.as_u16().to_string());
    }
    let mut out_headers = HeaderMap::new();
    for (k, v) in resp.headers().iter() {
        if !skip_response_header(k) {
            out_headers.append(k.clone(), v.clone());
        }
    }
    let Some(api) = route.api else {
        // Plain pass-through (models list etc.), streamed as it comes.
        let body = LaneStream {
            inner: Box::pin(resp.bytes_stream()),
            _lane: lane,
        };
        let mut r = Response::new(Body::from_stream(body));
        *r.status_mut() = status;
        *r.headers_mut() = out_headers;
        return r;
    };
    let header_id = resp
        .headers()
        .get("x-generation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_sse = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    // A spending refusal says which limit stopped the client: the key's own cap (403 "Key
    // limit exceeded") or the account's credits (402). The status page learns it now,
    // not at the next reconciliation. Error bodies are small JSON, read whole.
    if matches!(status.as_u16(), 402 | 403) && !is_sse {
        let resp_headers = resp.headers().clone();
        return match resp.bytes().await {
            Ok(bytes) => {
                let e = mai_core::openrouter::ApiError::from_response(
                    uri.path(),
                    status.as_u16(),
                    &resp_headers,
                    &bytes,
                );
                if let Some(r) = e.refusal() {
                    st.note_refusal(&r, &e.to_string());
                }
                let mut r = Response::new(Body::from(bytes));
                *r.status_mut() = status;
                *r.headers_mut() = out_headers;
                r
            }
            Err(e) => error_response(
                StatusCode::BAD_GATEWAY,
                &format!("OpenRouter's reply was cut off: {e}; retry the request"),
            )
            .into_response(),
        };
    }
    if status.is_success() {
        st.note_spending_works();
    }
    let mut meter = Meter::new(st.clone(), api, info, header_id, status.is_success());
    if is_sse {
        let stream = MeteredStream {
            inner: Box::pin(resp.bytes_stream()),
            meter,
            _lane: lane,
        };
        let mut r = Response::new(Body::from_stream(stream));
        *r.status_mut() = status;
        *r.headers_mut() = out_headers;
        return r;
    }
    // Non-streamed: the body is small; read it whole to get `usage`, then forward it.
    match resp.bytes().await {
        Ok(bytes) => {
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if let Ok(m) = api.shape().parse_body(text) {
                    if meter.scan.id.is_none() {
                        meter.scan.id = m.id;
                    }
                    meter.scan.model = m.model.or(meter.scan.model.take());
                    meter.scan.provider = m.provider;
                    meter.non_stream_usage = m.usage;
                    meter.scan.error = m.error;
                }
            }
            meter.journal_if_new();
            drop(meter);
            let mut r = Response::new(Body::from(bytes));
            *r.status_mut() = status;
            *r.headers_mut() = out_headers;
            r
        }
        Err(e) => {
            drop(meter);
            st.metrics.count_upstream_error("cut".into());
            error_response(
                StatusCode::BAD_GATEWAY,
                &format!("OpenRouter's reply was cut off: {e}; retry the request"),
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_rewrite_keeps_values_and_adds_flags() {
        let body = br#"{"model":"openai/gpt-4o-mini","temperature":0.70000000000000001,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let u = UserRef {
            id: Some("u-1".into()),
            email: Some("a@b.pl".into()),
            name: None,
        };
        let (out, info) = rewrite_chat_body(body, &u).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""temperature":0.70000000000000001"#),
            "{text}"
        );
        assert!(text.contains(r#""usage":{"include":true}"#));
        assert!(text.contains(r#""stream_options":{"include_usage":true}"#));
        assert!(text.contains(r#""user":"u-1""#));
        assert!(info.stream);
        assert_eq!(info.model.as_deref(), Some("openai/gpt-4o-mini"));
        assert_eq!(info.user.email.as_deref(), Some("a@b.pl"));
    }

    #[test]
    fn body_user_is_kept_and_used_for_attribution() {
        let (out, info) = rewrite_chat_body(
            br#"{"model":"m","user":"client-user-9","messages":[]}"#,
            &UserRef::default(),
        )
        .unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(r#""user":"client-user-9""#));
        assert_eq!(info.user.id.as_deref(), Some("client-user-9"));
        assert!(!info.stream);
    }

    /// From fuzz/fuzz_targets/chat_body.rs: a number beyond f64's range is valid JSON
    /// (RFC 8259 sets no limit) and goes upstream byte for byte; reading the body as
    /// `serde_json::Value` would refuse it ("number out of range"), so nothing on this
    /// path may. (The fuzz harness had made that mistake, not the proxy.)
    #[test]
    fn numbers_beyond_f64_pass_through_verbatim() {
        let body = br#"{"poi/c3mmm": 5122e33021222}"#;
        let u = UserRef {
            email: Some("a@b.pl".into()),
            ..UserRef::default()
        };
        let (out, _) = rewrite_chat_body(body, &u).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#""poi/c3mmm":5122e33021222"#), "{text}");
        assert!(text.contains(r#""user":"a@b.pl""#), "{text}");
        serde_json::from_str::<serde::de::IgnoredAny>(&text).unwrap();
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(rewrite_chat_body(b"{not json", &UserRef::default()).is_err());
        assert!(rewrite_chat_body(b"[1,2]", &UserRef::default()).is_err());
    }
}
