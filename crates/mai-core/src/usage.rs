//! Usage events: one per generation (one upstream OpenRouter call), the unit the
//! ledger counts, the tracker records and the console pulls.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Longest generation id we accept. OpenRouter's are ~30 bytes; the cap keeps a
/// hostile webhook from filling the ledger with megabyte keys.
pub const MAX_GENERATION_ID_BYTES: usize = 256;
/// Longest org/model/user field we accept.
pub const MAX_FIELD_BYTES: usize = 512;

/// Token counts as OpenRouter reports them (native tokenizer). `prompt` includes
/// `cached`, `completion` includes `reasoning`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
    pub reasoning: u64,
    pub cached: u64,
}

impl Tokens {
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }
    pub fn add(&mut self, o: &Tokens) {
        self.prompt += o.prompt;
        self.completion += o.completion;
        self.reasoning += o.reasoning;
        self.cached += o.cached;
    }
}

/// Aggregated usage over some set of events (a day, a user, a model, a range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub tokens: Tokens,
    /// Raw OpenRouter cost, USD, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost_usd: Decimal,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.tokens.add(&o.tokens);
        self.cost_usd += o.cost_usd;
    }
}

// The vocabulary that crosses the wire (who, where from, which state) is owned by
// mai-wire; the ledger and the tracker use the same types.
pub use mai_wire::usage::{ChatContext, EventState, Source, TokenCounts, UserRef, TASK_CHAT};

impl From<Tokens> for TokenCounts {
    fn from(t: Tokens) -> TokenCounts {
        TokenCounts {
            prompt: t.prompt,
            completion: t.completion,
            reasoning: t.reasoning,
            cached: t.cached,
            total: t.total(),
        }
    }
}

impl From<TokenCounts> for Tokens {
    /// `total` is derived, so it is dropped.
    fn from(t: TokenCounts) -> Tokens {
        Tokens {
            prompt: t.prompt,
            completion: t.completion,
            reasoning: t.reasoning,
            cached: t.cached,
        }
    }
}

/// One generation's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// OpenRouter's `gen-...` id, or our own (`man-...`) for manual records.
    pub generation_id: String,
    pub org_id: String,
    pub user: UserRef,
    pub model: String,
    pub provider: Option<String>,
    pub tokens: Tokens,
    /// What OpenRouter charged, USD, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost_usd: Decimal,
    pub source: Source,
    pub state: EventState,
    pub created_at: DateTime<Utc>,
    /// Chat id, task kind and groups, as far as the chat app told us. Absent in older
    /// serialized events (the crash journal, caches): read as unknown.
    #[serde(default)]
    pub context: ChatContext,
}

/// Bad usage data. Names the field and the value; nothing is stored when it occurs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("invalid usage event field `{field}` = `{value}`: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> UsageError {
    UsageError::Invalid {
        field,
        value: value.to_string(),
        reason,
    }
}

impl UsageEvent {
    /// Checks what the ledger relies on. Token counts are unsigned by type; a negative
    /// count in JSON fails at deserialization with serde's message naming the field.
    pub fn validate(&self) -> Result<(), UsageError> {
        if self.generation_id.trim().is_empty() {
            return Err(invalid(
                "generation_id",
                &self.generation_id,
                "must not be empty",
            ));
        }
        if self.generation_id.len() > MAX_GENERATION_ID_BYTES {
            let shown: String = self.generation_id.chars().take(40).collect();
            return Err(invalid(
                "generation_id",
                format!("{shown}… ({} bytes)", self.generation_id.len()),
                "longer than 256 bytes",
            ));
        }
        if self.org_id.trim().is_empty() || self.org_id.len() > MAX_FIELD_BYTES {
            return Err(invalid("org_id", &self.org_id, "must be 1 to 512 bytes"));
        }
        if self.model.trim().is_empty() || self.model.len() > MAX_FIELD_BYTES {
            return Err(invalid("model", &self.model, "must be 1 to 512 bytes"));
        }
        for (field, v) in [
            ("user.id", &self.user.id),
            ("user.email", &self.user.email),
            ("user.name", &self.user.name),
            ("provider", &self.provider),
            ("context.chat_id", &self.context.chat_id),
            ("context.task", &self.context.task),
            ("context.groups", &self.context.groups),
        ] {
            if v.as_ref().is_some_and(|v| v.len() > MAX_FIELD_BYTES) {
                return Err(invalid(
                    field,
                    v.as_deref().unwrap_or_default(),
                    "longer than 512 bytes",
                ));
            }
        }
        if self.cost_usd.is_sign_negative() && !self.cost_usd.is_zero() {
            return Err(invalid("cost_usd", self.cost_usd, "must not be negative"));
        }
        // i64 is what SQLite stores; anything above is corrupt data, not usage.
        for (field, v) in [
            ("tokens.prompt", self.tokens.prompt),
            ("tokens.completion", self.tokens.completion),
            ("tokens.reasoning", self.tokens.reasoning),
            ("tokens.cached", self.tokens.cached),
        ] {
            if v > i64::MAX as u64 / 4 {
                return Err(invalid(field, v, "implausibly large token count"));
            }
        }
        Ok(())
    }

    /// Authority of a record: a confirmed record beats a provisional one; among equals,
    /// reconciliation (OpenRouter's own record) beats what the proxy or a webhook saw.
    /// A record replaces the stored one only when its authority is strictly higher, so
    /// redelivery (same authority) is a no-op.
    pub fn authority(&self) -> u8 {
        let state = match self.state {
            EventState::Provisional => 0,
            EventState::Confirmed => 10,
        };
        let source = match self.source {
            Source::Manual | Source::Proxy | Source::Webhook => 1,
            Source::Reconciliation => 2,
        };
        state + source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn ev() -> UsageEvent {
        UsageEvent {
            generation_id: "gen-1".into(),
            org_id: "acme".into(),
            user: UserRef::default(),
            model: "openai/gpt-4o-mini".into(),
            provider: None,
            tokens: Tokens::default(),
            cost_usd: dec!(0.001),
            source: Source::Proxy,
            state: EventState::Provisional,
            created_at: Utc::now(),
            context: ChatContext::default(),
        }
    }

    #[test]
    fn rejects_bad_input_naming_field_and_value() {
        let mut e = ev();
        e.cost_usd = dec!(-0.5);
        let err = e.validate().unwrap_err().to_string();
        assert!(err.contains("cost_usd") && err.contains("-0.5"), "{err}");
        let mut e = ev();
        e.generation_id = "g".repeat(257);
        assert!(e
            .validate()
            .unwrap_err()
            .to_string()
            .contains("generation_id"));
        let mut e = ev();
        e.model = " ".into();
        assert!(e.validate().unwrap_err().to_string().contains("model"));
        let mut e = ev();
        e.context.groups = Some("g".repeat(513));
        assert!(e
            .validate()
            .unwrap_err()
            .to_string()
            .contains("context.groups"));
        assert!(ev().validate().is_ok());
    }

    #[test]
    fn negative_tokens_fail_to_deserialize_with_the_field_name() {
        let json = r#"{"prompt":-1,"completion":0,"reasoning":0,"cached":0}"#;
        let err = serde_json::from_str::<Tokens>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("-1"), "{err}");
    }

    #[test]
    fn authority_orders_records() {
        let mut a = ev();
        let mut b = ev();
        b.state = EventState::Confirmed;
        b.source = Source::Reconciliation;
        assert!(b.authority() > a.authority());
        a.source = Source::Webhook;
        assert_eq!(a.authority(), ev().authority());
    }
}
