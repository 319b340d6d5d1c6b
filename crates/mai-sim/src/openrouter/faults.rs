//! Fault injection: the `X-Sim-Fault` grammar and rules scoped by endpoint, key and rate.
//!
//! Grammar (header `X-Sim-Fault`, `fault` field of `POST /__sim/faults`, `--fault`):
//! `;`-separated items, each `name` or `name=value`:
//!
//! | item | effect |
//! |---|---|
//! | `latency=MS` | wait MS before answering (combines with the others) |
//! | `status=CODE` | answer CODE with the section-7 error body before any byte (400, 402, 403, 404, 408, 429, 500, 502, 503, 524, 529, …) |
//! | `retry_after=S` | with `status`: add `Retry-After: S` (upstream-style 429/503) |
//! | `free_tier` | with `status=429`: the free-model limiter variant, `X-RateLimit-*` headers, reset in epoch ms |
//! | `message=TEXT` | with `status` or `mid_error`: replace the message (no `;` inside) |
//! | `cut` / `cut_after=N` | stream: abrupt disconnect after N content chunks (default 1), no usage chunk, no `[DONE]`; non-stream: half a body then disconnect |
//! | `mid_error=CODE` | stream: error chunk (`finish_reason: "error"`) after `after=N` content chunks (default 1) |
//! | `with_usage` | with `mid_error`: the error chunk carries `usage`, then `data: [DONE]` |
//! | `string_code` | with `mid_error`: `code` as a string (`"server_error"`) instead of an integer |
//! | `malformed` | 200 with an unparsable JSON body (non-stream) or one broken `data:` line (stream) |
//! | `drip=MS` | stream one token per chunk with MS between chunks |
//! | `no_cost` | `usage` without `cost` (as OpenAI's and Anthropic's own shapes are): the metering side must fall back to `/generation` |
//! | `no_id` | no `X-Generation-Id` header, and on `/embeddings` no `id` in the body either |
//!
//! Examples: `status=503;retry_after=2`, `status=429;free_tier`, `mid_error=502;after=3;with_usage`,
//! `cut_after=2`, `latency=1500;status=524`, `drip=200`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One fault, parsed from the grammar in the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSpec {
    pub latency: Option<Duration>,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub free_tier: bool,
    pub message: Option<String>,
    pub cut_after: Option<u32>,
    pub mid_error: Option<u16>,
    pub after: Option<u32>,
    pub with_usage: bool,
    pub string_code: bool,
    pub malformed: bool,
    pub drip: Option<Duration>,
    pub no_cost: bool,
    pub no_id: bool,
}

/// A fault spec that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault `{input}`: {reason}; expected e.g. `status=503;retry_after=2` (see the X-Sim-Fault grammar in `mai-sim openrouter --help`)")]
pub struct FaultParseError {
    pub input: String,
    pub reason: String,
}

