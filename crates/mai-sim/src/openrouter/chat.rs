//! POST /chat/completions: checks in the real service's order, then a plain JSON reply
//! or an SSE stream built as a list of steps and played back with timing.

// Admission returns a ready error response on the cold path; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::config::{ModelSpec, UsageChunkShape};
use super::content::{self, ChatRequest, Completion, UsageOverride};
use super::faults::{FaultEndpoint, FaultSpec};
use super::ledger::{GenMeta, GenRecord, GenerationTruth};
use super::pricing::{compute_cost, Cost, Num, TokenCounts};
use super::server::{
    authenticate, error_response, free_tier_429, scripted_error, Caller, Resp, Shared,
};
use super::wire::{
    AssistantMessage, ChatCompletion, Chunk, ChunkChoice, ChunkError, CompletionChoice, Delta,
    ErrorCode, ErrorMeta, ErrorTypeMeta, Null, Usage,
};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn alnum(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}

pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Everything needed to record the generation, fixed when the request is accepted.
pub(crate) struct Draft {
    shared: Arc<Shared>,
    model: Arc<ModelSpec>,
    pub(crate) truth: GenerationTruth,
    meta: GenMeta,
    planned: TokenCounts,
}

impl Draft {
    /// Tokens and cost if the stream stops after `content_sent` content tokens.
    fn partial(&self, content_sent: u32) -> (TokenCounts, Cost) {
        let mut t = self.planned;
        t.completion = (t.reasoning + content_sent).min(t.completion);
        let c = compute_cost(
            &self.model,
            &t,
            self.truth.is_byok,
            self.shared.cfg.byok_fee_rate,
        );
        (t, c)
    }

    pub(crate) fn record(
        &self,
        tokens: TokenCounts,
        cost: Cost,
        finish: Option<&str>,
        cancelled: bool,
    ) {
        let mut truth = self.truth.clone();
        truth.prompt_tokens = tokens.prompt;
        truth.completion_tokens = tokens.completion;
        truth.reasoning_tokens = tokens.reasoning;
        truth.cached_tokens = tokens.cached;
        truth.cache_write_tokens = tokens.cache_write;
        truth.cost = cost.cost;
        truth.upstream_cost = cost.upstream;
        truth.cancelled = cancelled;
        truth.finish_reason = finish.map(str::to_string);
        let mut meta = self.meta.clone();
        if finish.is_none() || finish == Some("error") {
            meta.native_finish_reason = None;
        }
        meta.ready_at = Instant::now().checked_add(self.shared.cfg.generation_ready_delay);
        self.shared.lock().ledger.record(GenRecord { truth, meta });
    }
}

/// Authentication and the fault for an inference request, before its body is read
/// (the real service's order: a bad key wins over a bad body).
pub(crate) fn authorize(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
) -> Result<(Caller, FaultSpec), Resp> {
    let caller = authenticate(shared, headers)?;
    if caller.management {
        // [unconfirmed] whether 401 or 403; the docs only say management keys cannot.
        return Err(error_response(
            403,
            "Management keys cannot be used for inference. Use an API key instead.",
            None,
            None,
        ));
    }
    let fault = shared
        .pick_fault(headers, FaultEndpoint::Chat, Some(&caller.hash))?
        .unwrap_or_default();
    Ok((caller, fault))
}

/// A request accepted for generation: what every endpoint renders its reply from.
pub(crate) struct Admitted {
    pub draft: Draft,
    pub completion: Completion,
    pub full_cost: Cost,
    pub fault: FaultSpec,
    pub id: String,
    pub model: Arc<ModelSpec>,
    pub created: i64,
    pub latency: Duration,
    pub native_finish: &'static str,
}

