//! OpenRouter Broadcast → webhook: OTLP/JSON traces turned into usage events.
//!
//! The attribute names for cost are not confirmed by OpenRouter's docs, so several
//! plausible spellings are accepted; a span without a generation id is ignored. Numbers
//! are read from their JSON text (OTLP `doubleValue`) or from strings (`intValue` is a
//! string in OTLP/JSON).

use chrono::{DateTime, TimeZone, Utc};
use mai_core::openrouter::number::parse_decimal;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Export {
    #[serde(default, rename = "resourceSpans")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize)]
struct ResourceSpans {
    #[serde(default, rename = "scopeSpans")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct Span {
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default, rename = "endTimeUnixNano")]
    end_time: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    value: AnyValue,
}

#[derive(Deserialize)]
struct AnyValue {
    #[serde(default, rename = "stringValue")]
    string: Option<String>,
    #[serde(default, rename = "intValue")]
    int: Option<Box<RawValue>>,
    #[serde(default, rename = "doubleValue")]
    double: Option<Box<RawValue>>,
}

impl AnyValue {
    fn text(&self) -> Option<String> {
        if let Some(s) = &self.string {
            return Some(s.clone());
        }
        self.int
            .as_ref()
            .or(self.double.as_ref())
            .map(|r| r.get().trim_matches('"').to_owned())
    }
}

const ID_KEYS: &[&str] = &[
    "gen_ai.response.id",
    "openrouter.generation_id",
    "generation.id",
    "generation_id",
];
const MODEL_KEYS: &[&str] = &["gen_ai.response.model", "gen_ai.request.model", "model"];
const PROVIDER_KEYS: &[&str] = &["gen_ai.provider.name", "openrouter.provider", "provider"];
const PROMPT_KEYS: &[&str] = &[
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
];
const COMPLETION_KEYS: &[&str] = &[
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
];
const REASONING_KEYS: &[&str] = &["gen_ai.usage.reasoning_tokens"];
const CACHED_KEYS: &[&str] = &[
    "gen_ai.usage.cached_tokens",
    "gen_ai.usage.cache_read_input_tokens",
];
const COST_KEYS: &[&str] = &[
    "gen_ai.usage.cost",
    "openrouter.cost",
    "openrouter.usage.cost",
    "llm.cost",
    "cost",
];
const USER_KEYS: &[&str] = &["user.id", "gen_ai.user.id", "enduser.id"];

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("webhook body is not OTLP/JSON ({0}); configure the Broadcast destination as a Webhook with OTLP JSON")]
    Shape(String),
    #[error("span {id}: attribute {key} = {value:?} is not a number")]
    BadNumber {
        id: String,
        key: &'static str,
        value: String,
    },
}

/// Events of every span that names a generation.
pub fn parse_export(body: &[u8], org: &str) -> Result<Vec<UsageEvent>, OtlpError> {
    let ex: Export = serde_json::from_slice(body).map_err(|e| OtlpError::Shape(e.to_string()))?;
    let mut out = Vec::new();
    for span in ex
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
    {
        let attrs: HashMap<&str, &AnyValue> = span
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), &kv.value))
            .collect();
        let find = |keys: &[&'static str]| -> Option<(&'static str, String)> {
            keys.iter()
                .find_map(|k| attrs.get(k).and_then(|v| v.text()).map(|t| (*k, t)))
        };
        let Some((_, id)) = find(ID_KEYS) else {
            continue;
        };
        let count = |keys: &[&'static str]| -> Result<u64, OtlpError> {
            match find(keys) {
                None => Ok(0),
                Some((k, t)) => parse_decimal(&t)
                    .ok()
                    .filter(|d| !d.is_sign_negative() && d.fract().is_zero())
                    .and_then(|d| u64::try_from(d).ok())
                    .ok_or(OtlpError::BadNumber {
                        id: id.clone(),
                        key: k,
                        value: t,
                    }),
            }
        };
        let cost = match find(COST_KEYS) {
            None => None,
            Some((k, t)) => Some(parse_decimal(&t).map_err(|_| OtlpError::BadNumber {
                id: id.clone(),
                key: k,
                value: t,
            })?),
        };
        let created_at = span
            .end_time
            .as_ref()
            .and_then(|r| r.get().trim_matches('"').parse::<i64>().ok())
            .and_then(|ns| {
                Utc.timestamp_opt(ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
                    .single()
            })
            .unwrap_or_else(Utc::now);
        out.push(event(
            org,
            id.clone(),
            &find,
            count(PROMPT_KEYS)?,
            count(COMPLETION_KEYS)?,
            count(REASONING_KEYS)?,
            count(CACHED_KEYS)?,
            cost,
            created_at,
            find(USER_KEYS).map(|x| x.1),
        ));
        let _ = MODEL_KEYS;
    }
    Ok(out)
}

type Finder<'a> = dyn Fn(&[&'static str]) -> Option<(&'static str, String)> + 'a;

#[allow(clippy::too_many_arguments)]
fn event(
    org: &str,
    id: String,
    find: &Finder<'_>,
    prompt: u64,
    completion: u64,
    reasoning: u64,
    cached: u64,
    cost: Option<Decimal>,
    created_at: DateTime<Utc>,
    user: Option<String>,
) -> UsageEvent {
    UsageEvent {
        generation_id: id,
        org_id: org.to_owned(),
        user: UserRef {
            id: user,
            email: None,
            name: None,
        },
        model: find(MODEL_KEYS)
            .map(|x| x.1)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".into()),
        provider: find(PROVIDER_KEYS).map(|x| x.1),
        tokens: Tokens {
            prompt,
            completion,
            reasoning,
            cached,
        },
        cost_usd: cost.unwrap_or_default(),
        source: Source::Webhook,
        state: if cost.is_some() {
            EventState::Confirmed
        } else {
            EventState::Provisional
        },
        created_at,
        context: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_span_to_event() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"openrouter"},"spans":[{"traceId":"ab","name":"chat","endTimeUnixNano":"1767225601000000000","attributes":[{"key":"gen_ai.response.id","value":{"stringValue":"gen-1"}},{"key":"gen_ai.request.model","value":{"stringValue":"openai/gpt-4o-mini"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"1200"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":250}},{"key":"gen_ai.usage.cost","value":{"doubleValue":4.25e-6}},{"key":"user.id","value":{"stringValue":"u-1"}}]},{"attributes":[{"key":"other","value":{"stringValue":"x"}}]}]}]}]}"#;
        let evs = parse_export(body, "acme").unwrap();
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e.generation_id, "gen-1");
        assert_eq!(e.model, "openai/gpt-4o-mini");
        assert_eq!((e.tokens.prompt, e.tokens.completion), (1200, 250));
        assert_eq!(e.cost_usd.to_string(), "0.00000425");
        assert_eq!(e.state, EventState::Confirmed);
        assert_eq!(e.user.id.as_deref(), Some("u-1"));
        assert_eq!(e.created_at.timestamp(), 1767225601);
    }

    #[test]
    fn bad_shapes() {
        assert!(parse_export(b"not json", "a").is_err());
        assert!(parse_export(b"{}", "a").unwrap().is_empty());
        let bad = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"generation_id","value":{"stringValue":"gen-1"}},{"key":"cost","value":{"stringValue":"abc"}}]}]}]}]}"#;
        assert!(parse_export(bad, "a")
            .unwrap_err()
            .to_string()
            .contains("cost"));
    }
}
