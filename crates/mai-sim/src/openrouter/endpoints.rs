//! The other endpoints that spend money (spec 1, first note): `POST /completions`
//! (legacy OpenAI text completions), `/responses` (OpenAI Responses), `/messages`
//! (Anthropic Messages) and `/embeddings`, each in its public shape, with
//! `X-Generation-Id` and a ledger entry per generation (so `/generation`, `/key` and
//! `/activity` include them).
//!
//! They share the chat endpoint's admission ([`chat::admit`]: auth, faults, model,
//! credits and key limits, ids) and its stream playback ([`chat::play`]: timing,
//! client-abort = cancelled generation). Supported faults: `status`, `latency`,
//! `cut_after` (streams), `drip`, `no_cost`, `no_id`. Where OpenRouter's variant of a
//! shape is [unconfirmed] (its `cost` in Responses, Messages and embeddings usage, the
//! `gen-` id as the Responses / Messages `id`), the simulator follows the chat endpoint.

// Admission returns a ready error response on the cold path; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chat::{self, success_headers, usage_json, without_cost_if, Admitted, Step, KEEPALIVE};
use super::content::{ChatRequest, Message, UsageOverride};
use super::pricing::Num;
use super::server::{error_response, Resp, Shared};
use super::wire::{Null, Usage};

// ---- requests ------------------------------------------------------------------------

