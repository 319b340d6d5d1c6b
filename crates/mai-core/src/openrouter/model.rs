//! Response and request shapes of OpenRouter's accounting endpoints (spec sections 2–6).
//!
//! Every field the spec marks optional or "added later" is `Option` or defaulted, and
//! unknown fields are ignored: OpenRouter adds fields often and live replies sometimes
//! lack documented ones.

use super::number;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `GET /generation?id=` stats of one generation (the `data` object).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GenerationStats {
    pub id: String,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub provider_name: Option<String>,
    #[serde(default)]
    pub api_type: Option<String>,
    #[serde(default)]
    pub streamed: Option<bool>,
    #[serde(default)]
    pub cancelled: Option<bool>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, deserialize_with = "number::count_opt")]
    pub tokens_prompt: Option<u64>,
    #[serde(default, deserialize_with = "number::count_opt")]
    pub tokens_completion: Option<u64>,
    /// Provider-native counts: the billed ones, equal to the chat `usage` counts.
    #[serde(default, deserialize_with = "number::count_opt")]
    pub native_tokens_prompt: Option<u64>,
    #[serde(default, deserialize_with = "number::count_opt")]
    pub native_tokens_completion: Option<u64>,
    #[serde(default, deserialize_with = "number::count_opt")]
    pub native_tokens_reasoning: Option<u64>,
    #[serde(default, deserialize_with = "number::count_opt")]
    pub native_tokens_cached: Option<u64>,
    /// What left the credits; bill from this.
    #[serde(deserialize_with = "number::decimal")]
    pub total_cost: Decimal,
    /// A number here (USD), unlike the chat `usage` object.
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub upstream_inference_cost: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub cache_discount: Option<Decimal>,
    #[serde(default)]
    pub is_byok: Option<bool>,
    #[serde(default)]
    pub external_user: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `GET /key`: the calling key's limits and usage counters (UTC windows).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KeyInfo {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub limit: Option<Decimal>,
    #[serde(default)]
    pub limit_reset: Option<String>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub limit_remaining: Option<Decimal>,
    #[serde(default)]
    pub include_byok_in_limit: Option<bool>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage_daily: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage_weekly: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage_monthly: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub byok_usage: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub byok_usage_daily: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub byok_usage_monthly: Option<Decimal>,
    #[serde(default)]
    pub is_free_tier: Option<bool>,
    #[serde(default)]
    pub is_management_key: Option<bool>,
    #[serde(default)]
    pub is_provisioning_key: Option<bool>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeyInfo {
    /// True for a management (formerly "provisioning") key, under either field name.
    pub fn is_management(&self) -> bool {
        self.is_management_key.unwrap_or(false) || self.is_provisioning_key.unwrap_or(false)
    }
}

/// `GET /credits`: account-wide totals. Balance = credits − usage (no balance field exists).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Credits {
    #[serde(deserialize_with = "number::decimal")]
    pub total_credits: Decimal,
    #[serde(deserialize_with = "number::decimal")]
    pub total_usage: Decimal,
}

impl Credits {
    pub fn balance(&self) -> Decimal {
        self.total_credits - self.total_usage
    }
}

/// One `GET /activity` row: one UTC day × model endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ActivityRow {
    /// The UTC day. Live replies write it `"2026-08-23 00:00:00"`, the OpenAPI example
    /// `"2026-08-23"`: both are read (spec 5), see [`activity_date`].
    #[serde(deserialize_with = "activity_date")]
    pub date: NaiveDate,
    pub model: String,
    #[serde(default)]
    pub model_permaslug: Option<String>,
    #[serde(default)]
    pub endpoint_id: Option<String>,
    #[serde(default)]
    pub provider_name: Option<String>,
    #[serde(deserialize_with = "number::decimal")]
    pub usage: Decimal,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub byok_usage_inference: Option<Decimal>,
    #[serde(default, deserialize_with = "number::count")]
    pub requests: u64,
    #[serde(default, deserialize_with = "number::count")]
    pub prompt_tokens: u64,
    #[serde(default, deserialize_with = "number::count")]
    pub completion_tokens: u64,
    #[serde(default, deserialize_with = "number::count")]
    pub reasoning_tokens: u64,
}

/// Reads an `/activity` `date`: the first 10 characters are the UTC day (`YYYY-MM-DD`,
/// validated); what follows, if anything, must be a time of day separated by a space or
/// `T` (live replies append ` 00:00:00`). Anything else is refused rather than guessed.
pub fn parse_activity_date(s: &str) -> Result<NaiveDate, String> {
    let bad = || format!("activity date {s:?} is neither YYYY-MM-DD nor YYYY-MM-DD HH:MM:SS");
    let day = s.get(..10).ok_or_else(bad)?;
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
    let rest = &s[10..];
    if !rest.is_empty() {
        let time = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('T'))
            .ok_or_else(bad)?;
        let hms = time.get(..8).ok_or_else(bad)?;
        chrono::NaiveTime::parse_from_str(hms, "%H:%M:%S").map_err(|_| bad())?;
    }
    Ok(date)
}

fn activity_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let s = String::deserialize(d)?;
    parse_activity_date(&s).map_err(serde::de::Error::custom)
}

/// A key as the management API returns it (never the plaintext key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiKey {
    pub hash: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub limit: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub limit_remaining: Option<Decimal>,
    #[serde(default)]
    pub limit_reset: Option<String>,
    #[serde(default)]
    pub include_byok_in_limit: Option<bool>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage_daily: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage_weekly: Option<Decimal>,
    #[serde(default, deserialize_with = "number::decimal_opt")]
    pub usage_monthly: Option<Decimal>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub workspace_id: Option<String>,
}

/// A plaintext OpenRouter key. `Debug`/`Display` show only the masked label, so it can
/// sit in structs that get logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    /// The plaintext; only for the `Authorization` header or handing over to a container.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn label(&self) -> String {
        super::mask_key(&self.0)
    }
    /// The key's `hash` in the management API and `/activity`'s `api_key_hash`: the
    /// SHA-256 of the key string, lowercase hex (spec 6.1). Whoever holds a key can
    /// address it with `GET/PATCH /keys/{hash}` without listing (and so in any
    /// workspace) and without matching labels, which may repeat.
    pub fn hash(&self) -> String {
        key_hash(&self.0)
    }
}

/// SHA-256 hex of a key string: OpenRouter's identifier of that key (see
/// [`SecretKey::hash`]). The hash is not secret (it cannot give the key back).
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.label())
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// `POST /keys` reply: the plaintext is shown here once and never again.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: SecretKey,
    pub info: ApiKey,
}

/// `POST /keys` body.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateKeyRequest {
    pub name: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "number::serialize_decimal_opt"
    )]
    pub limit: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_reset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_byok_in_limit: Option<bool>,
    /// Must be UTC; the API rejects other offsets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The workspace the key belongs to; absent = the account's default workspace. A
    /// rotated key is created in its predecessor's workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

/// `PATCH /keys/{hash}` body; only the set fields change. `limit: Some(None)` clears the cap.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateKeyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_limit_patch"
    )]
    pub limit: Option<Option<Decimal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_reset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_byok_in_limit: Option<bool>,
}

fn serialize_limit_patch<S: serde::Serializer>(
    v: &Option<Option<Decimal>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    number::serialize_decimal_opt(&v.flatten(), s)
}