/// Model, forced usage, scripted faults, account and key checks, ids: shared by every
/// inference endpoint (chat, completions, responses, messages, embeddings). `fixed`
/// overrides token counts the endpoint cannot have (embeddings: no completion).
pub(crate) async fn admit(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    caller: Caller,
    fault: FaultSpec,
    req: &ChatRequest,
    api_type: &'static str,
    fixed: UsageOverride,
) -> Result<Admitted, Resp> {
    let requested = req
        .model
        .iter()
        .chain(req.models.iter())
        .cloned()
        .collect::<Vec<_>>();
    let model = if requested.is_empty() {
        shared
            .cfg
            .models
            .first()
            .and_then(|m| shared.models.get(&m.id))
            .cloned()
    } else {
        requested
            .iter()
            .find_map(|id| shared.models.get(id))
            .cloned()
    };
    let Some(model) = model else {
        let id = requested.first().cloned().unwrap_or_default();
        return Err(error_response(
            400,
            format!("{id} is not a valid model ID"),
            None,
            None,
        ));
    };
    let mut forced = match header_str(headers, "x-sim-usage").map(|s| s.parse::<UsageOverride>()) {
        Some(Err(e)) => return Err(error_response(400, e, None, None)),
        Some(Ok(o)) => o,
        None => UsageOverride::default(),
    };
    forced.completion = fixed.completion.or(forced.completion);
    forced.reasoning = fixed.reasoning.or(forced.reasoning);
    forced.cached = fixed.cached.or(forced.cached);
    forced.cache_write = fixed.cache_write.or(forced.cache_write);

    if let Some(l) = fault.latency {
        tokio::time::sleep(l).await;
    }
    if let Some(status) = fault.status {
        return Err(scripted_error(shared, &fault, status, Some(&model)));
    }

    // Account and key checks, in one critical section.
    let user = Some(shared.cfg.user_id.clone());
    let completion = content::plan(
        shared.cfg.seed,
        req,
        &model,
        shared.cfg.completion_tokens,
        forced,
        fault.drip.is_some(),
    );
    let byok = caller.byok;
    let full_cost = compute_cost(&model, &completion.tokens, byok, shared.cfg.byok_fee_rate);
    let now;
    let key_label;
    let key_name;
    {
        let mut st = shared.lock();
        now = st.clock.now();
        let st = &mut *st;
        if model.is_free() {
            let per_day = shared.cfg.free_requests_per_day.unwrap_or(
                if shared.cfg.total_credits < Decimal::from(10) {
                    50
                } else {
                    1000
                },
            );
            if let Err((limit, reset, daily)) =
                st.ledger
                    .take_free_request(now, shared.cfg.free_requests_per_minute, per_day)
            {
                let msg = if daily {
                    if limit < 1000 {
                        "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day".to_string()
                    } else {
                        "Rate limit exceeded: free-models-per-day.".to_string()
                    }
                } else {
                    "Rate limit exceeded: free-models-per-min.".to_string()
                };
                return Err(free_tier_429(msg, limit, reset, user));
            }
        }
        let key = &st.ledger.keys[&caller.hash];
        if let Some(window) = key.limit_exceeded(now) {
            return Err(error_response(
                403,
                format!("Key limit exceeded ({window} limit). Manage it using https://openrouter.ai/settings/keys"),
                None,
                None,
            ));
        }
        key_label = key.label.clone();
        key_name = key.name.clone();
        if !byok {
            let balance = shared.cfg.total_credits - st.ledger.total_usage;
            if balance < Decimal::ZERO || (balance.is_zero() && !model.is_free()) {
                return Err(error_response(
                    402,
                    "Insufficient credits. Add more using https://openrouter.ai/credits",
                    None,
                    user,
                ));
            }
            if let (Some(cap), false) = (req.cap(), model.completion.is_zero()) {
                let prompt_cost = Decimal::from(completion.tokens.prompt) * model.prompt;
                let afford = ((balance - prompt_cost) / model.completion)
                    .floor()
                    .max(Decimal::ZERO);
                if Decimal::from(cap) > afford {
                    return Err(error_response(
                        402,
                        format!("This request requires more credits, or fewer max_tokens. You requested up to {cap} tokens, but can only afford {afford}. To increase, visit https://openrouter.ai/settings/credits and add more credits"),
                        Some(ErrorMeta::NoProvider { provider_name: Null }),
                        user,
                    ));
                }
            }
        }
    }

    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let mut rng = ChaCha8Rng::seed_from_u64(shared.cfg.seed);
    rng.set_stream(n);
    let created = now.timestamp();
    let id = format!("gen-{created}-{}", alnum(&mut rng, 20));
    let request_id = format!("req-{created}-{}", alnum(&mut rng, 20));
    let u: u128 = rng.gen();
    let h = format!("{u:032x}");
    let upstream_id = format!(
        "chatcmpl-{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );

    let chunk_gap = fault.drip.unwrap_or(shared.cfg.chunk_interval);
    let latency = shared.cfg.first_token_delay + fault.latency.unwrap_or_default();
    let gaps = completion.pieces.len().saturating_sub(1) as u32;
    let generation_time = latency + chunk_gap * gaps;
    let native_finish = native_finish(&model, completion.finish_reason);

    let draft = Draft {
        shared: shared.clone(),
        model: model.clone(),
        planned: completion.tokens,
        truth: GenerationTruth {
            id: id.clone(),
            key_hash: caller.hash.clone(),
            key_label,
            key_name,
            model: model.id.clone(),
            provider: model.provider.clone(),
            external_user: req.user.clone(),
            prompt_tokens: 0,
            completion_tokens: 0,
            reasoning_tokens: 0,
            cached_tokens: 0,
            cache_write_tokens: 0,
            cost: Decimal::ZERO,
            upstream_cost: Decimal::ZERO,
            is_byok: byok,
            streamed: req.stream,
            cancelled: false,
            finish_reason: None,
            created_at: now,
        },
        meta: GenMeta {
            api_type,
            request_id,
            upstream_id,
            native_finish_reason: Some(native_finish.to_string()),
            latency_ms: latency.as_millis() as u64,
            generation_time_ms: generation_time.as_millis() as u64,
            http_referer: header_str(headers, "http-referer"),
            user_agent: header_str(headers, "user-agent"),
            session_id: req
                .session_id
                .clone()
                .or_else(|| header_str(headers, "x-session-id")),
            model_permaslug: model.canonical_slug.clone(),
            ready_at: None,
        },
    };
    tracing::debug!(%id, model = %model.id, stream = req.stream, api_type, "generation");
    Ok(Admitted {
        draft,
        completion,
        full_cost,
        fault,
        id,
        model,
        created,
        latency,
        native_finish,
    })
}

pub(crate) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    let (caller, fault) = match authorize(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                400,
                format!("Invalid JSON in request body: {e}"),
                None,
                None,
            )
        }
    };
    if req.messages.is_none() && req.prompt.is_none() {
        return error_response(
            400,
            "Input required: specify \"prompt\" or \"messages\"",
            None,
            None,
        );
    }
    let a = match admit(
        &shared,
        &headers,
        caller,
        fault,
        &req,
        "completions",
        UsageOverride::default(),
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Admitted {
        draft,
        completion,
        full_cost,
        fault,
        id,
        model,
        created,
        latency,
        native_finish,
    } = a;
    let byok = draft.truth.is_byok;

    let ctx = Ctx {
        id: &id,
        model: &model,
        created,
        exp: shared.cfg.exponent_below,
        native_finish,
    };
    if req.stream {
        let steps = plan_stream(&ctx, &shared, &completion, &full_cost, &fault, &draft);
        let body = play(steps, draft);
        let mut r = Response::new(body);
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        if !fault.no_id {
            success_headers(h, &id, &model.provider);
        }
        r
    } else {
        tokio::time::sleep(latency).await;
        draft.record(
            completion.tokens,
            full_cost,
            Some(completion.finish_reason),
            false,
        );
        let text = completion.text();
        let body = ChatCompletion {
            id: &id,
            provider: &model.provider,
            model: &model.id,
            object: "chat.completion",
            created,
            choices: [CompletionChoice {
                index: 0,
                logprobs: Null,
                finish_reason: Some(completion.finish_reason),
                native_finish_reason: Some(native_finish),
                message: AssistantMessage {
                    role: "assistant",
                    content: &text,
                    refusal: Null,
                    reasoning: Null,
                },
            }],
            usage: without_cost_if(
                fault.no_cost,
                usage_json(&completion.tokens, &full_cost, byok, ctx.exp, false),
            ),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut r = if fault.malformed {
            let cut = bytes.len() / 2;
            let mut broken = bytes[..cut].to_vec();
            broken.extend_from_slice(b"<!-- upstream -->");
            Response::new(Body::from(broken))
        } else if fault.cut_after.is_some() {
            let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
            use futures::StreamExt as _;
            let s = futures::stream::once(async move { Ok::<_, std::io::Error>(half) }).chain(
                futures::stream::once(async {
                    tokio::time::sleep(CUT_GRACE).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "simulated cut",
                    ))
                }),
            );
            Response::new(Body::from_stream(s))
        } else {
            Response::new(Body::from(bytes))
        };
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if !fault.no_id {
            success_headers(r.headers_mut(), &id, &model.provider);
        }
        *r.status_mut() = StatusCode::OK;
        r
    }
}