#[derive(Deserialize)]
struct CompletionsRequest {
    model: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    prompt: Option<serde_json::Value>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<u32>,
    user: Option<String>,
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct ResponsesRequest {
    model: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    input: Option<serde_json::Value>,
    instructions: Option<String>,
    #[serde(default)]
    stream: bool,
    max_output_tokens: Option<u32>,
    user: Option<String>,
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct MessagesRequest {
    model: Option<String>,
    messages: Option<Vec<Message>>,
    system: Option<serde_json::Value>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<u32>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    model: Option<String>,
    input: Option<serde_json::Value>,
    user: Option<String>,
}

/// Text of a `prompt` / `input` that may be a string or an array of strings (or
/// tokens, counted by their JSON text).
fn flat_text(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

fn bad_json(e: serde_json::Error) -> Resp {
    error_response(
        400,
        format!("Invalid JSON in request body: {e}"),
        None,
        None,
    )
}

fn input_required(what: &str) -> Resp {
    error_response(
        400,
        format!("Input required: specify \"{what}\""),
        None,
        None,
    )
}

// ---- shared plumbing -----------------------------------------------------------------

fn sse_event(name: Option<&str>, value: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(256);
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&serde_json::to_vec(value).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Keep-alives, first-token delay, `head`, one event per content piece (with the chat
/// endpoint's gaps and `cut_after`), the record, then `tail`.
fn plan_events(
    shared: &Shared,
    a: &Admitted,
    head: Vec<Bytes>,
    pieces: Vec<(Bytes, u32)>,
    tail: Vec<Bytes>,
) -> Vec<Step> {
    let cfg = &shared.cfg;
    let mut steps = Vec::with_capacity(pieces.len() * 2 + head.len() + tail.len() + 8);
    for _ in 0..cfg.keepalive.leading {
        steps.push(Step::Emit(Bytes::from_static(KEEPALIVE), 0));
        if !cfg.keepalive.interval.is_zero() {
            steps.push(Step::Sleep(cfg.keepalive.interval));
        }
    }
    if !cfg.first_token_delay.is_zero() {
        steps.push(Step::Sleep(cfg.first_token_delay));
    }
    for h in head {
        steps.push(Step::Emit(h, 0));
    }
    let gap = a.fault.drip.unwrap_or(cfg.chunk_interval);
    let n = pieces.len() as u32;
    let cut_at = a.fault.cut_after.map(|c| c.min(n));
    let record = Step::Record {
        tokens: a.completion.tokens,
        cost: a.full_cost,
        finish: a.completion.finish_reason,
    };
    let mut sent = 0u32;
    for (i, (bytes, tokens)) in pieces.into_iter().enumerate() {
        let i = i as u32;
        if i > 0 && !gap.is_zero() {
            steps.push(Step::Sleep(gap));
        }
        if cut_at == Some(i) {
            steps.push(record);
            steps.push(Step::Cut);
            return steps;
        }
        sent += tokens;
        steps.push(Step::Emit(bytes, sent));
    }
    steps.push(record);
    if cut_at == Some(n) {
        steps.push(Step::Cut);
        return steps;
    }
    for t in tail {
        steps.push(Step::Emit(t, sent));
    }
    steps
}

fn reply(a: &Admitted, body: Body, content_type: &'static str) -> Resp {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if content_type == "text/event-stream" {
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
    }
    if !a.fault.no_id {
        success_headers(h, &a.id, &a.model.provider);
    }
    *r.status_mut() = StatusCode::OK;
    r
}

/// A non-streamed reply: waits the latency, records, then sends `bytes` (half of them
/// and a disconnect with `cut_after`).
async fn plain(a: Admitted, bytes: Vec<u8>) -> Resp {
    tokio::time::sleep(a.latency).await;
    a.draft.record(
        a.completion.tokens,
        a.full_cost,
        Some(a.completion.finish_reason),
        false,
    );
    let body = if a.fault.cut_after.is_some() {
        let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
        use futures::StreamExt as _;
        let s = futures::stream::once(async move { Ok::<_, std::io::Error>(half) }).chain(
            futures::stream::once(async {
                tokio::time::sleep(chat::CUT_GRACE).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated cut",
                ))
            }),
        );
        Body::from_stream(s)
    } else {
        Body::from(bytes)
    };
    reply(&a, body, "application/json")
}

async fn accept(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    caller_fault: (super::server::Caller, super::faults::FaultSpec),
    req: &ChatRequest,
    api_type: &'static str,
    fixed: UsageOverride,
) -> Result<Admitted, Resp> {
    let (caller, fault) = caller_fault;
    chat::admit(shared, headers, caller, fault, req, api_type, fixed).await
}

fn cost_of(a: &Admitted, exp: Option<rust_decimal::Decimal>) -> Option<Num> {
    (!a.fault.no_cost).then_some(Num(a.full_cost.cost, exp))
}

// ---- /completions --------------------------------------------------------------------

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    provider: &'a str,
    model: &'a str,
    object: &'static str,
    created: i64,
    choices: [TextChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    index: u32,
    text: &'a str,
    finish_reason: Option<&'a str>,
    native_finish_reason: Option<&'a str>,
    logprobs: Null,
}

pub(crate) async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    let cf = match chat::authorize(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r: CompletionsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_json(e),
    };
    let Some(prompt) = r.prompt.as_ref().map(flat_text) else {
        return input_required("prompt");
    };
    let req = ChatRequest {
        model: r.model,
        models: r.models,
        prompt: Some(prompt.join("\n")),
        stream: r.stream,
        max_tokens: r.max_tokens,
        user: r.user,
        session_id: r.session_id,
        ..Default::default()
    };
    let a = match accept(
        &shared,
        &headers,
        cf,
        &req,
        "completions",
        UsageOverride::default(),
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let exp = shared.cfg.exponent_below;
    let byok = a.draft.truth.is_byok;
    let chunk = |text, finish, usage| text_chunk(&a, text, finish, usage);
    let usage = |details_last| {
        without_cost_if(
            a.fault.no_cost,
            usage_json(&a.completion.tokens, &a.full_cost, byok, exp, details_last),
        )
    };
    if req.stream {
        let n = a.completion.pieces.len();
        let pieces = a
            .completion
            .pieces
            .iter()
            .enumerate()
            .map(|(i, (text, tokens))| {
                let finish = (i + 1 == n).then_some(a.completion.finish_reason);
                (sse_event(None, &chunk(text, finish, None)), *tokens)
            })
            .collect();
        let tail = vec![
            sse_event(None, &chunk("", None, Some(usage(true)))),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ];
        let steps = plan_events(&shared, &a, Vec::new(), pieces, tail);
        let resp_a = (a.id.clone(), a.model.clone(), a.fault.no_id);
        return stream_reply(resp_a, chat::play(steps, a.draft));
    }
    let text = a.completion.text();
    let bytes = serde_json::to_vec(&chunk(
        &text,
        Some(a.completion.finish_reason),
        Some(usage(false)),
    ))
    .unwrap_or_default();
    plain(a, bytes).await
}

fn text_chunk<'a>(
    a: &'a Admitted,
    text: &'a str,
    finish: Option<&'static str>,
    usage: Option<Usage>,
) -> TextCompletion<'a> {
    TextCompletion {
        id: &a.id,
        provider: &a.model.provider,
        model: &a.model.id,
        object: "text_completion",
        created: a.created,
        choices: [TextChoice {
            index: 0,
            text,
            finish_reason: finish,
            native_finish_reason: finish.map(|_| a.native_finish),
            logprobs: Null,
        }],
        usage,
    }
}

