//! JSON shapes of the real API, field order as captured (spec sections 1-7).
//! Money goes through [`Num`] so it is written from its decimal text, never via f64.

use serde::{Serialize, Serializer};

use super::pricing::Num;

/// Serializes as JSON `null`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Null;

impl Serialize for Null {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

#[derive(Serialize)]
pub(crate) struct ChatCompletion<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub object: &'static str,
    pub created: i64,
    pub choices: [CompletionChoice<'a>; 1],
    pub usage: Usage,
}

#[derive(Serialize)]
pub(crate) struct CompletionChoice<'a> {
    pub index: u32,
    pub logprobs: Null,
    pub finish_reason: Option<&'a str>,
    pub native_finish_reason: Option<&'a str>,
    pub message: AssistantMessage<'a>,
}

#[derive(Serialize)]
pub(crate) struct AssistantMessage<'a> {
    pub role: &'static str,
    pub content: &'a str,
    pub refusal: Null,
    pub reasoning: Null,
}

#[derive(Serialize)]
pub(crate) struct Chunk<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub object: &'static str,
    pub created: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ChunkError<'a>>,
    pub choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Serialize)]
pub(crate) struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: Delta<'a>,
    pub finish_reason: Option<&'a str>,
    pub native_finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Null>,
}

#[derive(Serialize)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub content: &'a str,
}

#[derive(Serialize)]
pub(crate) struct ChunkError<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
    pub metadata: ErrorTypeMeta,
}

#[derive(Serialize)]
pub(crate) struct ErrorTypeMeta {
    pub error_type: &'static str,
}

/// Integer status, or the older string form (`"server_error"`).
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum ErrorCode {
    Int(u16),
    Str(&'static str),
}

/// The `usage` object. Non-streamed replies put `completion_tokens_details` before
/// `cost_details`, the captured usage chunk after it; `details_last` picks the order.
pub(crate) struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// `None` for the `no_cost` fault (usage as OpenAI's and Anthropic's own shapes).
    pub cost: Option<Num>,
    pub is_byok: bool,
    pub cached_tokens: u32,
    pub cache_write_tokens: Option<u32>,
    pub reasoning_tokens: u32,
    pub upstream_inference_cost: Num,
    pub upstream_inference_prompt_cost: Num,
    pub upstream_inference_completions_cost: Num,
    pub details_last: bool,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_write_tokens: Option<u32>,
    audio_tokens: u32,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u32,
    image_tokens: u32,
}

#[derive(Serialize)]
struct CostDetails {
    upstream_inference_cost: Num,
    upstream_inference_prompt_cost: Num,
    upstream_inference_completions_cost: Num,
}

impl Serialize for Usage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry("prompt_tokens", &self.prompt_tokens)?;
        m.serialize_entry("completion_tokens", &self.completion_tokens)?;
        m.serialize_entry(
            "total_tokens",
            &(u64::from(self.prompt_tokens) + u64::from(self.completion_tokens)),
        )?;
        if let Some(cost) = &self.cost {
            m.serialize_entry("cost", cost)?;
        }
        m.serialize_entry("is_byok", &self.is_byok)?;
        m.serialize_entry(
            "prompt_tokens_details",
            &PromptDetails {
                cached_tokens: self.cached_tokens,
                cache_write_tokens: self.cache_write_tokens,
                audio_tokens: 0,
            },
        )?;
        let details = CompletionDetails {
            reasoning_tokens: self.reasoning_tokens,
            image_tokens: 0,
        };
        if !self.details_last {
            m.serialize_entry("completion_tokens_details", &details)?;
        }
        m.serialize_entry(
            "cost_details",
            &CostDetails {
                upstream_inference_cost: self.upstream_inference_cost,
                upstream_inference_prompt_cost: self.upstream_inference_prompt_cost,
                upstream_inference_completions_cost: self.upstream_inference_completions_cost,
            },
        )?;
        if self.details_last {
            m.serialize_entry("completion_tokens_details", &details)?;
        }
        m.end()
    }
}

/// Section 7 envelope.
#[derive(Serialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct ErrorBody {
    pub message: String,
    pub code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ErrorMeta>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum ErrorMeta {
    /// Upstream failures (502, upstream 429/503).
    Provider {
        raw: String,
        provider_name: String,
        is_byok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_seconds: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        headers: Option<RetryAfterHeaders>,
    },
    /// OpenRouter's own free-model limiter.
    FreeTier {
        headers: RateLimitHeaders,
        provider_name: Null,
    },
    /// The 402 "can only afford" pre-check.
    NoProvider {
        provider_name: Null,
    },
    Typed {
        error_type: &'static str,
    },
}

#[derive(Serialize)]
pub(crate) struct RetryAfterHeaders {
    #[serde(rename = "Retry-After")]
    pub retry_after: String,
}

#[derive(Serialize)]
pub(crate) struct RateLimitHeaders {
    #[serde(rename = "X-RateLimit-Limit")]
    pub limit: String,
    #[serde(rename = "X-RateLimit-Remaining")]
    pub remaining: String,
    #[serde(rename = "X-RateLimit-Reset")]
    pub reset: String,
}

