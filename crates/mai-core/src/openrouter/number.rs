//! Exact decimals from OpenRouter's JSON numbers.
//!
//! OpenRouter sends money as JSON numbers (`0.00066`, sometimes `4.25e-6`) and some
//! counters as strings. Going through `f64` would lose cents over a month of requests,
//! so every number is read from its JSON text.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::value::RawValue;

/// Parses the text of a JSON number (or of a numeric string) into an exact decimal.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let t = text.trim();
    let t = t
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
        .trim();
    crate::money::parse_json_number(t)
        .map(|d| d.normalize())
        .map_err(|e| e.to_string())
}

fn raw_to_decimal(raw: &RawValue) -> Result<Option<Decimal>, String> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    parse_decimal(text).map(Some)
}

/// `deserialize_with` for a required decimal.
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    raw_to_decimal(&raw)
        .map_err(serde::de::Error::custom)?
        .ok_or_else(|| serde::de::Error::custom("expected a number, got null"))
}

/// `deserialize_with` for a nullable or absent decimal (use with `#[serde(default)]`).
pub fn decimal_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let raw = Option::<Box<RawValue>>::deserialize(d)?;
    match raw {
        None => Ok(None),
        Some(raw) => raw_to_decimal(&raw).map_err(serde::de::Error::custom),
    }
}

/// `deserialize_with` for a lenient non-negative integer count: `412`, `412.0`, `"412"`,
/// null or absent (0). Older spec versions typed counters as plain numbers.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(count_opt(d)?.unwrap_or(0))
}

/// Like [`count`] but keeps "unknown" apart from zero.
pub fn count_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(value) = decimal_opt(d)? else {
        return Ok(None);
    };
    if value.is_sign_negative() || value.fract() != Decimal::ZERO {
        return Err(serde::de::Error::custom(format!(
            "expected a non-negative whole count, got {value}"
        )));
    }
    u64::try_from(value)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("count {value} is out of range")))
}

/// `serialize_with` writing a decimal as a JSON number with its exact text.
pub fn serialize_decimal_opt<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(d) => {
            let raw = RawValue::from_string(d.normalize().to_string())
                .map_err(serde::ser::Error::custom)?;
            serde::Serialize::serialize(&raw, s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_exponent_and_string_forms() {
        assert_eq!(parse_decimal("0.00066").unwrap().to_string(), "0.00066");
        assert_eq!(parse_decimal("4.25e-6").unwrap().to_string(), "0.00000425");
        assert_eq!(parse_decimal("1E-9").unwrap().to_string(), "0.000000001");
        assert_eq!(parse_decimal("\"12.5\"").unwrap().to_string(), "12.5");
        assert_eq!(parse_decimal("100").unwrap().to_string(), "100");
        assert!(parse_decimal("abc").is_err());
        assert!(parse_decimal("").is_err());
    }

    #[test]
    fn no_binary_float_rounding() {
        // 0.1 + 0.2 is the classic f64 trap.
        let a = parse_decimal("0.1").unwrap();
        let b = parse_decimal("0.2").unwrap();
        assert_eq!((a + b).to_string(), "0.3");
    }
}