fn stream_reply(
    (id, model, no_id): (String, Arc<super::config::ModelSpec>, bool),
    body: Body,
) -> Resp {
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
    if !no_id {
        success_headers(h, &id, &model.provider);
    }
    r
}

// ---- /responses ----------------------------------------------------------------------

#[derive(Serialize)]
struct ResponseObject<'a> {
    id: &'a str,
    object: &'static str,
    created_at: i64,
    status: &'static str,
    error: Null,
    incomplete_details: Option<IncompleteDetails>,
    instructions: Null,
    max_output_tokens: Option<u32>,
    model: &'a str,
    provider: &'a str,
    output: Vec<OutputMessage<'a>>,
    parallel_tool_calls: bool,
    previous_response_id: Null,
    store: bool,
    temperature: Null,
    tool_choice: &'static str,
    tools: [Null; 0],
    top_p: Null,
    truncation: &'static str,
    usage: Option<ResponsesUsage>,
    user: Option<&'a str>,
    metadata: Empty,
}

#[derive(Serialize)]
struct IncompleteDetails {
    reason: &'static str,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct OutputMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    status: &'static str,
    role: &'static str,
    content: Vec<OutputText<'a>>,
}

#[derive(Serialize)]
struct OutputText<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    annotations: [Null; 0],
}

#[derive(Serialize)]
struct ResponsesUsage {
    input_tokens: u32,
    input_tokens_details: CachedDetails,
    output_tokens: u32,
    output_tokens_details: ReasoningDetails,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<Num>,
    is_byok: bool,
}

#[derive(Serialize)]
struct CachedDetails {
    cached_tokens: u32,
}

#[derive(Serialize)]
struct ReasoningDetails {
    reasoning_tokens: u32,
}

/// One Responses stream event: `type` and `sequence_number`, then the event's fields.
#[derive(Serialize)]
struct ResponsesEvent<T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u32,
    #[serde(flatten)]
    fields: T,
}

#[derive(Serialize)]
struct WithResponse<'a> {
    response: &'a ResponseObject<'a>,
}

#[derive(Serialize)]
struct WithItem<'a> {
    output_index: u32,
    item: &'a OutputMessage<'a>,
}

#[derive(Serialize)]
struct WithPart<'a> {
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    part: OutputText<'a>,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    delta: &'a str,
    logprobs: [Null; 0],
}

#[derive(Serialize)]
struct TextDone<'a> {
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    text: &'a str,
    logprobs: [Null; 0],
}