pub(crate) fn success_headers(h: &mut HeaderMap, id: &str, provider: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-generation-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(provider) {
        h.insert("x-provider-name", v);
    }
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("X-Generation-Id, X-Provider-Name, cf-ray"),
    );
}

fn native_finish(model: &ModelSpec, finish: &str) -> &'static str {
    match (model.provider.as_str(), finish) {
        ("Anthropic", "stop") => "end_turn",
        ("Anthropic", _) => "max_tokens",
        ("Google AI Studio", "stop") => "STOP",
        ("Google AI Studio", _) => "MAX_TOKENS",
        (_, "length") => "length",
        _ => "stop",
    }
}

/// The `no_cost` fault: usage as a deployment that does not report `cost`.
pub(crate) fn without_cost_if(no_cost: bool, mut u: Usage) -> Usage {
    if no_cost {
        u.cost = None;
    }
    u
}

pub(crate) fn usage_json(
    t: &TokenCounts,
    c: &Cost,
    byok: bool,
    exp: Option<Decimal>,
    details_last: bool,
) -> Usage {
    Usage {
        prompt_tokens: t.prompt,
        completion_tokens: t.completion,
        cost: Some(Num(c.cost, exp)),
        is_byok: byok,
        cached_tokens: t.cached,
        cache_write_tokens: (t.cache_write > 0).then_some(t.cache_write),
        reasoning_tokens: t.reasoning,
        upstream_inference_cost: Num(c.upstream, exp),
        upstream_inference_prompt_cost: Num(c.upstream_prompt, exp),
        upstream_inference_completions_cost: Num(c.upstream_completion, exp),
        details_last,
    }
}

