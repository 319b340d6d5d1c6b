//! OpenRouter Broadcast → webhook: OTLP/JSON traces turned into usage events.
//!
//! Attribute names are those OpenRouter really sends (spec 8, "Broadcast attribute
//! names as really sent"): cost `gen_ai.usage.total_cost` (else `input_cost` +
//! `output_cost`, else the older `gen_ai.usage.cost`), tokens
//! `gen_ai.usage.input_tokens`, `output_tokens`, `input_tokens.cached`,
//! `output_tokens.reasoning`, model `gen_ai.response.model` / `gen_ai.request.model`,
//! `user.id`, `session.id`, the key's name `trace.metadata.openrouter.api_key_name` (also
//! `openrouter.api_key_name`) and the resource attribute `openrouter.trace.id`. Numbers
//! are read from their JSON text (OTLP `doubleValue`; `intValue` is a string in
//! OTLP/JSON), never through `f64`.
//!
//! **The generation id.** Whether every span carries `gen_ai.response.id` is unconfirmed.
//! Only a `gen-…` id there makes an event: the ledger is keyed by generation id, and the
//! proxy records the same generation under that id, so the two paths meet in one row.
//! A span without it is *not* keyed by the trace id: that would count every generation
//! the proxy already metered a second time. Such spans are returned without an event
//! and counted as skipped (`no_generation_id`); the proxy, the crash journal and the
//! `/key` and `/activity` drift checks own those generations.

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
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default, rename = "scopeSpans")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct Span {
    #[serde(default, rename = "traceId")]
    trace_id: Option<String>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default, rename = "startTimeUnixNano")]
    start_time: Option<Box<RawValue>>,
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
    /// The value's text: a string as is, a number as its exact JSON text.
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

pub const GENERATION_ID: &str = "gen_ai.response.id";
const MODEL_KEYS: &[&str] = &["gen_ai.response.model", "gen_ai.request.model"];
const PROMPT: &str = "gen_ai.usage.input_tokens";
const COMPLETION: &str = "gen_ai.usage.output_tokens";
const CACHED: &str = "gen_ai.usage.input_tokens.cached";
const REASONING: &str = "gen_ai.usage.output_tokens.reasoning";
const TOTAL_COST: &str = "gen_ai.usage.total_cost";
const INPUT_COST: &str = "gen_ai.usage.input_cost";
const OUTPUT_COST: &str = "gen_ai.usage.output_cost";
/// Older name kept by OpenRouter for compatibility.
const LEGACY_COST: &str = "gen_ai.usage.cost";
const USER: &str = "user.id";
const SESSION: &str = "session.id";
pub const KEY_NAME_KEYS: &[&str] = &[
    "trace.metadata.openrouter.api_key_name",
    "openrouter.api_key_name",
];
const TRACE_ID: &str = "openrouter.trace.id";
/// A span carrying none of these is structure (a parent span), not a generation.
const USAGE_KEYS: &[&str] = &[
    GENERATION_ID,
    PROMPT,
    COMPLETION,
    TOTAL_COST,
    INPUT_COST,
    OUTPUT_COST,
    LEGACY_COST,
];

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
    #[error("span {id}: attribute {key} = {value} is below zero; a cost cannot be negative, so the span is refused")]
    NegativeCost {
        id: String,
        key: &'static str,
        value: String,
    },
    #[error("span {id}: {detail}")]
    Overflow { id: String, detail: String },
}

/// One generation span of a Broadcast delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastSpan {
    /// The OpenRouter name of the key that paid (`trace.metadata.openrouter.api_key_name`).
    pub key_name: Option<String>,
    /// `openrouter.trace.id` (resource), else the span's `traceId`: for logs only.
    pub trace_id: Option<String>,
    /// `session.id`, when sent (not stored yet: the ledger has no session field).
    pub session_id: Option<String>,
    /// `None` when the span names no `gen-…` generation (see the module docs).
    pub event: Option<UsageEvent>,
}