fn message_id(prefix: &str, gen_id: &str) -> String {
    let h = Sha256::digest(gen_id.as_bytes());
    let hex: String = h.iter().take(24).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

pub(crate) async fn responses(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    let cf = match chat::authorize(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r: ResponsesRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_json(e),
    };
    let Some(input) = r.input else {
        return input_required("input");
    };
    let mut messages = Vec::new();
    if let Some(i) = r.instructions {
        messages.push(Message {
            role: Some("system".into()),
            content: Some(serde_json::Value::String(i)),
        });
    }
    match input {
        serde_json::Value::Array(items) => {
            for item in items {
                messages.push(serde_json::from_value(item).unwrap_or_default());
            }
        }
        other => messages.push(Message {
            role: Some("user".into()),
            content: Some(serde_json::Value::String(flat_text(&other).join("\n"))),
        }),
    }
    let req = ChatRequest {
        model: r.model,
        models: r.models,
        messages: Some(messages),
        stream: r.stream,
        max_tokens: r.max_output_tokens,
        user: r.user,
        session_id: r.session_id,
        ..Default::default()
    };
    let a = match accept(
        &shared,
        &headers,
        cf,
        &req,
        "completions",
        UsageOverride::default(),
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let exp = shared.cfg.exponent_below;
    let t = a.completion.tokens;
    let usage = ResponsesUsage {
        input_tokens: t.prompt,
        input_tokens_details: CachedDetails {
            cached_tokens: t.cached,
        },
        output_tokens: t.completion,
        output_tokens_details: ReasoningDetails {
            reasoning_tokens: t.reasoning,
        },
        total_tokens: u64::from(t.prompt) + u64::from(t.completion),
        cost: cost_of(&a, exp),
        is_byok: a.draft.truth.is_byok,
    };
    let msg_id = message_id("msg_", &a.id);
    let text = a.completion.text();
    let length = a.completion.finish_reason == "length";
    let done_msg = OutputMessage {
        kind: "message",
        id: &msg_id,
        status: if length { "incomplete" } else { "completed" },
        role: "assistant",
        content: vec![OutputText {
            kind: "output_text",
            text: &text,
            annotations: [],
        }],
    };
    let response = |status, output, usage| response_object(&a, &req, status, output, usage);
    let final_status = if length { "incomplete" } else { "completed" };
    if !req.stream {
        let bytes = serde_json::to_vec(&response(final_status, vec![done_msg], Some(usage)))
            .unwrap_or_default();
        return plain(a, bytes).await;
    }
    let mut seq = 0u32;
    let mut ev = |name: &'static str, fields: &dyn erased::Fields| {
        let b = fields.event(name, seq);
        seq += 1;
        b
    };
    let started = response("in_progress", Vec::new(), None);
    let empty_msg = OutputMessage {
        kind: "message",
        id: &msg_id,
        status: "in_progress",
        role: "assistant",
        content: Vec::new(),
    };
    let empty_part = || OutputText {
        kind: "output_text",
        text: "",
        annotations: [],
    };
    let head = vec![
        ev("response.created", &WithResponse { response: &started }),
        ev("response.in_progress", &WithResponse { response: &started }),
        ev(
            "response.output_item.added",
            &WithItem {
                output_index: 0,
                item: &empty_msg,
            },
        ),
        ev(
            "response.content_part.added",
            &WithPart {
                item_id: &msg_id,
                output_index: 0,
                content_index: 0,
                part: empty_part(),
            },
        ),
    ];
    let pieces = a
        .completion
        .pieces
        .iter()
        .map(|(piece, tokens)| {
            (
                ev(
                    "response.output_text.delta",
                    &TextDelta {
                        item_id: &msg_id,
                        output_index: 0,
                        content_index: 0,
                        delta: piece,
                        logprobs: [],
                    },
                ),
                *tokens,
            )
        })
        .collect();
    let finished = response(final_status, vec![done_msg], Some(usage));
    let tail = vec![
        ev(
            "response.output_text.done",
            &TextDone {
                item_id: &msg_id,
                output_index: 0,
                content_index: 0,
                text: &text,
                logprobs: [],
            },
        ),
        ev(
            "response.content_part.done",
            &WithPart {
                item_id: &msg_id,
                output_index: 0,
                content_index: 0,
                part: OutputText {
                    kind: "output_text",
                    text: &text,
                    annotations: [],
                },
            },
        ),
        ev(
            "response.output_item.done",
            &WithItem {
                output_index: 0,
                item: &finished.output[0],
            },
        ),
        ev(
            if length {
                "response.incomplete"
            } else {
                "response.completed"
            },
            &WithResponse {
                response: &finished,
            },
        ),
    ];
    let steps = plan_events(&shared, &a, head, pieces, tail);
    let resp_a = (a.id.clone(), a.model.clone(), a.fault.no_id);
    stream_reply(resp_a, chat::play(steps, a.draft))
}

fn response_object<'a>(
    a: &'a Admitted,
    req: &'a ChatRequest,
    status: &'static str,
    output: Vec<OutputMessage<'a>>,
    usage: Option<ResponsesUsage>,
) -> ResponseObject<'a> {
    ResponseObject {
        id: &a.id,
        object: "response",
        created_at: a.created,
        status,
        error: Null,
        incomplete_details: (status == "incomplete").then_some(IncompleteDetails {
            reason: "max_output_tokens",
        }),
        instructions: Null,
        max_output_tokens: req.max_tokens,
        model: &a.model.id,
        provider: &a.model.provider,
        output,
        parallel_tool_calls: true,
        previous_response_id: Null,
        store: false,
        temperature: Null,
        tool_choice: "auto",
        tools: [],
        top_p: Null,
        truncation: "disabled",
        usage,
        user: req.user.as_deref(),
        metadata: Empty {},
    }
}