impl FromStr for FaultSpec {
    type Err = FaultParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| FaultParseError {
            input: input.to_string(),
            reason,
        };
        let mut f = FaultSpec::default();
        for item in input.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let num = |v: Option<&str>| -> Result<u64, FaultParseError> {
                v.ok_or_else(|| err(format!("`{name}` needs a value")))?
                    .parse::<u64>()
                    .map_err(|_| err(format!("`{name}` needs a whole number")))
            };
            let code = |v: Option<&str>| -> Result<u16, FaultParseError> {
                let n = num(v)?;
                if (400..=599).contains(&n) {
                    Ok(n as u16)
                } else {
                    Err(err(format!(
                        "`{name}={n}` is not an HTTP error status (400-599)"
                    )))
                }
            };
            match name {
                "latency" => f.latency = Some(Duration::from_millis(num(value)?)),
                "status" => f.status = Some(code(value)?),
                "retry_after" => f.retry_after = Some(num(value)?),
                "free_tier" => f.free_tier = true,
                "message" => {
                    f.message = Some(
                        value
                            .ok_or_else(|| err("`message` needs a value".into()))?
                            .to_string(),
                    )
                }
                "cut" => {
                    f.cut_after = Some(value.map(|_| num(value)).transpose()?.unwrap_or(1) as u32)
                }
                "cut_after" => f.cut_after = Some(num(value)? as u32),
                "mid_error" => f.mid_error = Some(code(value)?),
                "after" => f.after = Some(num(value)? as u32),
                "with_usage" => f.with_usage = true,
                "string_code" => f.string_code = true,
                "malformed" => f.malformed = true,
                "drip" => f.drip = Some(Duration::from_millis(num(value)?)),
                "no_cost" => f.no_cost = true,
                "no_id" => f.no_id = true,
                other => return Err(err(format!("unknown item `{other}`"))),
            }
        }
        if f == FaultSpec::default() {
            return Err(err("no fault given".into()));
        }
        if f.status.is_none() && (f.retry_after.is_some() || f.free_tier) {
            return Err(err("`retry_after` and `free_tier` need `status`".into()));
        }
        if f.mid_error.is_none() && (f.with_usage || f.string_code || f.after.is_some()) {
            return Err(err(
                "`after`, `with_usage` and `string_code` need `mid_error`".into(),
            ));
        }
        Ok(f)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        if let Some(l) = self.latency {
            items.push(format!("latency={}", l.as_millis()));
        }
        if let Some(s) = self.status {
            items.push(format!("status={s}"));
        }
        if let Some(r) = self.retry_after {
            items.push(format!("retry_after={r}"));
        }
        if self.free_tier {
            items.push("free_tier".into());
        }
        if let Some(m) = &self.message {
            items.push(format!("message={m}"));
        }
        if let Some(c) = self.cut_after {
            items.push(format!("cut_after={c}"));
        }
        if let Some(c) = self.mid_error {
            items.push(format!("mid_error={c}"));
        }
        if let Some(a) = self.after {
            items.push(format!("after={a}"));
        }
        if self.with_usage {
            items.push("with_usage".into());
        }
        if self.string_code {
            items.push("string_code".into());
        }
        if self.malformed {
            items.push("malformed".into());
        }
        if let Some(d) = self.drip {
            items.push(format!("drip={}", d.as_millis()));
        }
        if self.no_cost {
            items.push("no_cost".into());
        }
        if self.no_id {
            items.push("no_id".into());
        }
        f.write_str(&items.join(";"))
    }
}

impl Serialize for FaultSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FaultSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which endpoints a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEndpoint {
    /// POST /chat/completions, and the other inference endpoints (/completions,
    /// /responses, /messages, /embeddings).
    #[default]
    Chat,
    /// GET /generation.
    Generation,
    /// GET /key (the key's own state: what a tracker checks a handed-over key with).
    Key,
    /// Every `/api/v1` endpoint.
    Any,
}

/// A standing fault: applies to matching requests, with a probability, a limited
/// number of times. Also the JSON body of `POST /__sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub fault: FaultSpec,
    #[serde(default)]
    pub endpoint: FaultEndpoint,
    /// Only requests with this key (full key string; hashed on arrival).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Only requests with the key of this hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    /// Probability per matching request (0..=1); drawn from the seeded RNG.
    #[serde(default = "one")]
    pub rate: f64,
    /// Stop after firing this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

fn one() -> f64 {
    1.0
}

impl FaultRule {
    /// Every chat request, every time.
    pub fn always(fault: FaultSpec) -> Self {
        FaultRule {
            fault,
            endpoint: FaultEndpoint::Chat,
            key: None,
            key_hash: None,
            rate: 1.0,
            count: None,
        }
    }

    /// Parses `spec` into a rule for every chat request.
    pub fn parse(spec: &str) -> Result<Self, FaultParseError> {
        Ok(FaultRule::always(spec.parse()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_round_trips() {
        for s in [
            "status=503;retry_after=2",
            "status=429;free_tier",
            "mid_error=502;after=3;with_usage",
            "cut_after=2",
            "latency=1500;status=524",
            "drip=200",
            "malformed",
            "mid_error=500;string_code",
        ] {
            let f: FaultSpec = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert_eq!("cut".parse::<FaultSpec>().unwrap().cut_after, Some(1));
    }

    #[test]
    fn grammar_rejects_nonsense() {
        assert!("status=200".parse::<FaultSpec>().is_err());
        assert!("retry_after=2".parse::<FaultSpec>().is_err());
        assert!("explode".parse::<FaultSpec>().is_err());
        assert!("".parse::<FaultSpec>().is_err());
        let e = "latency=x".parse::<FaultSpec>().unwrap_err().to_string();
        assert!(e.contains("latency=x") && e.contains("whole number"), "{e}");
    }
}
