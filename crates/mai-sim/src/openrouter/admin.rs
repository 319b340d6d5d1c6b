//! Read and management endpoints: /generation, /key, /credits, /activity, /models, /keys.

// Handlers return a ready error response on the cold path; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Days, NaiveDate, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::clock::iso_micros;
use super::config::{KeySpec, LimitReset};
use super::faults::FaultEndpoint;
use super::ledger::KeyEntry;
use super::pricing::{format_number, Num};
use super::server::{
    authenticate, error_response, json_response, require_management, scripted_error, Resp, Shared,
};
use super::wire::{
    ActivityJson, Architecture, GenerationStats, KeyInfo, KeyObject, ModelJson, Null, Pricing,
    ProviderResponse, RateLimitInfo, TopProvider,
};

#[derive(Serialize)]
struct Data<T> {
    data: T,
}

/// Deterministic UUID-looking id of a (model, provider) endpoint.
fn endpoint_id(model: &str, provider: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{model}|{provider}").as_bytes()));
    format!(
        "{}-{}-4{}-9{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

pub(crate) async fn generation(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Resp {
    let caller = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match shared.pick_fault(&headers, FaultEndpoint::Generation, Some(&caller.hash)) {
        Err(r) => return r,
        Ok(Some(f)) => {
            if let Some(l) = f.latency {
                tokio::time::sleep(l).await;
            }
            if let Some(s) = f.status {
                return scripted_error(&shared, &f, s, None);
            }
        }
        Ok(None) => {}
    }
    let Some(id) = q.get("id").filter(|s| !s.is_empty()) else {
        return error_response(
            400,
            "Invalid request parameters: id is required",
            None,
            None,
        );
    };
    let exp = shared.cfg.exponent_below;
    let st = shared.lock();
    let rec = st
        .ledger
        .generation(id)
        .filter(|g| g.meta.ready_at.is_some_and(|t| Instant::now() >= t));
    let Some(g) = rec else {
        // [unconfirmed] exact text; the envelope and status are as specified.
        return error_response(404, format!("Generation {id} not found"), None, None);
    };
    let t = &g.truth;
    let m = &g.meta;
    let stats = GenerationStats {
        id: &t.id,
        request_id: &m.request_id,
        upstream_id: &m.upstream_id,
        created_at: iso_micros(t.created_at),
        model: &t.model,
        provider_name: &t.provider,
        api_type: m.api_type,
        streamed: t.streamed,
        cancelled: t.cancelled,
        finish_reason: t.finish_reason.as_deref(),
        native_finish_reason: m.native_finish_reason.as_deref(),
        // OpenRouter's normalized counts differ a little from the native ones.
        tokens_prompt: t.prompt_tokens - t.prompt_tokens / 60,
        tokens_completion: t.completion_tokens - t.completion_tokens / 60,
        native_tokens_prompt: t.prompt_tokens,
        native_tokens_completion: t.completion_tokens,
        native_tokens_reasoning: t.reasoning_tokens,
        native_tokens_cached: t.cached_tokens,
        native_tokens_completion_images: 0,
        num_media_prompt: Null,
        num_media_completion: Null,
        num_input_audio_prompt: Null,
        num_search_results: Null,
        num_fetches: Null,
        total_cost: Num(t.cost, exp),
        usage: Num(t.cost, exp),
        cache_discount: cache_discount(&shared, t).map(|d| Num(d, exp)),
        upstream_inference_cost: Num(t.upstream_cost, exp),
        is_byok: t.is_byok,
        latency: m.latency_ms,
        generation_time: m.generation_time_ms,
        moderation_latency: Null,
        origin: m.http_referer.as_deref(),
        http_referer: m.http_referer.as_deref(),
        user_agent: m.user_agent.as_deref(),
        app_id: Null,
        external_user: t.external_user.as_deref(),
        session_id: m.session_id.as_deref(),
        preset_id: Null,
        router: Null,
        service_tier: Null,
        data_region: "global",
        web_search_engine: Null,
        response_cache_source_id: Null,
        workspace_id: Null,
        provider_responses: [ProviderResponse {
            provider_name: &t.provider,
            model_permaslug: &m.model_permaslug,
            status: 200,
            latency: m.latency_ms,
            is_byok: t.is_byok,
            id: &m.upstream_id,
            endpoint_id: endpoint_id(&t.model, &t.provider),
        }],
    };
    json_response(200, &Data { data: stats })
}

fn cache_discount(shared: &Shared, t: &super::ledger::GenerationTruth) -> Option<Decimal> {
    let m = shared.models.get(&t.model)?;
    let tokens = super::pricing::TokenCounts {
        prompt: t.prompt_tokens,
        completion: t.completion_tokens,
        reasoning: t.reasoning_tokens,
        cached: t.cached_tokens,
        cache_write: t.cache_write_tokens,
    };
    super::pricing::compute_cost(m, &tokens, t.is_byok, shared.cfg.byok_fee_rate).cache_discount
}

pub(crate) async fn key_info(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Resp {
    let caller = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = endpoint_fault(&shared, &headers, FaultEndpoint::Key, &caller.hash).await {
        return r;
    }
    let exp = shared.cfg.exponent_below;
    let st = shared.lock();
    let now = st.clock.now();
    let k = &st.ledger.keys[&caller.hash];
    let w = k.windows(now);
    let info = KeyInfo {
        label: &k.label,
        limit: k.limit.map(|l| Num(l, exp)),
        limit_reset: k.limit_reset.map(LimitReset::as_str),
        limit_remaining: k.limit_remaining(now).map(|l| Num(l, exp)),
        include_byok_in_limit: k.include_byok_in_limit,
        usage: Num(w.total.usage, exp),
        usage_daily: Num(w.daily.usage, exp),
        usage_weekly: Num(w.weekly.usage, exp),
        usage_monthly: Num(w.monthly.usage, exp),
        byok_usage: Num(w.total.byok, exp),
        byok_usage_daily: Num(w.daily.byok, exp),
        byok_usage_weekly: Num(w.weekly.byok, exp),
        byok_usage_monthly: Num(w.monthly.byok, exp),
        is_free_tier: shared.cfg.total_credits.is_zero(),
        is_management_key: k.management,
        is_provisioning_key: k.management,
        expires_at: k.expires_at.map(iso_micros),
        creator_user_id: &shared.cfg.user_id,
        rate_limit: RateLimitInfo {
            requests: -1,
            interval: "10s",
            note: "This field is deprecated and safe to ignore.",
        },
    };
    json_response(200, &Data { data: info })
}

/// Faults for endpoints other than chat and generation (rules with `endpoint: any`).
async fn any_fault(shared: &Shared, headers: &HeaderMap, hash: &str) -> Result<(), Resp> {
    endpoint_fault(shared, headers, FaultEndpoint::Any, hash).await
}

/// Faults for one endpoint: rules scoped to it, and rules with `endpoint: any`.
async fn endpoint_fault(
    shared: &Shared,
    headers: &HeaderMap,
    endpoint: FaultEndpoint,
    hash: &str,
) -> Result<(), Resp> {
    if let Some(f) = shared.pick_fault(headers, endpoint, Some(hash))? {
        if let Some(l) = f.latency {
            tokio::time::sleep(l).await;
        }
        if let Some(s) = f.status {
            return Err(scripted_error(shared, &f, s, None));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Credits {
    total_credits: Num,
    total_usage: Num,
}

pub(crate) async fn credits(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Resp {
    let caller = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if shared.cfg.credits_auth == super::config::CreditsAuth::ManagementOnly {
        if let Err(r) = require_management(&caller) {
            return r;
        }
    }
    if let Err(r) = any_fault(&shared, &headers, &caller.hash).await {
        return r;
    }
    let exp = shared.cfg.exponent_below;
    let total_usage = shared.lock().ledger.total_usage;
    json_response(
        200,
        &Data {
            data: Credits {
                total_credits: Num(shared.cfg.total_credits, exp),
                total_usage: Num(total_usage, exp),
            },
        },
    )
}

pub(crate) async fn activity(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Resp {
    let caller = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = require_management(&caller) {
        return r;
    }
    if let Err(r) = any_fault(&shared, &headers, &caller.hash).await {
        return r;
    }
    let now = shared.now();
    let date = match q.get("date") {
        None => None,
        Some(s) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => {
                let today = now.date_naive();
                if d >= today || d < today - Days::new(30) {
                    return error_response(
                        400,
                        format!("Invalid date {s}: must be one of the last 30 completed UTC days"),
                        None,
                        None,
                    );
                }
                Some(d)
            }
            Err(_) => {
                return error_response(
                    400,
                    format!("Invalid date {s}: expected YYYY-MM-DD"),
                    None,
                    None,
                )
            }
        },
    };
    let exp = shared.cfg.exponent_below;
    let rows = shared
        .lock()
        .ledger
        .activity(now, date, q.get("api_key_hash").map(String::as_str));
    let data: Vec<ActivityJson<'_>> = rows
        .iter()
        .map(|r| ActivityJson {
            // The live form (spec 5, [obs] 2026-08): a day with a time suffix, not the
            // OpenAPI example's bare `YYYY-MM-DD`.
            date: r.date.format("%Y-%m-%d 00:00:00").to_string(),
            model: &r.model,
            model_permaslug: &r.model_permaslug,
            endpoint_id: endpoint_id(&r.model, &r.provider_name),
            provider_name: &r.provider_name,
            usage: Num(r.usage, exp),
            byok_usage_inference: Num(r.byok_usage_inference, exp),
            requests: r.requests,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            reasoning_tokens: r.reasoning_tokens,
        })
        .collect();
    json_response(200, &Data { data })
}

const SUPPORTED: &[&str] = &[
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
];

pub(crate) async fn models(State(shared): State<Arc<Shared>>) -> Resp {
    let price = |d: Decimal| format_number(d, None);
    let data: Vec<ModelJson<'_>> = shared
        .cfg
        .models
        .iter()
        .map(|m| ModelJson {
            id: &m.id,
            canonical_slug: &m.canonical_slug,
            name: &m.name,
            created: 1_735_689_600,
            description: format!("{} (simulated), served by {}.", m.name, m.provider),
            context_length: m.context_length,
            architecture: Architecture {
                modality: "text->text",
                input_modalities: ["text"],
                output_modalities: ["text"],
                tokenizer: "Other",
                instruct_type: Null,
            },
            pricing: Pricing {
                prompt: price(m.prompt),
                completion: price(m.completion),
                request: price(m.request),
                image: "0".into(),
                web_search: "0".into(),
                internal_reasoning: "0".into(),
                input_cache_read: m.input_cache_read.map(price),
                input_cache_write: m.input_cache_write.map(price),
                discount: (!m.discount.is_zero()).then_some(Num(m.discount, None)),
            },
            top_provider: TopProvider {
                context_length: m.context_length,
                max_completion_tokens: 16_384,
                is_moderated: false,
            },
            per_request_limits: Null,
            supported_parameters: SUPPORTED,
        })
        .collect();
    json_response(200, &Data { data })
}

fn key_object<'a>(shared: &'a Shared, k: &'a KeyEntry, now: DateTime<Utc>) -> KeyObject<'a> {
    let exp = shared.cfg.exponent_below;
    let w = k.windows(now);
    KeyObject {
        hash: &k.hash,
        name: &k.name,
        label: &k.label,
        disabled: k.disabled,
        limit: k.limit.map(|l| Num(l, exp)),
        limit_remaining: k.limit_remaining(now).map(|l| Num(l, exp)),
        limit_reset: k.limit_reset.map(LimitReset::as_str),
        include_byok_in_limit: k.include_byok_in_limit,
        usage: Num(w.total.usage, exp),
        usage_daily: Num(w.daily.usage, exp),
        usage_weekly: Num(w.weekly.usage, exp),
        usage_monthly: Num(w.monthly.usage, exp),
        byok_usage: Num(w.total.byok, exp),
        byok_usage_daily: Num(w.daily.byok, exp),
        byok_usage_weekly: Num(w.weekly.byok, exp),
        byok_usage_monthly: Num(w.monthly.byok, exp),
        created_at: iso_micros(k.created_at),
        updated_at: k.updated_at.map(iso_micros),
        expires_at: k.expires_at.map(iso_micros),
        creator_user_id: &shared.cfg.user_id,
        workspace_id: &k.workspace_id,
    }
}

async fn management(shared: &Shared, headers: &HeaderMap) -> Result<(), Resp> {
    let caller = authenticate(shared, headers)?;
    require_management(&caller)?;
    any_fault(shared, headers, &caller.hash).await
}

pub(crate) async fn list_keys(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Resp {
    if let Err(r) = management(&shared, &headers).await {
        return r;
    }
    let offset = match q.get("offset").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error_response(400, "Invalid offset: expected an integer >= 0", None, None)
        }
    };
    let include_disabled = match q.get("include_disabled").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return error_response(
                400,
                format!("Invalid include_disabled `{other}`: expected true or false"),
                None,
                None,
            )
        }
    };
    // Spec 6.2: the default workspace unless one is named.
    let workspace = q
        .get("workspace_id")
        .map_or(super::config::DEFAULT_WORKSPACE_ID, String::as_str);
    let st = shared.lock();
    let now = st.clock.now();
    let data: Vec<KeyObject<'_>> = st
        .ledger
        .keys_newest_first(workspace, include_disabled)
        .into_iter()
        .skip(offset)
        .take(100)
        .map(|k| key_object(&shared, k, now))
        .collect();
    json_response(200, &Data { data })
}

fn raw_decimal(raw: &RawValue, field: &str) -> Result<Option<Decimal>, String> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map(Some)
        .map_err(|_| format!("{field} must be a number or null, got {text}"))
}

fn raw_limit_reset(raw: &RawValue) -> Result<Option<LimitReset>, String> {
    match serde_json::from_str::<Option<String>>(raw.get()) {
        Ok(None) => Ok(None),
        Ok(Some(s)) => LimitReset::from_str(&s).map(Some),
        Err(_) => Err("limit_reset must be daily, weekly, monthly or null".into()),
    }
}

fn raw_bool(raw: &RawValue, field: &str) -> Result<bool, String> {
    serde_json::from_str::<bool>(raw.get()).map_err(|_| format!("{field} must be true or false"))
}

type Fields = HashMap<String, Box<RawValue>>;

fn parse_fields(body: &Bytes) -> Result<Fields, Resp> {
    serde_json::from_slice::<Fields>(body).map_err(|e| {
        error_response(
            400,
            format!("Invalid JSON in request body: {e}"),
            None,
            None,
        )
    })
}

pub(crate) async fn create_key(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    if let Err(r) = management(&shared, &headers).await {
        return r;
    }
    let fields = match parse_fields(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let bad = |m: String| error_response(400, m, None, None);
    let name = fields
        .get("name")
        .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
        .filter(|n| !n.trim().is_empty());
    let Some(name) = name else {
        return bad("name is required and must be a non-empty string".into());
    };
    let mut now = shared.now();
    let mut spec = KeySpec::new(String::new());
    spec.name = name;
    if let Some(r) = fields.get("limit") {
        match raw_decimal(r, "limit") {
            Ok(l) => spec.limit = l,
            Err(m) => return bad(m),
        }
    }
    if let Some(r) = fields.get("limit_reset") {
        match raw_limit_reset(r) {
            Ok(l) => spec.limit_reset = l,
            Err(m) => return bad(m),
        }
    }
    if let Some(r) = fields.get("include_byok_in_limit") {
        match raw_bool(r, "include_byok_in_limit") {
            Ok(b) => spec.include_byok_in_limit = b,
            Err(m) => return bad(m),
        }
    }
    if let Some(r) = fields.get("workspace_id") {
        match serde_json::from_str::<Option<String>>(r.get()) {
            Ok(w) => spec.workspace_id = w.filter(|w| !w.trim().is_empty()),
            Err(_) => return bad("workspace_id must be a string (a workspace UUID) or null".into()),
        }
    }
    if let Some(r) = fields.get("expires_at") {
        match serde_json::from_str::<Option<String>>(r.get()) {
            Ok(None) => {}
            Ok(Some(s)) => match DateTime::parse_from_rfc3339(&s) {
                Ok(t)
                    if t.offset().local_minus_utc() == 0
                        && (s.ends_with('Z') || s.ends_with("+00:00") || s.ends_with('z')) =>
                {
                    let t = t.with_timezone(&Utc);
                    if t <= now {
                        return bad(format!("expires_at {s} is in the past"));
                    }
                    spec.expires_at = Some(t);
                }
                Ok(_) => {
                    return bad(format!(
                        "expires_at {s} must be in UTC (end with Z or +00:00)"
                    ))
                }
                Err(_) => return bad(format!("expires_at {s} is not an ISO 8601 timestamp")),
            },
            Err(_) => return bad("expires_at must be a string or null".into()),
        }
    }
    let mut st = shared.lock();
    let key = {
        let bytes: [u8; 32] = st.key_rng.gen();
        format!("sk-or-v1-{}", hex::encode(bytes))
    };
    spec.key = key.clone();
    now = st.clock.now();
    let hash = st.ledger.register(&spec, now);
    let k = &st.ledger.keys[&hash];
    #[derive(Serialize)]
    struct Created<'a> {
        data: KeyObject<'a>,
        key: &'a str,
    }
    json_response(
        201,
        &Created {
            data: key_object(&shared, k, now),
            key: &key,
        },
    )
}

fn not_found(hash: &str) -> Resp {
    error_response(404, format!("API key {hash} not found"), None, None)
}

pub(crate) async fn get_key(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Resp {
    if let Err(r) = management(&shared, &headers).await {
        return r;
    }
    let st = shared.lock();
    let now = st.clock.now();
    match st.ledger.keys.get(&hash).filter(|k| !k.deleted) {
        Some(k) => json_response(
            200,
            &Data {
                data: key_object(&shared, k, now),
            },
        ),
        None => not_found(&hash),
    }
}

pub(crate) async fn update_key(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Bytes,
) -> Resp {
    if let Err(r) = management(&shared, &headers).await {
        return r;
    }
    let fields = match parse_fields(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let bad = |m: String| error_response(400, m, None, None);
    if fields.contains_key("expires_at") {
        return bad("expires_at cannot be updated; create a new key instead".into());
    }
    let mut st = shared.lock();
    let now = st.clock.now();
    let Some(k) = st.ledger.keys.get_mut(&hash).filter(|k| !k.deleted) else {
        return not_found(&hash);
    };
    // Validate everything before changing anything.
    let name = match fields
        .get("name")
        .map(|r| serde_json::from_str::<String>(r.get()))
    {
        Some(Ok(n)) if !n.trim().is_empty() => Some(n),
        Some(_) => return bad("name must be a non-empty string".into()),
        None => None,
    };
    let disabled = match fields.get("disabled").map(|r| raw_bool(r, "disabled")) {
        Some(Err(m)) => return bad(m),
        other => other.map(Result::unwrap_or_default),
    };
    let limit = match fields.get("limit").map(|r| raw_decimal(r, "limit")) {
        Some(Err(m)) => return bad(m),
        Some(Ok(l)) => Some(l),
        None => None,
    };
    let reset = match fields.get("limit_reset").map(|r| raw_limit_reset(r)) {
        Some(Err(m)) => return bad(m),
        Some(Ok(l)) => Some(l),
        None => None,
    };
    let byok = match fields
        .get("include_byok_in_limit")
        .map(|r| raw_bool(r, "include_byok_in_limit"))
    {
        Some(Err(m)) => return bad(m),
        other => other.map(Result::unwrap_or_default),
    };
    if let Some(n) = name {
        k.name = n;
    }
    if let Some(d) = disabled {
        k.disabled = d;
    }
    if let Some(l) = limit {
        k.limit = l;
    }
    if let Some(r) = reset {
        k.limit_reset = r;
    }
    if let Some(b) = byok {
        k.include_byok_in_limit = b;
    }
    k.updated_at = Some(now);
    let k = &st.ledger.keys[&hash];
    json_response(
        200,
        &Data {
            data: key_object(&shared, k, now),
        },
    )
}

pub(crate) async fn delete_key(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Resp {
    if let Err(r) = management(&shared, &headers).await {
        return r;
    }
    let mut st = shared.lock();
    match st.ledger.keys.get_mut(&hash).filter(|k| !k.deleted) {
        Some(k) => {
            k.deleted = true;
            json_response(200, &serde_json::json!({ "deleted": true }))
        }
        None => not_found(&hash),
    }
}