/// Serializing events of different field types through one closure.
mod erased {
    use super::*;

    pub(super) trait Fields {
        fn event(&self, name: &'static str, seq: u32) -> Bytes;
    }

    impl<T: Serialize> Fields for T {
        fn event(&self, name: &'static str, seq: u32) -> Bytes {
            sse_event(
                Some(name),
                &ResponsesEvent {
                    kind: name,
                    sequence_number: seq,
                    fields: self,
                },
            )
        }
    }
}

// ---- /messages -----------------------------------------------------------------------

#[derive(Serialize)]
struct MessageObject<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    provider: &'a str,
    content: Vec<TextBlock<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Null,
    usage: MessagesUsage,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct MessagesUsage {
    input_tokens: u32,
    cache_creation_input_tokens: u32,
    cache_read_input_tokens: u32,
    output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<Num>,
}

#[derive(Serialize)]
struct Typed<T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    fields: T,
}

#[derive(Serialize)]
struct WithMessage<'a> {
    message: &'a MessageObject<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    index: u32,
    content_block: TextBlock<'a>,
}

#[derive(Serialize)]
struct BlockDelta<'a> {
    index: u32,
    delta: TextDeltaBlock<'a>,
}

#[derive(Serialize)]
struct TextDeltaBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct Index {
    index: u32,
}

#[derive(Serialize)]
struct MessageDelta {
    delta: StopDelta,
    usage: MessagesUsage,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Null,
}

fn typed(name: &'static str, fields: impl Serialize) -> Bytes {
    sse_event(Some(name), &Typed { kind: name, fields })
}