struct Ctx<'a> {
    id: &'a str,
    model: &'a ModelSpec,
    created: i64,
    exp: Option<Decimal>,
    native_finish: &'static str,
}

impl Ctx<'_> {
    fn chunk(
        &self,
        choices: Vec<ChunkChoice<'_>>,
        usage: Option<Usage>,
        error: Option<ChunkError<'_>>,
    ) -> Bytes {
        let c = Chunk {
            id: self.id,
            provider: &self.model.provider,
            model: &self.model.id,
            object: "chat.completion.chunk",
            created: self.created,
            error,
            choices,
            usage,
        };
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&c).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

/// One step of a stream's playback.
pub(crate) enum Step {
    Sleep(Duration),
    /// Bytes to send, and the content tokens delivered once they are sent.
    Emit(Bytes, u32),
    /// Record the generation now (before the trailing chunks).
    Record {
        tokens: TokenCounts,
        cost: Cost,
        finish: &'static str,
    },
    /// Abrupt disconnect: the body fails, no terminating chunk.
    Cut,
}

/// Pause between the last bytes and the simulated disconnect.
pub(crate) const CUT_GRACE: Duration = Duration::from_millis(10);

pub(crate) const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";

fn plan_stream(
    ctx: &Ctx<'_>,
    shared: &Shared,
    completion: &Completion,
    full_cost: &Cost,
    fault: &FaultSpec,
    draft: &Draft,
) -> Vec<Step> {
    let cfg = &shared.cfg;
    let ka = cfg.keepalive;
    let mut steps = Vec::with_capacity(completion.pieces.len() * 2 + 8);
    for _ in 0..ka.leading {
        steps.push(Step::Emit(Bytes::from_static(KEEPALIVE), 0));
        if !ka.interval.is_zero() {
            steps.push(Step::Sleep(ka.interval));
        }
    }
    let latency = cfg.first_token_delay;
    if !latency.is_zero() {
        steps.push(Step::Sleep(latency));
    }
    let gap = fault.drip.unwrap_or(cfg.chunk_interval);
    let n = completion.pieces.len() as u32;
    let cut_at = fault.cut_after.map(|c| c.min(n));
    let error_at = fault.mid_error.map(|_| fault.after.unwrap_or(1).min(n));
    let malformed_at = fault.malformed.then_some(n / 2);
    let mut sent = 0u32;
    let mut events = 0u32;
    for (i, (text, tokens)) in completion.pieces.iter().enumerate() {
        let i = i as u32;
        if i > 0 && !gap.is_zero() {
            steps.push(Step::Sleep(gap));
        }
        if cut_at == Some(i) {
            steps.push(Step::Record {
                tokens: completion.tokens,
                cost: *full_cost,
                finish: completion.finish_reason,
            });
            steps.push(Step::Cut);
            return steps;
        }
        if error_at == Some(i) {
            push_mid_error(ctx, draft, fault, sent, &mut steps);
            return steps;
        }
        if malformed_at == Some(i) {
            let good = ctx.chunk(vec![content_choice(text, None, None)], None, None);
            let mut broken = good[..good.len() / 2].to_vec();
            broken.extend_from_slice(b"\n\n");
            steps.push(Step::Emit(Bytes::from(broken), sent));
        }
        let last = i + 1 == n;
        let (finish, native) = if last {
            (Some(completion.finish_reason), Some(ctx.native_finish))
        } else {
            (None, None)
        };
        sent += tokens;
        steps.push(Step::Emit(
            ctx.chunk(vec![content_choice(text, finish, native)], None, None),
            sent,
        ));
        events += 1;
        if ka.every_events > 0 && events.is_multiple_of(ka.every_events) && !last {
            steps.push(Step::Emit(Bytes::from_static(KEEPALIVE), sent));
        }
    }
    if cut_at == Some(n) {
        steps.push(Step::Record {
            tokens: completion.tokens,
            cost: *full_cost,
            finish: completion.finish_reason,
        });
        steps.push(Step::Cut);
        return steps;
    }
    if error_at == Some(n) {
        push_mid_error(ctx, draft, fault, sent, &mut steps);
        return steps;
    }
    steps.push(Step::Record {
        tokens: completion.tokens,
        cost: *full_cost,
        finish: completion.finish_reason,
    });
    let usage = without_cost_if(
        fault.no_cost,
        usage_json(
            &completion.tokens,
            full_cost,
            draft.truth.is_byok,
            ctx.exp,
            true,
        ),
    );
    let choices = match cfg.usage_chunk {
        UsageChunkShape::Captured => vec![content_choice("", None, None)],
        UsageChunkShape::EmptyChoices => Vec::new(),
    };
    steps.push(Step::Emit(ctx.chunk(choices, Some(usage), None), sent));
    steps.push(Step::Emit(Bytes::from_static(b"data: [DONE]\n\n"), sent));
    steps
}

