//! Typed OpenRouter failures, with what a caller needs to decide on a retry.

use chrono::{TimeZone, Utc};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OpenRouterError {
    #[error("{0}")]
    Api(ApiError),
    #[error("could not reach OpenRouter for {endpoint} at {base}: {detail}; check OPENROUTER_BASE_URL and the network")]
    Transport {
        endpoint: String,
        base: String,
        detail: String,
        timeout: bool,
    },
    #[error("OpenRouter {endpoint} answered with a body we cannot read ({detail}); the API may have changed, report it")]
    Decode { endpoint: String, detail: String },
    #[error("OpenRouter client misconfigured: {detail}")]
    Config { detail: String },
}

impl OpenRouterError {
    /// Worth retrying later: 408/429/5xx, timeouts, connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            OpenRouterError::Api(a) => a.is_retryable(),
            OpenRouterError::Transport { .. } => true,
            _ => false,
        }
    }

    /// The server's requested wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OpenRouterError::Api(a) => a.retry_after,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            OpenRouterError::Api(a) => Some(a.status),
            _ => None,
        }
    }

    /// Spending refusals (spec 7.2): the key's own cap, or the account's credits.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            OpenRouterError::Api(a) => a.refusal(),
            _ => None,
        }
    }
}

/// Why OpenRouter refuses to spend (spec 7.2). The two need different people to act: a
/// key's cap is ours (the fleet file's monthly limit sets it), the account's credits
/// are topped up on openrouter.ai. The docs still describe 402 for a key out of
/// credits, but real traffic answers the key cap with 403 "Key limit exceeded (… limit)"
/// and the account balance with 402, so the message decides before the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `"Key limit exceeded (monthly limit)"`: `window` is `daily`, `weekly`, `monthly`
    /// or `total` as the message names it (`None` when it names none).
    KeyLimitExceeded { window: Option<String> },
    /// 402 `"Insufficient credits"`, or the `"requires more credits, or fewer
    /// max_tokens"` pre-check: the account balance, shared by every key.
    AccountOutOfCredits,
}

impl Refusal {
    /// What to do, for status pages and alerts.
    pub fn advice(&self) -> &'static str {
        match self {
            Refusal::KeyLimitExceeded { .. } => {
                "the key's own spending cap is spent: raise the client's monthly limit in the fleet file (the key's cap follows it) or the key's limit on openrouter.ai"
            }
            Refusal::AccountOutOfCredits => {
                "the OpenRouter account is out of credits (every client's key stops): top up at openrouter.ai/credits"
            }
        }
    }
}

/// Classifies an error reply by its message first, then its status (see [`Refusal`]).
/// `None` for every other error (a 403 from moderation or a missing management key is
/// not a spending refusal).
pub fn classify_refusal(status: u16, message: &str) -> Option<Refusal> {
    let lower = message.to_ascii_lowercase();
    if let Some(at) = lower.find("key limit exceeded") {
        let rest = &lower[at + "key limit exceeded".len()..];
        let window = rest
            .trim_start()
            .strip_prefix('(')
            .and_then(|r| r.split_once(" limit)"))
            .map(|(w, _)| w.trim().to_owned())
            .filter(|w| !w.is_empty());
        return Some(Refusal::KeyLimitExceeded { window });
    }
    if status == 402
        || lower.contains("insufficient credits")
        || lower.contains("requires more credits")
    {
        return Some(Refusal::AccountOutOfCredits);
    }
    None
}

/// A non-2xx answer, decoded from the `{"error":{"code","message","metadata"}}` envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub endpoint: String,
    pub status: u16,
    pub message: String,
    /// `error.metadata.error_type` (section 7.3), when given.
    pub error_type: Option<String>,
    /// From `Retry-After` (seconds), `metadata.retry_after_seconds`, or the
    /// `X-RateLimit-Reset` epoch-milliseconds stamp, in that order.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OpenRouter {} answered HTTP {}: {}",
            self.endpoint, self.status, self.message
        )?;
        if let Some(r) = self.refusal() {
            write!(f, "; {}", r.advice())?;
            if let Some(ra) = self.retry_after {
                write!(f, " (retry after {} s)", ra.as_secs())?;
            }
            return Ok(());
        }
        let hint = match self.status {
            401 => "; the key is unknown, disabled or expired: check OPENROUTER_API_KEY",
            403 => "; this call needs a management key (OPENROUTER_PROVISIONING_KEY)",
            404 => "; not found (generation stats can lag a few seconds: retry later)",
            408 | 429 | 500..=599 => "; temporary, retry later",
            _ => "",
        };
        f.write_str(hint)?;
        if let Some(ra) = self.retry_after {
            write!(f, " (retry after {} s)", ra.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

impl ApiError {
    pub fn from_response(
        endpoint: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> ApiError {
        let env: Option<Envelope> = serde_json::from_slice(body).ok();
        let message = env
            .as_ref()
            .and_then(|e| e.error.message.clone())
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP {status} with an empty body")
                } else {
                    text.chars().take(200).collect()
                }
            });
        let metadata = env.as_ref().and_then(|e| e.error.metadata.as_ref());
        let error_type = metadata
            .and_then(|m| m.get("error_type"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs)
            .or_else(|| {
                metadata
                    .and_then(|m| m.get("retry_after_seconds"))
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .map(Duration::from_secs)
            })
            .or_else(|| {
                let ms: i64 = header("x-ratelimit-reset")?.parse().ok()?;
                let at = Utc.timestamp_millis_opt(ms).single()?;
                Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            });
        ApiError {
            endpoint: endpoint.to_owned(),
            status,
            message,
            error_type,
            retry_after,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.status, 408 | 429 | 500..=599)
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }

    /// See [`classify_refusal`].
    pub fn refusal(&self) -> Option<Refusal> {
        classify_refusal(self.status, &self.message)
    }
}
