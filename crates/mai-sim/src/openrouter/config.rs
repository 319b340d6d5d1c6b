//! Simulator configuration: the knobs tests and the CLI turn, the default price table,
//! and the `--keys` / `--prices` TOML files.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::faults::FaultRule;

/// `generation_ready_delay` value meaning "GET /generation never finds anything".
pub const NEVER: Duration = Duration::MAX;

/// Everything the simulator can be told at start. Start from `SimConfig::default()`
/// (realistic small delays) or `SimConfig::fast()` (load tests) and set fields.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds ids, token counts, generated keys: same seed + same requests = same output.
    pub seed: u64,
    /// How long after completion `GET /generation` keeps answering 404 (spec 2.2).
    /// `Duration::ZERO` = at once, [`NEVER`] = always 404.
    pub generation_ready_delay: Duration,
    /// Keys known at start (the `--keys` file).
    pub keys: Vec<KeySpec>,
    /// Accept any well-formed unknown inference key and register it on first use.
    /// The CLI turns this off when `--keys` is given.
    pub accept_any_key: bool,
    /// A management key, registered at start in addition to `keys`.
    pub management_key: Option<String>,
    /// `: OPENROUTER PROCESSING` comment lines in streams.
    pub keepalive: KeepAlive,
    /// Delay before the first content byte (stream) or before the reply (non-stream).
    pub first_token_delay: Duration,
    /// Delay between two content chunks of a stream.
    pub chunk_interval: Duration,
    /// Shape of the stream's usage chunk.
    pub usage_chunk: UsageChunkShape,
    /// Write money values strictly below this (and non-zero) in exponent form, e.g.
    /// `4.25e-6`, so clients are tested against it. `None` = always plain decimals.
    pub exponent_below: Option<Decimal>,
    /// Credits ever bought by the account (USD); balance = this - all usage.
    pub total_credits: Decimal,
    /// Who may call `GET /credits`.
    pub credits_auth: CreditsAuth,
    /// Price table, also served by `GET /models`.
    pub models: Vec<ModelSpec>,
    /// OpenRouter's fee on BYOK requests, as a fraction of the upstream cost.
    pub byok_fee_rate: Decimal,
    /// Range of completion tokens a request produces when it has no `max_tokens` cap.
    pub completion_tokens: (u32, u32),
    /// Bill the full completion when a stream is aborted (providers without
    /// cancellation, spec 1.6) instead of the tokens sent so far.
    pub cancel_bills_full: bool,
    /// Account owner id, shown as `user_id` in error bodies and `creator_user_id`.
    pub user_id: String,
    /// Free-model limiter (spec 7.4): requests per minute per account.
    pub free_requests_per_minute: u32,
    /// Free-model limiter: requests per UTC day; `None` = 50 below 10 USD of credits, else 1000.
    pub free_requests_per_day: Option<u32>,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            generation_ready_delay: Duration::from_millis(300),
            keys: Vec::new(),
            accept_any_key: true,
            management_key: None,
            keepalive: KeepAlive {
                leading: 2,
                interval: Duration::from_millis(5),
                every_events: 0,
            },
            first_token_delay: Duration::from_millis(5),
            chunk_interval: Duration::from_millis(1),
            usage_chunk: UsageChunkShape::Captured,
            exponent_below: None,
            total_credits: Decimal::from(1000),
            credits_auth: CreditsAuth::Any,
            models: default_models(),
            byok_fee_rate: Decimal::new(5, 2),
            completion_tokens: (16, 96),
            cancel_bills_full: false,
            user_id: "user_2simSIMsimSIMsimSIMsimSIM".to_string(),
            free_requests_per_minute: 20,
            free_requests_per_day: None,
            faults: Vec::new(),
        }
    }
}

impl SimConfig {
    /// No delays and no keep-alive comments: for benchmarks and fast tests.
    pub fn fast() -> Self {
        SimConfig {
            generation_ready_delay: Duration::ZERO,
            keepalive: KeepAlive {
                leading: 0,
                interval: Duration::ZERO,
                every_events: 0,
            },
            first_token_delay: Duration::ZERO,
            chunk_interval: Duration::ZERO,
            ..SimConfig::default()
        }
    }

    /// Loads the `--keys` file and switches to "only these keys".
    pub fn load_keys_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        let file = parse_keys_toml(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        if let Some(m) = file.0 {
            self.management_key = Some(m);
        }
        self.keys.extend(file.1);
        self.accept_any_key = false;
        Ok(())
    }

