//! Cost arithmetic of spec 1.3 with exact decimals, and how money is written as JSON
//! numbers (plain, or exponent form for tiny values).

use rust_decimal::Decimal;
use serde::Serialize;

use super::config::ModelSpec;

/// Token counts of one generation, as the provider reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenCounts {
    /// Includes cached and cache-write tokens.
    pub prompt: u32,
    /// Includes reasoning tokens.
    pub completion: u32,
    pub reasoning: u32,
    pub cached: u32,
    pub cache_write: u32,
}

/// Money of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// What left the account's credits (`usage.cost`).
    pub cost: Decimal,
    /// What the upstream charged (`cost_details.upstream_inference_cost`).
    pub upstream: Decimal,
    pub upstream_prompt: Decimal,
    pub upstream_completion: Decimal,
    /// Savings of cache reads minus the surcharge of cache writes.
    pub cache_discount: Option<Decimal>,
}

/// Prices `tokens` on `model`; BYOK charges only `byok_fee_rate` of the upstream cost.
pub fn compute_cost(
    model: &ModelSpec,
    tokens: &TokenCounts,
    byok: bool,
    byok_fee_rate: Decimal,
) -> Cost {
    let cached = tokens.cached.min(tokens.prompt);
    let write = tokens.cache_write.min(tokens.prompt - cached);
    let plain_prompt = tokens.prompt - cached - write;
    let read_price = model.input_cache_read.unwrap_or(model.prompt);
    let write_price = model.input_cache_write.unwrap_or(model.prompt);
    let upstream_prompt = Decimal::from(plain_prompt) * model.prompt
        + Decimal::from(cached) * read_price
        + Decimal::from(write) * write_price;
    let upstream_completion = Decimal::from(tokens.completion) * model.completion;
    let upstream = upstream_prompt + upstream_completion + model.request;
    let cost = if byok {
        upstream * byok_fee_rate
    } else {
        upstream * (Decimal::ONE - model.discount)
    };
    let cache_discount = (cached > 0 || write > 0).then(|| {
        Decimal::from(cached) * (model.prompt - read_price)
            - Decimal::from(write) * (write_price - model.prompt)
    });
    Cost {
        cost: cost.normalize(),
        upstream: upstream.normalize(),
        upstream_prompt: upstream_prompt.normalize(),
        upstream_completion: upstream_completion.normalize(),
        cache_discount: cache_discount.map(|d| d.normalize()),
    }
}

/// Writes a decimal as a JSON number: plain digits, or `4.25e-6` when it is non-zero
/// and its magnitude is below `exponent_below`.
pub fn format_number(value: Decimal, exponent_below: Option<Decimal>) -> String {
    let v = value.normalize();
    if let Some(limit) = exponent_below {
        if !v.is_zero() && v.abs() < limit {
            return exponent_form(v);
        }
    }
    v.to_string()
}

fn exponent_form(v: Decimal) -> String {
    let digits = v.mantissa().unsigned_abs().to_string();
    let exp = digits.len() as i64 - 1 - i64::from(v.scale());
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let (head, tail) = digits.split_at(1);
    let tail = tail.trim_end_matches('0');
    if tail.is_empty() {
        format!("{sign}{head}e{exp}")
    } else {
        format!("{sign}{head}.{tail}e{exp}")
    }
}

/// A money value that serializes as a bare JSON number from its decimal text.
#[derive(Debug, Clone, Copy)]
pub struct Num(pub Decimal, pub Option<Decimal>);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = format_number(self.0, self.1);
        let raw =
            serde_json::value::RawValue::from_string(text).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn spec_example_arithmetic() {
        let m = ModelSpec::new(
            "deepseek/deepseek-chat-v3-0324",
            "DeepInfra",
            "0.0000003",
            "0.0000012",
        );
        let t = TokenCounts {
            prompt: 1200,
            completion: 250,
            ..Default::default()
        };
        let c = compute_cost(&m, &t, false, d("0.05"));
        assert_eq!(c.cost, d("0.00066"));
        assert_eq!(c.upstream_prompt, d("0.00036"));
        assert_eq!(c.upstream_completion, d("0.0003"));
        assert_eq!(format_number(c.cost, None), "0.00066");
        assert_eq!(format_number(c.upstream_completion, None), "0.0003");
    }

    #[test]
    fn cached_reasoning_discount_and_byok() {
        let mut m = ModelSpec::new("a/b", "P", "0.000003", "0.000015");
        m.input_cache_read = Some(d("0.0000003"));
        m.input_cache_write = Some(d("0.00000375"));
        let t = TokenCounts {
            prompt: 1000,
            completion: 100,
            reasoning: 40,
            cached: 600,
            cache_write: 100,
        };
        let c = compute_cost(&m, &t, false, d("0.05"));
        // 300*3e-6 + 600*3e-7 + 100*3.75e-6 = 0.0009 + 0.00018 + 0.000375
        assert_eq!(c.upstream_prompt, d("0.001455"));
        assert_eq!(c.upstream_completion, d("0.0015"));
        assert_eq!(c.cost, d("0.002955"));
        assert_eq!(c.cache_discount, Some(d("0.001545")));
        m.discount = d("0.01");
        assert_eq!(compute_cost(&m, &t, false, d("0.05")).cost, d("0.00292545"));
        let b = compute_cost(&m, &t, true, d("0.05"));
        assert_eq!(b.cost, d("0.00014775"));
        assert_eq!(b.upstream, d("0.002955"));
    }

    #[test]
    fn exponent_form_is_optional() {
        assert_eq!(format_number(d("0.00000425"), None), "0.00000425");
        assert_eq!(
            format_number(d("0.00000425"), Some(d("0.00001"))),
            "4.25e-6"
        );
        assert_eq!(format_number(d("0.000004"), Some(d("0.00001"))), "4e-6");
        assert_eq!(format_number(d("0.5"), Some(d("0.00001"))), "0.5");
        assert_eq!(format_number(Decimal::ZERO, Some(d("1"))), "0");
        assert_eq!(format_number(d("100.00"), None), "100");
        let v: serde_json::Value =
            serde_json::from_str(&format_number(d("0.00000425"), Some(d("1")))).unwrap();
        assert!(v.is_number());
    }
}