/// `GET /generation` `data` (spec 2.1, 2026-08 field list).
#[derive(Serialize)]
pub(crate) struct GenerationStats<'a> {
    pub id: &'a str,
    pub request_id: &'a str,
    pub upstream_id: &'a str,
    pub created_at: String,
    pub model: &'a str,
    pub provider_name: &'a str,
    pub api_type: &'static str,
    pub streamed: bool,
    pub cancelled: bool,
    pub finish_reason: Option<&'a str>,
    pub native_finish_reason: Option<&'a str>,
    pub tokens_prompt: u32,
    pub tokens_completion: u32,
    pub native_tokens_prompt: u32,
    pub native_tokens_completion: u32,
    pub native_tokens_reasoning: u32,
    pub native_tokens_cached: u32,
    pub native_tokens_completion_images: u32,
    pub num_media_prompt: Null,
    pub num_media_completion: Null,
    pub num_input_audio_prompt: Null,
    pub num_search_results: Null,
    pub num_fetches: Null,
    pub total_cost: Num,
    pub usage: Num,
    pub cache_discount: Option<Num>,
    pub upstream_inference_cost: Num,
    pub is_byok: bool,
    pub latency: u64,
    pub generation_time: u64,
    pub moderation_latency: Null,
    pub origin: Option<&'a str>,
    pub http_referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub app_id: Null,
    pub external_user: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub preset_id: Null,
    pub router: Null,
    pub service_tier: Null,
    pub data_region: &'static str,
    pub web_search_engine: Null,
    pub response_cache_source_id: Null,
    pub workspace_id: Null,
    pub provider_responses: [ProviderResponse<'a>; 1],
}

#[derive(Serialize)]
pub(crate) struct ProviderResponse<'a> {
    pub provider_name: &'a str,
    pub model_permaslug: &'a str,
    pub status: u16,
    pub latency: u64,
    pub is_byok: bool,
    pub id: &'a str,
    pub endpoint_id: String,
}

#[derive(Serialize)]
pub(crate) struct RateLimitInfo {
    pub requests: i32,
    pub interval: &'static str,
    pub note: &'static str,
}

/// `GET /key` `data` (spec 3).
#[derive(Serialize)]
pub(crate) struct KeyInfo<'a> {
    pub label: &'a str,
    pub limit: Option<Num>,
    pub limit_reset: Option<&'static str>,
    pub limit_remaining: Option<Num>,
    pub include_byok_in_limit: bool,
    pub usage: Num,
    pub usage_daily: Num,
    pub usage_weekly: Num,
    pub usage_monthly: Num,
    pub byok_usage: Num,
    pub byok_usage_daily: Num,
    pub byok_usage_weekly: Num,
    pub byok_usage_monthly: Num,
    pub is_free_tier: bool,
    pub is_management_key: bool,
    pub is_provisioning_key: bool,
    pub expires_at: Option<String>,
    pub creator_user_id: &'a str,
    pub rate_limit: RateLimitInfo,
}

/// Management API key object (spec 6.1).
#[derive(Serialize)]
pub(crate) struct KeyObject<'a> {
    pub hash: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub disabled: bool,
    pub limit: Option<Num>,
    pub limit_remaining: Option<Num>,
    pub limit_reset: Option<&'static str>,
    pub include_byok_in_limit: bool,
    pub usage: Num,
    pub usage_daily: Num,
    pub usage_weekly: Num,
    pub usage_monthly: Num,
    pub byok_usage: Num,
    pub byok_usage_daily: Num,
    pub byok_usage_weekly: Num,
    pub byok_usage_monthly: Num,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub expires_at: Option<String>,
    pub creator_user_id: &'a str,
    pub workspace_id: &'a str,
}

/// `/activity` row (spec 5).
#[derive(Serialize)]
pub(crate) struct ActivityJson<'a> {
    pub date: String,
    pub model: &'a str,
    pub model_permaslug: &'a str,
    pub endpoint_id: String,
    pub provider_name: &'a str,
    pub usage: Num,
    pub byok_usage_inference: Num,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
}

/// `/models` entry (spec 9).
#[derive(Serialize)]
pub(crate) struct ModelJson<'a> {
    pub id: &'a str,
    pub canonical_slug: &'a str,
    pub name: &'a str,
    pub created: i64,
    pub description: String,
    pub context_length: u32,
    pub architecture: Architecture,
    pub pricing: Pricing,
    pub top_provider: TopProvider,
    pub per_request_limits: Null,
    pub supported_parameters: &'static [&'static str],
}

#[derive(Serialize)]
pub(crate) struct Architecture {
    pub modality: &'static str,
    pub input_modalities: [&'static str; 1],
    pub output_modalities: [&'static str; 1],
    pub tokenizer: &'static str,
    pub instruct_type: Null,
}

/// Prices as decimal strings (spec 9).
#[derive(Serialize)]
pub(crate) struct Pricing {
    pub prompt: String,
    pub completion: String,
    pub request: String,
    pub image: String,
    pub web_search: String,
    pub internal_reasoning: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cache_write: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount: Option<Num>,
}

#[derive(Serialize)]
pub(crate) struct TopProvider {
    pub context_length: u32,
    pub max_completion_tokens: u32,
    pub is_moderated: bool,
}
