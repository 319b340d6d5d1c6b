//! Accounting fields of the other endpoints that spend money (spec 1, first note):
//! `/completions`, `/embeddings` (OpenAI shapes, read by [`parse_chat_json`]),
//! `/responses` (OpenAI Responses shape) and `/messages` (Anthropic Messages shape).
//!
//! Every shape is read into the same [`ChatMeta`] / [`ChatUsage`] the chat path uses, so
//! the proxy meters them all with one code path. Token counts are mapped onto the chat
//! meaning (prompt tokens *include* cached ones, completion tokens *include* reasoning
//! ones); money is read from the JSON text, never through `f64`. `cost` in these shapes
//! is an OpenRouter addition [unconfirmed for `/responses`, `/messages`, `/embeddings`]:
//! when it is missing the caller records the generation as provisional and lets
//! reconciliation fetch the cost from `/generation`.

use super::chat::{parse_chat_json, ChatError, ChatMeta, ChatUsage};
use super::number;
use rust_decimal::Decimal;
use serde::Deserialize;

/// Where usage lives and how a stream carries it, per API family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum UsageShape {
    /// Chat completions, legacy completions, embeddings: top-level `usage` with
    /// `prompt_tokens` / `completion_tokens`; streams are bare `data:` chunks, the usage
    /// chunk last, then `[DONE]`.
    #[default]
    OpenAi,
    /// OpenAI Responses: `usage.input_tokens` / `output_tokens`; streams are typed
    /// events whose `response.completed` (or `.failed` / `.incomplete`) carries the
    /// final `response.usage`.
    Responses,
    /// Anthropic Messages: `usage.input_tokens` (without cache reads and writes) and
    /// `output_tokens`; streams start with `message_start` (usage so far inside
    /// `message`) and `message_delta` carries cumulative `usage.output_tokens`.
    Messages,
}

/// What one `data:` payload of a stream says for accounting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamEvent {
    pub meta: ChatMeta,
    /// The usage counts are running totals to merge with earlier ones
    /// ([`ChatUsage::merge_cumulative`]), not the final figures (Messages streams).
    pub cumulative: bool,
    /// The event ends the generation (`response.completed`, `message_stop`, ...).
    pub ends_stream: bool,
}

impl UsageShape {
    /// Parses a complete non-streamed reply body.
    pub fn parse_body(self, text: &str) -> Result<ChatMeta, serde_json::Error> {
        match self {
            UsageShape::OpenAi => parse_chat_json(text),
            UsageShape::Responses => parse_responses_json(text).map(|e| e.meta),
            UsageShape::Messages => parse_messages_json(text).map(|e| e.meta),
        }
    }

    /// Parses the JSON of one `data:` payload of a stream.
    pub fn parse_event(self, text: &str) -> Result<StreamEvent, serde_json::Error> {
        match self {
            UsageShape::OpenAi => parse_chat_json(text).map(|meta| StreamEvent {
                meta,
                cumulative: false,
                ends_stream: false,
            }),
            UsageShape::Responses => parse_responses_json(text),
            UsageShape::Messages => parse_messages_json(text),
        }
    }

    /// Whether an SSE `event:` name ends the generation (the data of such events may
    /// not be parsed at all when it holds nothing new).
    pub fn is_terminal_event_name(self, name: &[u8]) -> bool {
        match self {
            UsageShape::OpenAi => false,
            UsageShape::Responses => matches!(
                name,
                b"response.completed" | b"response.failed" | b"response.incomplete"
            ),
            UsageShape::Messages => name == b"message_stop",
        }
    }
}