pub(crate) async fn messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    let cf = match chat::authorize(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r: MessagesRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_json(e),
    };
    let Some(mut messages) = r.messages else {
        return input_required("messages");
    };
    if let Some(system) = r.system {
        messages.insert(
            0,
            Message {
                role: Some("system".into()),
                content: Some(system),
            },
        );
    }
    let req = ChatRequest {
        model: r.model,
        messages: Some(messages),
        stream: r.stream,
        max_tokens: r.max_tokens,
        user: r.user,
        ..Default::default()
    };
    let a = match accept(
        &shared,
        &headers,
        cf,
        &req,
        "completions",
        UsageOverride::default(),
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let exp = shared.cfg.exponent_below;
    let t = a.completion.tokens;
    // Anthropic's input count leaves out cache reads and writes.
    let usage = |output_tokens, cost| MessagesUsage {
        input_tokens: t.prompt.saturating_sub(t.cached + t.cache_write),
        cache_creation_input_tokens: t.cache_write,
        cache_read_input_tokens: t.cached,
        output_tokens,
        cost,
    };
    let stop = if a.completion.finish_reason == "length" {
        "max_tokens"
    } else {
        "end_turn"
    };
    let text = a.completion.text();
    let message = |content, stop_reason, usage| MessageObject {
        id: &a.id,
        kind: "message",
        role: "assistant",
        model: &a.model.id,
        provider: &a.model.provider,
        content,
        stop_reason,
        stop_sequence: Null,
        usage,
    };
    if !req.stream {
        let body = message(
            vec![TextBlock {
                kind: "text",
                text: &text,
            }],
            Some(stop),
            usage(t.completion, cost_of(&a, exp)),
        );
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        return plain(a, bytes).await;
    }
    let start = message(Vec::new(), None, usage(1.min(t.completion), None));
    let head = vec![
        typed("message_start", WithMessage { message: &start }),
        typed(
            "content_block_start",
            BlockStart {
                index: 0,
                content_block: TextBlock {
                    kind: "text",
                    text: "",
                },
            },
        ),
        typed("ping", Empty {}),
    ];
    let pieces = a
        .completion
        .pieces
        .iter()
        .map(|(piece, tokens)| {
            (
                typed(
                    "content_block_delta",
                    BlockDelta {
                        index: 0,
                        delta: TextDeltaBlock {
                            kind: "text_delta",
                            text: piece,
                        },
                    },
                ),
                *tokens,
            )
        })
        .collect();
    let tail = vec![
        typed("content_block_stop", Index { index: 0 }),
        typed(
            "message_delta",
            MessageDelta {
                delta: StopDelta {
                    stop_reason: stop,
                    stop_sequence: Null,
                },
                usage: usage(t.completion, cost_of(&a, exp)),
            },
        ),
        typed("message_stop", Empty {}),
    ];
    let steps = plan_events(&shared, &a, head, pieces, tail);
    let resp_a = (a.id.clone(), a.model.clone(), a.fault.no_id);
    stream_reply(resp_a, chat::play(steps, a.draft))
}

// ---- /embeddings ---------------------------------------------------------------------

#[derive(Serialize)]
struct EmbeddingList<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    provider: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    embedding: Vec<f32>,
    index: usize,
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u32,
    total_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<Num>,
}

/// Dimensions of the simulated vectors: enough to look like one, small on the wire.
const DIMENSIONS: usize = 8;

fn vector(text: &str) -> Vec<f32> {
    let h = Sha256::digest(text.as_bytes());
    h.iter()
        .take(DIMENSIONS)
        .map(|b| (f32::from(*b) - 127.5) / 127.5)
        .collect()
}

pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    let cf = match chat::authorize(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r: EmbeddingsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_json(e),
    };
    let Some(inputs) = r.input.as_ref().map(flat_text) else {
        return input_required("input");
    };
    let req = ChatRequest {
        model: r.model,
        prompt: Some(inputs.join("\n")),
        user: r.user,
        ..Default::default()
    };
    // An embedding has input tokens only.
    let fixed = UsageOverride {
        completion: Some(0),
        reasoning: Some(0),
        cached: Some(0),
        cache_write: Some(0),
        ..Default::default()
    };
    let a = match accept(&shared, &headers, cf, &req, "embeddings", fixed).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let exp = shared.cfg.exponent_below;
    let body = EmbeddingList {
        id: (!a.fault.no_id).then_some(a.id.as_str()),
        object: "list",
        data: inputs
            .iter()
            .enumerate()
            .map(|(index, t)| Embedding {
                object: "embedding",
                embedding: vector(t),
                index,
            })
            .collect(),
        model: &a.model.id,
        provider: &a.model.provider,
        usage: EmbeddingUsage {
            prompt_tokens: a.completion.tokens.prompt,
            total_tokens: a.completion.tokens.prompt,
            cost: cost_of(&a, exp),
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    plain(a, bytes).await
}