    /// Replaces the price table with the `--prices` file.
    pub fn load_prices_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        self.models = parse_prices_toml(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        Ok(())
    }
}

/// Errors loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}; check the path and permissions")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Keep-alive comment lines (`: OPENROUTER PROCESSING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Comments before the first data event (a queued free model sent 17 in one capture).
    pub leading: u32,
    /// Pause after each comment.
    pub interval: Duration,
    /// Also one comment after every N data events; 0 = never.
    pub every_events: u32,
}

/// Shape of the final usage chunk of a stream (spec 1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageChunkShape {
    /// As captured live: one choice with an empty delta and `finish_reason: null`.
    Captured,
    /// As the docs say: `choices: []`.
    EmptyChoices,
}

/// Who may call `GET /credits` (spec 4: the docs and live behaviour disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditsAuth {
    /// Inference and management keys.
    Any,
    /// Management keys only; others get 403.
    ManagementOnly,
}

/// Window of a key's spending cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
}

impl LimitReset {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }
}

impl FromStr for LimitReset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "daily" => Ok(LimitReset::Daily),
            "weekly" => Ok(LimitReset::Weekly),
            "monthly" => Ok(LimitReset::Monthly),
            other => Err(format!(
                "limit_reset `{other}` is not one of daily, weekly, monthly"
            )),
        }
    }
}

/// A key known to the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpec {
    /// Full key string, `sk-or-v1-` + 64 lowercase hex.
    pub key: String,
    pub name: String,
    /// Spending cap in USD; `None` = no cap.
    pub limit: Option<Decimal>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: bool,
    pub disabled: bool,
    /// A management (provisioning) key: admin endpoints only, no completions.
    pub management: bool,
    /// Requests with this key are BYOK: `cost` is only OpenRouter's fee.
    pub byok: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// The key's workspace; `None` = the account's default workspace
    /// ([`DEFAULT_WORKSPACE_ID`]). `GET /keys` lists only the default one unless asked.
    pub workspace_id: Option<String>,
}

/// The default workspace's id (a UUID like every workspace id, spec 6.1).
pub const DEFAULT_WORKSPACE_ID: &str = "00000000-0000-4000-8000-000000000000";

impl KeySpec {
    /// An enabled inference key without a cap, named after its masked label.
    pub fn new(key: impl Into<String>) -> Self {
        let key = key.into();
        KeySpec {
            name: mask_key(&key),
            key,
            limit: None,
            limit_reset: None,
            include_byok_in_limit: false,
            disabled: false,
            management: false,
            byok: false,
            expires_at: None,
            workspace_id: None,
        }
    }

    /// Same key as a management key.
    pub fn management(key: impl Into<String>) -> Self {
        KeySpec {
            management: true,
            ..KeySpec::new(key)
        }
    }
}