impl ChatUsage {
    /// Folds a later running total into this one: counts only grow (each is the larger
    /// of the two), a later `cost` wins. Anthropic's `message_delta` repeats the output
    /// count so far and may omit the input counts, so taking the larger keeps both.
    pub fn merge_cumulative(&mut self, later: &ChatUsage) {
        self.prompt_tokens = self.prompt_tokens.max(later.prompt_tokens);
        self.completion_tokens = self.completion_tokens.max(later.completion_tokens);
        self.cached_tokens = self.cached_tokens.max(later.cached_tokens);
        self.reasoning_tokens = self.reasoning_tokens.max(later.reasoning_tokens);
        self.total_tokens = self.prompt_tokens.saturating_add(self.completion_tokens);
        if later.cost.is_some() {
            self.cost = later.cost;
        }
        if later.upstream_inference_cost.is_some() {
            self.upstream_inference_cost = later.upstream_inference_cost;
        }
        self.is_byok |= later.is_byok;
    }
}

// ---- OpenAI Responses ----------------------------------------------------------------

/// A Responses body or stream event. Not `#[serde(flatten)]`: that buffers the whole
/// body and breaks the exact number reading (`RawValue` needs the real deserializer).
#[derive(Deserialize)]
struct RawResponsesEnvelope {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// Stream events wrap the response object.
    #[serde(default)]
    response: Option<RawResponse>,
    // A non-streamed body is the response object itself.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    usage: Option<RawResponsesUsage>,
    #[serde(default)]
    error: Option<RawError>,
    /// The `error` stream event carries `code` and `message` at the top level.
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    usage: Option<RawResponsesUsage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawResponsesUsage {
    #[serde(default, deserialize_with = "number::count")]
    input_tokens: u64,
    #[serde(default, deserialize_with = "number::count")]
    output_tokens: u64,
    #[serde(default, deserialize_with = "number::count_opt")]
    total_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<RawInputDetails>,
    #[serde(default)]
    output_tokens_details: Option<RawOutputDetails>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    cost: Option<Decimal>,
    #[serde(default)]
    is_byok: Option<bool>,
    #[serde(default)]
    cost_details: Option<RawCostDetails>,
}

#[derive(Deserialize)]
struct RawInputDetails {
    #[serde(default, deserialize_with = "number::count")]
    cached_tokens: u64,
}

#[derive(Deserialize)]
struct RawOutputDetails {
    #[serde(default, deserialize_with = "number::count")]
    reasoning_tokens: u64,
}

#[derive(Deserialize)]
struct RawCostDetails {
    #[serde(default, deserialize_with = "number::decimal_opt")]
    upstream_inference_cost: Option<Decimal>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    /// Anthropic names the kind of error `type` (`overloaded_error`).
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

fn code_text(c: Option<serde_json::Value>) -> Option<String> {
    c.and_then(|c| match c {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    })
}

impl RawError {
    fn into_error(self) -> ChatError {
        ChatError {
            code: code_text(self.code).or(self.kind),
            message: self.message,
        }
    }
}

/// Parses a non-streamed Responses body or the JSON of one Responses stream event.
pub fn parse_responses_json(text: &str) -> Result<StreamEvent, serde_json::Error> {
    let raw: RawResponsesEnvelope = serde_json::from_str(text)?;
    let kind = raw.kind.as_deref().unwrap_or("");
    let ends_stream = matches!(
        kind,
        "response.completed" | "response.failed" | "response.incomplete"
    );
    let r = raw.response.unwrap_or(RawResponse {
        id: raw.id,
        model: raw.model,
        provider: raw.provider,
        usage: raw.usage,
        error: raw.error,
    });
    let mut error = r.error.map(RawError::into_error);
    if error.is_none() && kind == "error" {
        error = Some(ChatError {
            code: code_text(raw.code),
            message: code_text(raw.message),
        });
    }
    let usage = r.usage.map(|u| {
        let cached = u.input_tokens_details.map_or(0, |d| d.cached_tokens);
        let reasoning = u.output_tokens_details.map_or(0, |d| d.reasoning_tokens);
        ChatUsage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u
                .total_tokens
                .unwrap_or(u.input_tokens.saturating_add(u.output_tokens)),
            cached_tokens: cached,
            reasoning_tokens: reasoning,
            cost: u.cost,
            is_byok: u.is_byok.unwrap_or(false),
            upstream_inference_cost: u.cost_details.and_then(|c| c.upstream_inference_cost),
        }
    });
    Ok(StreamEvent {
        meta: ChatMeta {
            id: r.id,
            model: r.model,
            provider: r.provider,
            usage,
            error,
        },
        cumulative: false,
        ends_stream,
    })
}

// ---- Anthropic Messages --------------------------------------------------------------

/// A Messages body or stream event (no `flatten`, as for Responses).
#[derive(Deserialize)]
struct RawMessagesEnvelope {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// `message_start` wraps the message object.
    #[serde(default)]
    message: Option<RawMessage>,
    /// A non-streamed body is the message object; `message_delta` has `usage` here.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    usage: Option<RawMessagesUsage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    usage: Option<RawMessagesUsage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawMessagesUsage {
    /// Anthropic's input count excludes cache reads and cache writes.
    #[serde(default, deserialize_with = "number::count")]
    input_tokens: u64,
    #[serde(default, deserialize_with = "number::count")]
    output_tokens: u64,
    #[serde(default, deserialize_with = "number::count")]
    cache_read_input_tokens: u64,
    #[serde(default, deserialize_with = "number::count")]
    cache_creation_input_tokens: u64,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    cost: Option<Decimal>,
    #[serde(default)]
    is_byok: Option<bool>,
    #[serde(default)]
    cost_details: Option<RawCostDetails>,
}

/// Parses a non-streamed Messages body or the JSON of one Messages stream event.
pub fn parse_messages_json(text: &str) -> Result<StreamEvent, serde_json::Error> {
    let raw: RawMessagesEnvelope = serde_json::from_str(text)?;
    let kind = raw.kind.as_deref().unwrap_or("");
    // `message_start` wraps the message; a body, `message_delta` (usage next to
    // `delta`) and `error` keep their fields at the top level.
    let m = match raw.message {
        Some(mut m) => {
            m.usage = m.usage.or(raw.usage);
            m.error = m.error.or(raw.error);
            m
        }
        None => RawMessage {
            id: raw.id,
            model: raw.model,
            provider: raw.provider,
            usage: raw.usage,
            error: raw.error,
        },
    };
    let usage = m.usage.map(|u| {
        let prompt = u
            .input_tokens
            .saturating_add(u.cache_read_input_tokens)
            .saturating_add(u.cache_creation_input_tokens);
        ChatUsage {
            prompt_tokens: prompt,
            completion_tokens: u.output_tokens,
            total_tokens: prompt.saturating_add(u.output_tokens),
            cached_tokens: u.cache_read_input_tokens,
            reasoning_tokens: 0,
            cost: u.cost,
            is_byok: u.is_byok.unwrap_or(false),
            upstream_inference_cost: u.cost_details.and_then(|c| c.upstream_inference_cost),
        }
    });
    Ok(StreamEvent {
        meta: ChatMeta {
            id: m.id,
            model: m.model,
            provider: m.provider,
            usage,
            error: m.error.map(RawError::into_error),
        },
        cumulative: kind.starts_with("message_"),
        ends_stream: kind == "message_stop",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The public examples of each API (sources named per fixture), with OpenRouter's
    // `cost` added where the test needs it; parsed with the production parser.

    /// OpenAI API reference, "Create a response" example (platform.openai.com/docs/
    /// api-reference/responses/create), trimmed of request echo fields.
    const RESPONSES_BODY: &str = r#"{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove beneath a silver moon...","annotations":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123},"user":null,"metadata":{}}"#;

    #[test]
    fn responses_body_from_openai_docs() {
        let m = UsageShape::Responses.parse_body(RESPONSES_BODY).unwrap();
        assert_eq!(
            m.id.as_deref(),
            Some("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b")
        );
        assert_eq!(m.model.as_deref(), Some("gpt-4.1-2025-04-14"));
        let u = m.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (36, 87, 123)
        );
        assert_eq!(u.cost, None, "OpenAI's own shape has no cost: provisional");
        assert!(m.error.is_none());
    }

    #[test]
    fn responses_body_with_openrouter_cost_and_details() {
        let body = r#"{"id":"gen-1767225600-Ab3dE5fG7hJ9kL1mN3pQ","object":"response","model":"openai/gpt-4o-mini","output":[],"usage":{"input_tokens":1200,"input_tokens_details":{"cached_tokens":512},"output_tokens":250,"output_tokens_details":{"reasoning_tokens":40},"total_tokens":1450,"cost":4.25e-6,"is_byok":false}}"#;
        let u = UsageShape::Responses
            .parse_body(body)
            .unwrap()
            .usage
            .unwrap();
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (512, 40));
        assert_eq!(u.cost.unwrap().to_string(), "0.00000425");
    }

    /// OpenAI docs, "Streaming API responses" (platform.openai.com/docs/guides/
    /// streaming-responses): `response.created`, a text delta, `response.completed`.
    #[test]
    fn responses_stream_events_from_openai_docs() {
        let created = r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","created_at":1741290958,"status":"in_progress","error":null,"model":"gpt-4.1-2025-04-14","output":[],"usage":null,"user":null,"metadata":{}}}"#;
        let delta = r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"delta":"Hi"}"#;
        let completed = r#"{"type":"response.completed","sequence_number":8,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","created_at":1741290958,"status":"completed","error":null,"model":"gpt-4.1-2025-04-14","output":[{"id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there!","annotations":[]}]}],"usage":{"input_tokens":37,"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48},"user":null,"metadata":{}}}"#;
        let s = UsageShape::Responses;
        let e = s.parse_event(created).unwrap();
        assert!(e.meta.id.unwrap().starts_with("resp_67c9"));
        assert!(e.meta.usage.is_none() && !e.ends_stream);
        let e = s.parse_event(delta).unwrap();
        assert!(e.meta.id.is_none() && e.meta.usage.is_none());
        let e = s.parse_event(completed).unwrap();
        assert!(e.ends_stream);
        let u = e.meta.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (37, 11));
        // The `error` event and a failed response.
        let e = s
            .parse_event(r#"{"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}"#)
            .unwrap();
        assert_eq!(e.meta.error.unwrap().code.as_deref(), Some("ERR_SOMETHING"));
        let e = s
            .parse_event(r#"{"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"The model failed"},"usage":null}}"#)
            .unwrap();
        assert!(e.ends_stream);
        assert_eq!(e.meta.error.unwrap().code.as_deref(), Some("server_error"));
    }

    /// Anthropic API reference, "Messages" example response (docs.anthropic.com/en/api/
    /// messages).
    #[test]
    fn messages_body_from_anthropic_docs() {
        let body = r#"{"content":[{"text":"Hi! My name is Claude.","type":"text"}],"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","model":"claude-3-7-sonnet-20250219","role":"assistant","stop_reason":"end_turn","stop_sequence":null,"type":"message","usage":{"input_tokens":2095,"output_tokens":503}}"#;
        let m = UsageShape::Messages.parse_body(body).unwrap();
        assert_eq!(m.id.as_deref(), Some("msg_013Zva2CMHLNnXjNJJKqJ2EF"));
        assert_eq!(m.model.as_deref(), Some("claude-3-7-sonnet-20250219"));
        let u = m.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (2095, 503));
        assert_eq!(u.cost, None);
    }