/// Every span of the delivery that carries usage, with its event when it names a
/// generation. Nothing here decides whether the span is this client's: the caller
/// compares [`BroadcastSpan::key_name`] with its own key names.
pub fn parse_export(body: &[u8], org: &str) -> Result<Vec<BroadcastSpan>, OtlpError> {
    let ex: Export = serde_json::from_slice(body).map_err(|e| OtlpError::Shape(e.to_string()))?;
    let mut out = Vec::new();
    for rs in &ex.resource_spans {
        let resource_trace = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == TRACE_ID))
            .and_then(|kv| kv.value.text());
        for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            if let Some(s) = parse_span(span, resource_trace.as_deref(), org)? {
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn parse_span(
    span: &Span,
    resource_trace: Option<&str>,
    org: &str,
) -> Result<Option<BroadcastSpan>, OtlpError> {
    let attrs: HashMap<&str, &AnyValue> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.as_str(), &kv.value))
        .collect();
    if !USAGE_KEYS.iter().any(|k| attrs.contains_key(k)) {
        return Ok(None);
    }
    let get = |k: &str| attrs.get(k).and_then(|v| v.text());
    let first = |keys: &[&str]| keys.iter().find_map(|k| get(k)).filter(|v| !v.is_empty());
    let trace_id = resource_trace
        .map(str::to_owned)
        .or_else(|| span.trace_id.clone());
    let id = get(GENERATION_ID).filter(|id| id.starts_with("gen-"));
    let span_name = id
        .clone()
        .or_else(|| trace_id.clone())
        .unwrap_or_else(|| "without id".into());
    let number = |key: &'static str| -> Result<Option<Decimal>, OtlpError> {
        match get(key) {
            None => Ok(None),
            Some(t) => parse_decimal(&t)
                .map(Some)
                .map_err(|_| OtlpError::BadNumber {
                    id: span_name.clone(),
                    key,
                    value: t,
                }),
        }
    };
    let count = |key: &'static str| -> Result<u64, OtlpError> {
        match number(key)? {
            None => Ok(0),
            Some(d) => Some(d)
                .filter(|d| !d.is_sign_negative() && d.fract().is_zero())
                .and_then(|d| u64::try_from(d).ok())
                .ok_or(OtlpError::BadNumber {
                    id: span_name.clone(),
                    key,
                    value: d.to_string(),
                }),
        }
    };
    // A cost below zero is not a price: refused here, naming the attribute, rather than
    // summed into a negative event (fuzzing: input_cost -0.00036 + output_cost 0.0003).
    let amount = |key: &'static str| -> Result<Option<Decimal>, OtlpError> {
        match number(key)? {
            Some(d) if d.is_sign_negative() && !d.is_zero() => Err(OtlpError::NegativeCost {
                id: span_name.clone(),
                key,
                value: d.to_string(),
            }),
            other => Ok(other),
        }
    };
    let cost = match (
        amount(TOTAL_COST)?,
        amount(INPUT_COST)?,
        amount(OUTPUT_COST)?,
    ) {
        (Some(t), _, _) => Some(t),
        (None, Some(i), Some(o)) => Some(i.checked_add(o).ok_or_else(|| OtlpError::Overflow {
            id: span_name.clone(),
            detail: format!("input_cost {i} + output_cost {o} overflows"),
        })?),
        _ => amount(LEGACY_COST)?,
    };
    let tokens = Tokens {
        prompt: count(PROMPT)?,
        completion: count(COMPLETION)?,
        reasoning: count(REASONING)?,
        cached: count(CACHED)?,
    };
    let event = id.map(|id| UsageEvent {
        generation_id: id,
        org_id: org.to_owned(),
        user: UserRef {
            id: first(&[USER]),
            email: None,
            name: None,
        },
        model: first(MODEL_KEYS).unwrap_or_else(|| "unknown".into()),
        provider: None,
        tokens,
        cost_usd: cost.unwrap_or_default(),
        source: Source::Webhook,
        // Never confirmed: a trace is a copy that may be wrong (a cost from the older
        // attribute, a rounding, a replay), and a confirmed row would outrank the proxy's
        // record of the same generation. Provisional with its cost, it is counted at once
        // and reconciliation checks it against `GET /generation`, OpenRouter's own record.
        state: EventState::Provisional,
        context: Default::default(),
        created_at: unix_nanos(&span.end_time)
            .or_else(|| unix_nanos(&span.start_time))
            .unwrap_or_else(Utc::now),
    });
    Ok(Some(BroadcastSpan {
        key_name: first(KEY_NAME_KEYS),
        trace_id,
        session_id: first(&[SESSION]),
        event,
    }))
}