/// True for `sk-or-v1-` followed by exactly 64 lowercase hex digits.
pub fn is_well_formed_key(key: &str) -> bool {
    key.strip_prefix("sk-or-v1-").is_some_and(|rest| {
        rest.len() == 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `sk-or-v1-3f9...a12`, the `label` OpenRouter shows for a key.
pub fn mask_key(key: &str) -> String {
    match key.strip_prefix("sk-or-v1-") {
        Some(rest) if rest.len() >= 6 && rest.is_ascii() => {
            format!("sk-or-v1-{}...{}", &rest[..3], &rest[rest.len() - 3..])
        }
        _ => "sk-or-v1-...".to_string(),
    }
}

/// One priced model endpoint. Prices are USD per token (per request for `request`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub id: String,
    /// Dated permanent slug (`model_permaslug` in /activity).
    pub canonical_slug: String,
    pub name: String,
    /// Display name of the upstream provider that serves it.
    pub provider: String,
    pub context_length: u32,
    pub prompt: Decimal,
    pub completion: Decimal,
    pub request: Decimal,
    pub input_cache_read: Option<Decimal>,
    pub input_cache_write: Option<Decimal>,
    /// Fraction taken off the cost (e.g. 0.01 for the prompt-logging discount).
    pub discount: Decimal,
    /// Produces reasoning tokens (part of completion tokens).
    pub reasoning: bool,
}

impl ModelSpec {
    pub fn new(id: &str, provider: &str, prompt: &str, completion: &str) -> Self {
        ModelSpec {
            id: id.to_string(),
            canonical_slug: id.to_string(),
            name: id.to_string(),
            provider: provider.to_string(),
            context_length: 128_000,
            prompt: Decimal::from_str(prompt).expect("literal price"),
            completion: Decimal::from_str(completion).expect("literal price"),
            request: Decimal::ZERO,
            input_cache_read: None,
            input_cache_write: None,
            discount: Decimal::ZERO,
            reasoning: false,
        }
    }

    /// Free variants (`:free`) and zero prices.
    pub fn is_free(&self) -> bool {
        self.id.ends_with(":free")
            || (self.prompt.is_zero() && self.completion.is_zero() && self.request.is_zero())
    }
}

/// A small realistic table; prices as OpenRouter listed them in 2026.
pub fn default_models() -> Vec<ModelSpec> {
    let d = |s: &str| Decimal::from_str(s).expect("literal price");
    let mut mini = ModelSpec::new("openai/gpt-4o-mini", "OpenAI", "0.00000015", "0.0000006");
    mini.canonical_slug = "openai/gpt-4o-mini-2024-07-18".into();
    mini.name = "OpenAI: GPT-4o-mini".into();
    mini.input_cache_read = Some(d("0.000000075"));

    let mut deepseek = ModelSpec::new(
        "deepseek/deepseek-chat-v3-0324",
        "DeepInfra",
        "0.0000003",
        "0.0000012",
    );
    deepseek.name = "DeepSeek: DeepSeek V3 0324".into();
    deepseek.context_length = 163_840;

    let mut sonnet = ModelSpec::new(
        "anthropic/claude-3.5-sonnet",
        "Anthropic",
        "0.000003",
        "0.000015",
    );
    sonnet.canonical_slug = "anthropic/claude-3.5-sonnet-20241022".into();
    sonnet.name = "Anthropic: Claude 3.5 Sonnet".into();
    sonnet.context_length = 200_000;
    sonnet.input_cache_read = Some(d("0.0000003"));
    sonnet.input_cache_write = Some(d("0.00000375"));

    let mut flash = ModelSpec::new(
        "google/gemini-2.5-flash",
        "Google AI Studio",
        "0.0000003",
        "0.0000025",
    );
    flash.name = "Google: Gemini 2.5 Flash".into();
    flash.context_length = 1_048_576;
    flash.input_cache_read = Some(d("0.000000075"));
    flash.reasoning = true;

    let mut llama = ModelSpec::new(
        "meta-llama/llama-3.3-70b-instruct",
        "DeepInfra",
        "0.00000013",
        "0.0000004",
    );
    llama.name = "Meta: Llama 3.3 70B Instruct".into();
    llama.discount = d("0.01");

    let mut free = ModelSpec::new("meta-llama/llama-3.3-70b-instruct:free", "Venice", "0", "0");
    free.name = "Meta: Llama 3.3 70B Instruct (free)".into();
    free.canonical_slug = "meta-llama/llama-3.3-70b-instruct".into();

    vec![mini, deepseek, sonnet, flash, llama, free]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    management_key: Option<String>,
    #[serde(default)]
    key: Vec<KeyEntryToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntryToml {
    key: String,
    name: Option<String>,
    limit: Option<toml::Value>,
    limit_reset: Option<String>,
    #[serde(default)]
    include_byok_in_limit: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    management: bool,
    #[serde(default)]
    byok: bool,
    expires_at: Option<String>,
}

/// Money in TOML: a string (`"12.50"`) or an integer, never a float (binary rounding).
fn toml_money(v: &toml::Value, what: &str) -> Result<Decimal, String> {
    match v {
        toml::Value::String(s) => Decimal::from_str(s)
            .or_else(|_| Decimal::from_scientific(s))
            .map_err(|_| format!("{what} `{s}` is not a decimal number")),
        toml::Value::Integer(i) => Ok(Decimal::from(*i)),
        other => Err(format!(
            "{what} must be a string like \"12.50\" or an integer, got `{other}` (floats are not exact)"
        )),
    }
}

fn parse_keys_toml(text: &str) -> Result<(Option<String>, Vec<KeySpec>), String> {
    let file: KeysFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if let Some(m) = &file.management_key {
        if !is_well_formed_key(m) {
            return Err("management_key must be sk-or-v1- followed by 64 lowercase hex".into());
        }
    }
    let mut out = Vec::new();
    for (i, e) in file.key.into_iter().enumerate() {
        if !is_well_formed_key(&e.key) {
            return Err(format!(
                "[[key]] #{}: key must be sk-or-v1- followed by 64 lowercase hex",
                i + 1
            ));
        }
        let mut spec = KeySpec::new(e.key);
        if let Some(n) = e.name {
            spec.name = n;
        }
        spec.limit = e
            .limit
            .as_ref()
            .map(|v| toml_money(v, "limit"))
            .transpose()
            .map_err(|m| format!("[[key]] #{}: {m}", i + 1))?;
        spec.limit_reset = e
            .limit_reset
            .as_deref()
            .map(LimitReset::from_str)
            .transpose()
            .map_err(|m| format!("[[key]] #{}: {m}", i + 1))?;
        spec.include_byok_in_limit = e.include_byok_in_limit;
        spec.disabled = e.disabled;
        spec.management = e.management;
        spec.byok = e.byok;
        spec.expires_at = e
            .expires_at
            .as_deref()
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|err| format!("[[key]] #{}: expires_at `{s}`: {err}", i + 1))
            })
            .transpose()?;
        out.push(spec);
    }
    Ok((file.management_key, out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesFile {
    model: Vec<ModelToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelToml {
    id: String,
    provider: String,
    prompt: String,
    completion: String,
    canonical_slug: Option<String>,
    name: Option<String>,
    context_length: Option<u32>,
    request: Option<String>,
    input_cache_read: Option<String>,
    input_cache_write: Option<String>,
    discount: Option<String>,
    #[serde(default)]
    reasoning: bool,
}

fn price(s: &str, what: &str, model: &str) -> Result<Decimal, String> {
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| format!("model {model}: {what} `{s}` is not a decimal string"))
}

fn parse_prices_toml(text: &str) -> Result<Vec<ModelSpec>, String> {
    let file: PricesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.model.is_empty() {
        return Err("no [[model]] entries".into());
    }
    file.model
        .into_iter()
        .map(|m| {
            let id = m.id.clone();
            Ok(ModelSpec {
                canonical_slug: m.canonical_slug.unwrap_or_else(|| id.clone()),
                name: m.name.unwrap_or_else(|| id.clone()),
                provider: m.provider,
                context_length: m.context_length.unwrap_or(128_000),
                prompt: price(&m.prompt, "prompt", &id)?,
                completion: price(&m.completion, "completion", &id)?,
                request: m
                    .request
                    .map(|s| price(&s, "request", &id))
                    .transpose()?
                    .unwrap_or_default(),
                input_cache_read: m
                    .input_cache_read
                    .map(|s| price(&s, "input_cache_read", &id))
                    .transpose()?,
                input_cache_write: m
                    .input_cache_write
                    .map(|s| price(&s, "input_cache_write", &id))
                    .transpose()?,
                discount: m
                    .discount
                    .map(|s| price(&s, "discount", &id))
                    .transpose()?
                    .unwrap_or_default(),
                reasoning: m.reasoning,
                id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn key_format_and_mask() {
        assert!(is_well_formed_key(K));
        assert!(!is_well_formed_key(&K.to_uppercase()));
        assert!(!is_well_formed_key(&K[..K.len() - 1]));
        assert_eq!(mask_key(K), "sk-or-v1-012...def");
    }

    #[test]
    fn keys_file_parses_money_exactly_and_rejects_floats() {
        let text = format!(
            "[[key]]\nkey = \"{K}\"\nname = \"acme\"\nlimit = \"12.35\"\nlimit_reset = \"weekly\"\nexpires_at = \"2027-01-01T00:00:00Z\"\n"
        );
        let (m, keys) = parse_keys_toml(&text).unwrap();
        assert!(m.is_none());
        assert_eq!(keys[0].limit, Some(Decimal::new(1235, 2)));
        assert_eq!(keys[0].limit_reset, Some(LimitReset::Weekly));
        let bad = format!("[[key]]\nkey = \"{K}\"\nlimit = 12.35\n");
        assert!(parse_keys_toml(&bad).unwrap_err().contains("floats"));
    }

    #[test]
    fn prices_file_parses() {
        let text = "[[model]]\nid = \"x/y\"\nprovider = \"P\"\nprompt = \"0.0000003\"\ncompletion = \"1.2e-6\"\n";
        let models = parse_prices_toml(text).unwrap();
        assert_eq!(models[0].completion, Decimal::new(12, 7));
    }
}