fn content_choice<'a>(
    text: &'a str,
    finish: Option<&'a str>,
    native: Option<&'a str>,
) -> ChunkChoice<'a> {
    ChunkChoice {
        index: 0,
        delta: Delta {
            role: Some("assistant"),
            content: text,
        },
        finish_reason: finish,
        native_finish_reason: native,
        logprobs: Some(Null),
    }
}

fn push_mid_error(
    ctx: &Ctx<'_>,
    draft: &Draft,
    fault: &FaultSpec,
    sent: u32,
    steps: &mut Vec<Step>,
) {
    let code = fault.mid_error.unwrap_or(502);
    let (tokens, cost) = draft.partial(sent);
    steps.push(Step::Record {
        tokens,
        cost,
        finish: "error",
    });
    let (error_type, default_msg) = match code {
        429 => ("rate_limit_exceeded", "Rate limit exceeded"),
        502 => ("provider_unavailable", "Provider disconnected unexpectedly"),
        503 => ("provider_overloaded", "Provider overloaded"),
        504 | 524 => ("timeout", "Provider timed out"),
        500 => ("server", "Internal Server Error"),
        _ => ("unmapped", "Provider returned error"),
    };
    let message = fault
        .message
        .clone()
        .unwrap_or_else(|| default_msg.to_string());
    let error = ChunkError {
        code: if fault.string_code {
            ErrorCode::Str("server_error")
        } else {
            ErrorCode::Int(code)
        },
        message: &message,
        metadata: ErrorTypeMeta { error_type },
    };
    let choice = ChunkChoice {
        index: 0,
        delta: Delta {
            role: None,
            content: "",
        },
        finish_reason: Some("error"),
        native_finish_reason: None,
        logprobs: None,
    };
    let usage = fault
        .with_usage
        .then(|| usage_json(&tokens, &cost, draft.truth.is_byok, ctx.exp, true));
    steps.push(Step::Emit(
        ctx.chunk(vec![choice], usage, Some(error)),
        sent,
    ));
    if fault.with_usage {
        steps.push(Step::Emit(Bytes::from_static(b"data: [DONE]\n\n"), sent));
    }
}