fn unix_nanos(raw: &Option<Box<RawValue>>) -> Option<DateTime<Utc>> {
    let ns: i64 = raw.as_ref()?.get().trim_matches('"').parse().ok()?;
    Utc.timestamp_opt(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_to_event_with_the_real_names() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"openrouter.trace.id","value":{"stringValue":"tr-1"}}]},"scopeSpans":[{"scope":{"name":"openrouter"},"spans":[{"traceId":"ab","name":"chat","endTimeUnixNano":"1767225601000000000","attributes":[{"key":"gen_ai.response.id","value":{"stringValue":"gen-1"}},{"key":"gen_ai.request.model","value":{"stringValue":"openai/gpt-4o-mini"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"1200"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":250}},{"key":"gen_ai.usage.input_tokens.cached","value":{"intValue":"100"}},{"key":"gen_ai.usage.output_tokens.reasoning","value":{"intValue":"7"}},{"key":"gen_ai.usage.total_cost","value":{"doubleValue":4.25e-6}},{"key":"user.id","value":{"stringValue":"u-1"}},{"key":"trace.metadata.openrouter.api_key_name","value":{"stringValue":"mai-acme"}}]},{"attributes":[{"key":"other","value":{"stringValue":"x"}}]}]}]}]}"#;
        let spans = parse_export(body, "acme").unwrap();
        assert_eq!(spans.len(), 1, "the structural span is no usage");
        let s = &spans[0];
        assert_eq!(s.key_name.as_deref(), Some("mai-acme"));
        assert_eq!(s.trace_id.as_deref(), Some("tr-1"));
        let e = s.event.as_ref().unwrap();
        assert_eq!(e.generation_id, "gen-1");
        assert_eq!(e.model, "openai/gpt-4o-mini");
        assert_eq!(
            (
                e.tokens.prompt,
                e.tokens.completion,
                e.tokens.cached,
                e.tokens.reasoning
            ),
            (1200, 250, 100, 7)
        );
        assert_eq!(e.cost_usd.to_string(), "0.00000425");
        assert_eq!(
            e.state,
            EventState::Provisional,
            "reconciliation checks it against /generation"
        );
        assert_eq!(e.user.id.as_deref(), Some("u-1"));
        assert_eq!(e.created_at.timestamp(), 1767225601);
    }

    fn one(attrs: &str) -> BroadcastSpan {
        let body = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"t9","attributes":[{attrs}]}}]}}]}}]}}"#
        );
        parse_export(body.as_bytes(), "a").unwrap().remove(0)
    }

    #[test]
    fn cost_falls_back_to_input_plus_output_then_the_legacy_name() {
        let s = one(
            r#"{"key":"gen_ai.response.id","value":{"stringValue":"gen-2"}},{"key":"gen_ai.usage.input_cost","value":{"doubleValue":0.1}},{"key":"gen_ai.usage.output_cost","value":{"doubleValue":0.2}},{"key":"gen_ai.usage.cost","value":{"doubleValue":9}}"#,
        );
        assert_eq!(s.event.unwrap().cost_usd.to_string(), "0.3");
        let s = one(
            r#"{"key":"gen_ai.response.id","value":{"stringValue":"gen-3"}},{"key":"gen_ai.usage.input_cost","value":{"doubleValue":0.1}},{"key":"gen_ai.usage.cost","value":{"doubleValue":0.00066}},{"key":"openrouter.api_key_name","value":{"stringValue":"k"}}"#,
        );
        assert_eq!(s.key_name.as_deref(), Some("k"));
        assert_eq!(s.event.unwrap().cost_usd.to_string(), "0.00066");
        let s = one(
            r#"{"key":"gen_ai.response.id","value":{"stringValue":"gen-4"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"3"}}"#,
        );
        assert_eq!(s.event.unwrap().state, EventState::Provisional);
    }

    #[test]
    fn a_negative_cost_refuses_the_span_naming_the_attribute() {
        // Found by the otlp_export fuzz target (seed regression-crash-7853f03b): a negative
        // input_cost summed into a negative event, which validation refused only later.
        for (key, other) in [
            (
                "gen_ai.usage.input_cost",
                r#",{"key":"gen_ai.usage.output_cost","value":{"doubleValue":0.0003}}"#,
            ),
            ("gen_ai.usage.total_cost", ""),
            ("gen_ai.usage.cost", ""),
        ] {
            let body = format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":[{{"key":"gen_ai.response.id","value":{{"stringValue":"gen-1"}}}},{{"key":"{key}","value":{{"doubleValue":-0.00036}}}}{other}]}}]}}]}}]}}"#
            );
            let e = parse_export(body.as_bytes(), "a").unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("-0.00036") && e.contains("below zero"),
                "{e}"
            );
        }
        // Zero is a price (a free model).
        let s = one(
            r#"{"key":"gen_ai.response.id","value":{"stringValue":"gen-5"}},{"key":"gen_ai.usage.total_cost","value":{"doubleValue":0}}"#,
        );
        assert!(s.event.unwrap().cost_usd.is_zero());
    }

    #[test]
    fn without_a_gen_id_no_event_is_made() {
        let s = one(
            r#"{"key":"gen_ai.usage.total_cost","value":{"doubleValue":0.5}},{"key":"gen_ai.response.id","value":{"stringValue":"chatcmpl-upstream"}}"#,
        );
        assert_eq!(s.trace_id.as_deref(), Some("t9"));
        assert!(s.event.is_none());
    }

    #[test]
    fn bad_shapes() {
        assert!(parse_export(b"not json", "a").is_err());
        assert!(parse_export(b"{}", "a").unwrap().is_empty());
        let bad = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"gen_ai.response.id","value":{"stringValue":"gen-1"}},{"key":"gen_ai.usage.total_cost","value":{"stringValue":"abc"}}]}]}]}]}"#;
        assert!(parse_export(bad, "a")
            .unwrap_err()
            .to_string()
            .contains("total_cost"));
        let neg = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"gen_ai.response.id","value":{"stringValue":"gen-1"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"-1"}}]}]}]}]}"#;
        assert!(parse_export(neg, "a").is_err());
    }
}
