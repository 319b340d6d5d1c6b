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

/// Cuts `s` to at most `max` bytes, on a char boundary (never splits a UTF-8 sequence).
///
/// The one bounding function for attribution fields (user id/email/name, model,
/// provider) that come from request bodies and headers: the tracker applies it where
/// fields enter the crash journal and the ledger writer, so a megabyte `user` field
/// costs at most `MAX_FIELD_BYTES` of disk, as nginx and Envoy cap header sizes
/// instead of trusting the client. Truncating (not refusing) keeps the generation and
/// its cost, which matter more than the tail of a name.
pub fn bound_field(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

/// [`bound_field`] over every attribution field of a [`UserRef`].
pub fn bound_user(u: &mut UserRef) {
    for f in [&mut u.id, &mut u.email, &mut u.name].into_iter().flatten() {
        bound_field(f, MAX_FIELD_BYTES);
    }
}

/// [`bound_field`] over the chat id, task and groups of a [`ChatContext`].
pub fn bound_context(c: &mut ChatContext) {
    for f in [&mut c.chat_id, &mut c.task, &mut c.groups]
        .into_iter()
        .flatten()
    {
        bound_field(f, MAX_FIELD_BYTES);
    }
}

/// Sanity caps on one event's amounts. An event above them is refused rather than
/// billed: a single generation costing more than the cap is a bug or corrupt data
/// upstream, and a wrong number on an invoice is worse than a missing one (which
/// reconciliation against OpenRouter's `/key` totals would show as drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Largest `cost_usd` of one event.
    pub max_cost_usd: Decimal,
    /// Largest count in any one token field of one event.
    pub max_tokens: u64,
}

impl Caps {
    /// The tracker's defaults (`MAI_MAX_EVENT_COST_USD`, `MAI_MAX_EVENT_TOKENS`).
    pub const DEFAULT: Caps = Caps {
        max_cost_usd: Decimal::from_parts(1000, 0, 0, false, 0),
        max_tokens: 100_000_000,
    };
    /// What [`UsageEvent::validate`] always enforces, whatever the configuration: far
    /// above any real generation, and low enough that sums of up to 2^31 events stay
    /// exact (cost: 10^12 USD each; tokens: i64::MAX / 4, what SQLite stores).
    pub const ABSOLUTE: Caps = Caps {
        max_cost_usd: Decimal::from_parts(3_567_587_328, 232, 0, false, 0),
        max_tokens: i64::MAX as u64 / 4,
    };
}

impl Default for Caps {
    fn default() -> Caps {
        Caps::DEFAULT
    }
}

/// The one bound check of an event's amounts against `caps`, for every ingestion path
/// (proxy via the ledger, manual records, the webhook, reconciliation). Names the field,
/// the value and the cap.
pub fn check_bounds(ev: &UsageEvent, caps: &Caps) -> Result<(), UsageError> {
    if ev.cost_usd > caps.max_cost_usd {
        return Err(UsageError::OverCap {
            field: "cost_usd",
            value: ev.cost_usd.normalize().to_string(),
            cap: caps.max_cost_usd.normalize().to_string(),
        });
    }
    for (field, v) in [
        ("tokens.prompt", ev.tokens.prompt),
        ("tokens.completion", ev.tokens.completion),
        ("tokens.reasoning", ev.tokens.reasoning),
        ("tokens.cached", ev.tokens.cached),
    ] {
        if v > caps.max_tokens {
            return Err(UsageError::OverCap {
                field,
                value: v.to_string(),
                cap: caps.max_tokens.to_string(),
            });
        }
    }
    Ok(())
}

/// A sum that does not fit (or would lose digits): reported instead of a wrong number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} overflows: the sum does not fit exactly; this is corrupt data, not usage")]
pub struct Overflow {
    pub what: &'static str,
}

/// `a + b` if exact: `None` on overflow, and when `rust_decimal` would have to drop
/// fractional digits to fit 96 bits (it rounds silently). An exact sum keeps the larger
/// scale of its operands; a rounded one has a smaller scale.
pub fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let r = a.checked_add(b)?;
    kept_all_digits(a, b, r).then_some(r)
}

/// `a - b` if exact (see [`exact_add`]).
pub fn exact_sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    let r = a.checked_sub(b)?;
    kept_all_digits(a, b, r).then_some(r)
}

/// rust_decimal drops fractional digits (lowers the scale) when a result no longer fits
/// its 96-bit mantissa. A zero operand is the exception: the other one is returned as
/// it is, at its own scale, which is exact (found by `ledger_props`: `0 - 0.000000000`).
fn kept_all_digits(a: Decimal, b: Decimal, r: Decimal) -> bool {
    a.is_zero() || b.is_zero() || r.scale() >= a.scale().max(b.scale())
}

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
    /// Prompt plus completion. Saturates at `u64::MAX` rather than panicking; counts
    /// read from the ledger are at most `i64::MAX` each, so their sum is exact.
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
    /// Adds `o` field by field; on overflow nothing is changed and the error says so.
    pub fn add(&mut self, o: &Tokens) -> Result<(), Overflow> {
        let add = |a: u64, b: u64| {
            a.checked_add(b).ok_or(Overflow {
                what: "token count",
            })
        };
        *self = Tokens {
            prompt: add(self.prompt, o.prompt)?,
            completion: add(self.completion, o.completion)?,
            reasoning: add(self.reasoning, o.reasoning)?,
            cached: add(self.cached, o.cached)?,
        };
        Ok(())
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
    /// Adds `o`; on overflow (or a cost sum that would lose digits) nothing is changed
    /// and the error says so: a total is billed, so it is exact or it is an error.
    pub fn add(&mut self, o: &Totals) -> Result<(), Overflow> {
        let requests = self.requests.checked_add(o.requests).ok_or(Overflow {
            what: "request count",
        })?;
        let mut tokens = self.tokens;
        tokens.add(&o.tokens)?;
        let cost_usd = exact_add(self.cost_usd, o.cost_usd).ok_or(Overflow { what: "cost" })?;
        *self = Totals {
            requests,
            tokens,
            cost_usd,
        };
        Ok(())
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
    #[error("usage event field `{field}` = {value} is above the sanity cap {cap}; refused (set MAI_MAX_EVENT_COST_USD / MAI_MAX_EVENT_TOKENS if real)")]
    OverCap {
        field: &'static str,
        value: String,
        cap: String,
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
        check_bounds(self, &Caps::ABSOLUTE)
    }

    /// Cuts every attribution field to [`MAX_FIELD_BYTES`] ([`bound_field`]). The
    /// generation id is left alone: a cut id would name another generation, so an
    /// oversize one is refused by [`UsageEvent::validate`] instead.
    pub fn bound_fields(&mut self) {
        bound_field(&mut self.org_id, MAX_FIELD_BYTES);
        bound_field(&mut self.model, MAX_FIELD_BYTES);
        if let Some(p) = &mut self.provider {
            bound_field(p, MAX_FIELD_BYTES);
        }
        bound_user(&mut self.user);
        bound_context(&mut self.context);
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