    #[test]
    fn messages_cache_counts_are_part_of_the_prompt() {
        let body = r#"{"id":"gen-1","type":"message","model":"anthropic/claude-3.5-sonnet","usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":1000,"output_tokens":50,"cost":0.0012345}}"#;
        let u = UsageShape::Messages
            .parse_body(body)
            .unwrap()
            .usage
            .unwrap();
        assert_eq!(u.prompt_tokens, 1120);
        assert_eq!(u.cached_tokens, 1000);
        assert_eq!(u.total_tokens, 1170);
        assert_eq!(u.cost.unwrap().to_string(), "0.0012345");
    }

    /// Anthropic docs, "Streaming Messages" basic example (docs.anthropic.com/en/docs/
    /// build-with-claude/streaming): usage in `message_start`, cumulative output tokens
    /// in `message_delta`.
    #[test]
    fn messages_stream_from_anthropic_docs_merges_cumulative_usage() {
        let events = [
            r#"{"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20240620", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}"#,
            r#"{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}"#,
            r#"{"type": "ping"}"#,
            r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}"#,
            r#"{"type": "content_block_stop", "index": 0}"#,
            r#"{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}"#,
            r#"{"type": "message_stop"}"#,
        ];
        let mut id = None;
        let mut usage: Option<ChatUsage> = None;
        let mut ended = false;
        for text in events {
            let e = UsageShape::Messages.parse_event(text).unwrap();
            id = id.or(e.meta.id);
            if let Some(u) = e.meta.usage {
                assert!(e.cumulative);
                match usage.as_mut() {
                    Some(acc) => acc.merge_cumulative(&u),
                    None => usage = Some(u),
                }
            }
            ended |= e.ends_stream;
        }
        assert_eq!(
            id.as_deref(),
            Some("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY")
        );
        let u = usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (25, 15, 40)
        );
        assert!(ended);
        let err = UsageShape::Messages
            .parse_event(r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#)
            .unwrap();
        assert_eq!(
            err.meta.error.unwrap().code.as_deref(),
            Some("overloaded_error")
        );
    }

    /// OpenAI API reference, "Create embeddings" example (platform.openai.com/docs/
    /// api-reference/embeddings/create), plus OpenRouter's `id` and `cost`.
    #[test]
    fn embeddings_bodies_use_the_openai_usage_shape() {
        let openai = r#"{"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222],"index":0}],"model":"text-embedding-ada-002","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        let m = UsageShape::OpenAi.parse_body(openai).unwrap();
        assert!(m.id.is_none());
        let u = m.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (8, 0, 8)
        );
        assert_eq!(u.cost, None);
        let or = r#"{"id":"gen-emb-1767225600-Ab3dE5fG7hJ9kL1mN3pQ","object":"list","data":[{"object":"embedding","embedding":[0.1,-0.2],"index":0}],"model":"openai/text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8,"cost":1.6e-7}}"#;
        let m = UsageShape::OpenAi.parse_body(or).unwrap();
        assert_eq!(
            m.id.as_deref(),
            Some("gen-emb-1767225600-Ab3dE5fG7hJ9kL1mN3pQ")
        );
        assert_eq!(m.usage.unwrap().cost.unwrap().to_string(), "0.00000016");
    }

    /// OpenAI API reference, "Create completion" (legacy) example
    /// (platform.openai.com/docs/api-reference/completions/create).
    #[test]
    fn legacy_completions_body_uses_the_openai_usage_shape() {
        let body = r#"{"id":"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7","object":"text_completion","created":1589478378,"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","choices":[{"text":"\n\nThis is indeed a test","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
        let m = UsageShape::OpenAi.parse_body(body).unwrap();
        assert_eq!(m.id.as_deref(), Some("cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7"));
        let u = m.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (5, 7));
    }

    #[test]
    fn terminal_event_names() {
        assert!(UsageShape::Responses.is_terminal_event_name(b"response.completed"));
        assert!(!UsageShape::Responses.is_terminal_event_name(b"response.created"));
        assert!(UsageShape::Messages.is_terminal_event_name(b"message_stop"));
        assert!(!UsageShape::OpenAi.is_terminal_event_name(b"message_stop"));
    }
}