/// Records a cancelled generation if the body is dropped before it recorded one
/// (the client went away mid-stream).
struct Guard {
    draft: Draft,
    sent: u32,
    done: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            let (tokens, cost) = if self.draft.shared.cfg.cancel_bills_full {
                let t = self.draft.planned;
                let c = compute_cost(
                    &self.draft.model,
                    &t,
                    self.draft.truth.is_byok,
                    self.draft.shared.cfg.byok_fee_rate,
                );
                (t, c)
            } else {
                self.draft.partial(self.sent)
            };
            self.draft.record(tokens, cost, None, true);
        }
    }
}

pub(crate) fn play(steps: Vec<Step>, draft: Draft) -> Body {
    let guard = Guard {
        draft,
        sent: 0,
        done: false,
    };
    let stream = futures::stream::unfold(
        (steps.into_iter(), guard),
        |(mut it, mut guard)| async move {
            loop {
                match it.next()? {
                    Step::Sleep(d) => tokio::time::sleep(d).await,
                    Step::Emit(b, sent) => {
                        guard.sent = sent;
                        return Some((Ok(b), (it, guard)));
                    }
                    Step::Record {
                        tokens,
                        cost,
                        finish,
                    } => {
                        guard.draft.record(tokens, cost, Some(finish), false);
                        guard.done = true;
                    }
                    Step::Cut => {
                        // Let what was sent reach the wire first: a cut after data, not a
                        // refused response.
                        tokio::time::sleep(CUT_GRACE).await;
                        let e = std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "simulated cut",
                        );
                        return Some((Err(e), (it, guard)));
                    }
                }
            }
        },
    );
    Body::from_stream(stream)
}
