//! Accounting fields of chat-completion replies and stream chunks (spec 1.2–1.5).
//!
//! A metering proxy only needs the id, model, provider, `usage` and a possible `error`
//! out of each body or `data:` chunk; everything else passes through untouched.

use super::number;
use rust_decimal::Decimal;
use serde::Deserialize;

/// What a chat reply or one stream chunk says for accounting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatMeta {
    pub id: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub usage: Option<ChatUsage>,
    pub error: Option<ChatError>,
}

/// The `usage` object of a chat reply (non-streamed) or the usage chunk (streamed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatUsage {
    /// Includes cached tokens.
    pub prompt_tokens: u64,
    /// Includes reasoning tokens.
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// Absent on pre-2026 deployments unless `usage: {include: true}` was sent.
    pub cost: Option<Decimal>,
    pub is_byok: bool,
    pub upstream_inference_cost: Option<Decimal>,
}

/// An error delivered inside a 200 body or a `data:` chunk. `code` is an integer on the
/// current API and a string (`"server_error"`) in older examples; both are kept as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatError {
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct RawMeta {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default, deserialize_with = "number::count")]
    prompt_tokens: u64,
    #[serde(default, deserialize_with = "number::count")]
    completion_tokens: u64,
    #[serde(default, deserialize_with = "number::count_opt")]
    total_tokens: Option<u64>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    cost: Option<Decimal>,
    #[serde(default)]
    is_byok: Option<bool>,
    #[serde(default)]
    prompt_tokens_details: Option<RawPromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<RawCompletionDetails>,
    #[serde(default)]
    cost_details: Option<RawCostDetails>,
}

#[derive(Deserialize)]
struct RawPromptDetails {
    #[serde(default, deserialize_with = "number::count")]
    cached_tokens: u64,
}

#[derive(Deserialize)]
struct RawCompletionDetails {
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
}

/// Parses a non-streamed chat body or the JSON of one `data:` chunk.
pub fn parse_chat_json(text: &str) -> Result<ChatMeta, serde_json::Error> {
    let raw: RawMeta = serde_json::from_str(text)?;
    Ok(ChatMeta {
        id: raw.id,
        model: raw.model,
        provider: raw.provider,
        usage: raw.usage.map(|u| ChatUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u
                .total_tokens
                .unwrap_or(u.prompt_tokens + u.completion_tokens),
            cached_tokens: u.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
            reasoning_tokens: u
                .completion_tokens_details
                .map_or(0, |d| d.reasoning_tokens),
            cost: u.cost,
            is_byok: u.is_byok.unwrap_or(false),
            upstream_inference_cost: u.cost_details.and_then(|c| c.upstream_inference_cost),
        }),
        error: raw.error.map(|e| ChatError {
            code: e.code.and_then(|c| match c {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            }),
            message: e.message,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_streamed_body_from_spec() {
        let body = r#"{"id":"gen-1767225600-Ab3dE5fG7hJ9kL1mN3pQ","provider":"DeepInfra","model":"deepseek/deepseek-chat-v3-0324","object":"chat.completion","created":1767225600,"choices":[{"index":0,"logprobs":null,"finish_reason":"stop","native_finish_reason":"stop","message":{"role":"assistant","content":"Hello!","refusal":null,"reasoning":null}}],"usage":{"prompt_tokens":1200,"completion_tokens":250,"total_tokens":1450,"cost":0.00066,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"image_tokens":0},"cost_details":{"upstream_inference_cost":0.00066,"upstream_inference_prompt_cost":0.00036,"upstream_inference_completions_cost":0.0003}}}"#;
        let m = parse_chat_json(body).unwrap();
        assert_eq!(m.id.as_deref(), Some("gen-1767225600-Ab3dE5fG7hJ9kL1mN3pQ"));
        assert_eq!(m.provider.as_deref(), Some("DeepInfra"));
        let u = m.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (1200, 250, 1450)
        );
        assert_eq!(u.cost.unwrap().to_string(), "0.00066");
        assert!(m.error.is_none());
    }

    #[test]
    fn usage_chunk_in_both_shapes_and_exponent_cost() {
        let captured = r#"{"id":"gen-1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13,"cost":4.25e-6,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}"#;
        let documented = r#"{"id":"gen-1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"cost":4.25e-6}}"#;
        let a = parse_chat_json(captured).unwrap().usage.unwrap();
        let b = parse_chat_json(documented).unwrap().usage.unwrap();
        assert_eq!(a.cost.unwrap().to_string(), "0.00000425");
        assert_eq!(b.cost, a.cost);
        assert_eq!((a.cached_tokens, a.reasoning_tokens), (2, 1));
        assert_eq!(b.total_tokens, 13);
    }

    #[test]
    fn mid_stream_error_with_integer_or_string_code() {
        let int = r#"{"id":"gen-1","error":{"code":502,"message":"Provider disconnected unexpectedly","metadata":{"error_type":"provider_unavailable"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"cost":0.000002}}"#;
        let s = r#"{"id":"gen-1","error":{"code":"server_error","message":"x"}}"#;
        let m = parse_chat_json(int).unwrap();
        assert_eq!(m.error.as_ref().unwrap().code.as_deref(), Some("502"));
        assert_eq!(m.usage.unwrap().cost.unwrap().to_string(), "0.000002");
        let m = parse_chat_json(s).unwrap();
        assert_eq!(m.error.unwrap().code.as_deref(), Some("server_error"));
        assert!(m.usage.is_none());
    }

    #[test]
    fn usage_without_cost_from_old_deployments() {
        let m =
            parse_chat_json(r#"{"id":"gen-2","usage":{"prompt_tokens":1,"completion_tokens":2}}"#)
                .unwrap();
        assert_eq!(m.usage.unwrap().cost, None);
    }
}
