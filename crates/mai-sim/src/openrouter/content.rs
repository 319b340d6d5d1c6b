//! Deterministic "model output": token counts and text derived from the seed and the
//! request alone, so the same request gives the same numbers in any order.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::config::ModelSpec;
use super::pricing::TokenCounts;

/// The request fields the simulator reads; everything else is accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ChatRequest {
    pub model: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    pub messages: Option<Vec<Message>>,
    /// Legacy completion-style prompt.
    pub prompt: Option<String>,
    #[serde(default)]
    pub stream: bool,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub user: Option<String>,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Message {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}

impl ChatRequest {
    pub fn cap(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    fn texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.prompt {
            out.push(p.clone());
        }
        for m in self.messages.iter().flatten() {
            let mut s = m.role.clone().unwrap_or_default();
            s.push('\u{1f}');
            match &m.content {
                Some(serde_json::Value::String(t)) => s.push_str(t),
                Some(serde_json::Value::Array(parts)) => {
                    for p in parts {
                        if let Some(t) = p.get("text").and_then(|t| t.as_str()) {
                            s.push_str(t);
                        }
                    }
                }
                _ => {}
            }
            out.push(s);
        }
        out
    }

    /// Prompt tokens from text length: ~4 characters per token plus per-message overhead.
    pub fn prompt_tokens(&self) -> u32 {
        let texts = self.texts();
        let body: usize = texts
            .iter()
            .map(|t| 4 + t.chars().count().saturating_sub(1).div_ceil(4))
            .sum();
        (3 + body).min(u32::MAX as usize) as u32
    }
}

/// Token counts forced by a test (`X-Sim-Usage: prompt=1200;completion=250;reasoning=0;cached=0;cache_write=0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageOverride {
    pub prompt: Option<u32>,
    pub completion: Option<u32>,
    pub reasoning: Option<u32>,
    pub cached: Option<u32>,
    pub cache_write: Option<u32>,
}

impl std::str::FromStr for UsageOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut o = UsageOverride::default();
        for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("X-Sim-Usage item `{item}` is not name=number"))?;
            let n: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("X-Sim-Usage `{k}` needs a whole number, got `{v}`"))?;
            match k.trim() {
                "prompt" => o.prompt = Some(n),
                "completion" => o.completion = Some(n),
                "reasoning" => o.reasoning = Some(n),
                "cached" => o.cached = Some(n),
                "cache_write" => o.cache_write = Some(n),
                other => return Err(format!("X-Sim-Usage: unknown item `{other}`")),
            }
        }
        Ok(o)
    }
}

/// What the simulated model produced for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    pub tokens: TokenCounts,
    /// Content pieces (one stream chunk each) and the tokens each holds.
    pub pieces: Vec<(String, u32)>,
    pub finish_reason: &'static str,
}

impl Completion {
    pub fn text(&self) -> String {
        self.pieces.iter().map(|p| p.0.as_str()).collect()
    }
}

const WORDS: &[&str] = &[
    "the", "invoice", "model", "answer", "is", "ready", "and", "each", "client", "pays", "for",
    "what", "it", "used", "today", "Warsaw", "rate", "token", "stream", "cost", "simple", "exact",
    "report", "month", "key", "limit", "proxy", "counts", "every", "request", "well",
];

/// Plans the completion for `req`; `one_token_chunks` for slow-drip streams.
pub(crate) fn plan(
    seed: u64,
    req: &ChatRequest,
    model: &ModelSpec,
    range: (u32, u32),
    forced: UsageOverride,
    one_token_chunks: bool,
) -> Completion {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(model.id.as_bytes());
    for t in req.texts() {
        h.update(t.as_bytes());
        h.update([0u8]);
    }
    h.update(req.cap().unwrap_or(u32::MAX).to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(h.finalize().into());

    let prompt = forced.prompt.unwrap_or_else(|| req.prompt_tokens());
    let (lo, hi) = (range.0.min(range.1), range.0.max(range.1));
    let natural = rng.gen_range(lo..=hi).max(1);
    let (mut completion, mut finish) = match req.cap() {
        Some(cap) if natural > cap => (cap, "length"),
        _ => (natural, "stop"),
    };
    if let Some(c) = forced.completion {
        completion = c;
        finish = "stop";
    }
    let reasoning = forced.reasoning.unwrap_or_else(|| {
        if model.reasoning && completion > 1 {
            rng.gen_range(0..=completion / 3)
        } else {
            0
        }
    });
    let cached = forced.cached.unwrap_or_else(|| {
        if model.input_cache_read.is_some() && prompt >= 1024 && rng.gen_bool(0.5) {
            prompt / 2 / 64 * 64
        } else {
            0
        }
    });
    let cache_write = forced.cache_write.unwrap_or(0);

    let content_tokens = completion.saturating_sub(reasoning);
    let mut pieces = Vec::new();
    let mut left = content_tokens;
    let mut first = true;
    while left > 0 {
        let n = if one_token_chunks {
            1
        } else {
            rng.gen_range(1..=4u32).min(left)
        };
        let mut s = String::new();
        for _ in 0..n {
            if !first {
                s.push(' ');
            }
            first = false;
            s.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
        }
        pieces.push((s, n));
        left -= n;
    }
    if pieces.is_empty() {
        pieces.push((String::new(), 0));
    }
    Completion {
        tokens: TokenCounts {
            prompt,
            completion,
            reasoning,
            cached,
            cache_write,
        },
        pieces,
        finish_reason: finish,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str, cap: Option<u32>) -> ChatRequest {
        ChatRequest {
            messages: Some(vec![Message {
                role: Some("user".into()),
                content: Some(serde_json::Value::String(text.into())),
            }]),
            max_tokens: cap,
            ..Default::default()
        }
    }

    #[test]
    fn same_seed_same_request_same_completion() {
        let m = ModelSpec::new("a/b", "P", "0.000001", "0.000002");
        let a = plan(
            7,
            &req("hello there", None),
            &m,
            (16, 96),
            UsageOverride::default(),
            false,
        );
        let b = plan(
            7,
            &req("hello there", None),
            &m,
            (16, 96),
            UsageOverride::default(),
            false,
        );
        let c = plan(
            8,
            &req("hello there", None),
            &m,
            (16, 96),
            UsageOverride::default(),
            false,
        );
        assert_eq!(a, b);
        assert_ne!(a.pieces, c.pieces);
        let tokens: u32 = a.pieces.iter().map(|p| p.1).sum();
        assert_eq!(tokens, a.tokens.completion - a.tokens.reasoning);
    }

    #[test]
    fn max_tokens_caps_with_length() {
        let m = ModelSpec::new("a/b", "P", "0.000001", "0.000002");
        let c = plan(
            1,
            &req("x", Some(3)),
            &m,
            (16, 96),
            UsageOverride::default(),
            true,
        );
        assert_eq!(c.tokens.completion, 3);
        assert_eq!(c.finish_reason, "length");
        assert_eq!(c.pieces.len(), 3);
    }

    #[test]
    fn prompt_tokens_grow_with_text() {
        assert!(req(&"a".repeat(4000), None).prompt_tokens() > 1000);
        assert_eq!(req("", None).prompt_tokens(), 3 + 4 + 1);
    }

    #[test]
    fn usage_override_parses() {
        let o: UsageOverride = "prompt=1200;completion=250".parse().unwrap();
        assert_eq!(o.prompt, Some(1200));
        assert!("prompt=x".parse::<UsageOverride>().is_err());
    }
}
