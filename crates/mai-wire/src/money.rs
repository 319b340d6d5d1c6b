//! Money as a JSON *number*, exact both ways: the one copy of the helpers.
//!
//! Our own endpoints write money as decimal strings, but two wires carry JSON numbers:
//! OpenRouter's replies (read by `mai_core::openrouter`) and the tracker's
//! seed-compatible endpoints ([`crate::tracker::seed`]). A number read through `f64`
//! loses digits (`0.00035999999999999997` would come back as `0.00036`) and a month of
//! nano-dollar costs drifts, so these helpers read the number's raw text
//! (`serde_json::value::RawValue`) and write the decimal's text as the number.
//! `mai_core::money` re-exports them; they live here because the wire types need them
//! and mai-wire depends on no crate of ours.

use std::fmt;

use rust_decimal::Decimal;

/// A JSON number's text that is not an exact decimal. Names the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    NotANumber(String),
    OutOfRange(String),
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberError::NotANumber(t) => write!(
                f,
                "`{t}` is not a decimal number (expected e.g. 0.00066 or 4.25e-6)"
            ),
            NumberError::OutOfRange(t) => write!(
                f,
                "`{t}` is out of range for an exact decimal (at most 28 significant digits)"
            ),
        }
    }
}

impl std::error::Error for NumberError {}

/// Parses a JSON number's text exactly: plain (`0.00066`), negative, or exponent form
/// (`4.25e-6`, `1E-9`, `2.5e+3`). Never goes through `f64`.
pub fn parse_json_number(text: &str) -> Result<Decimal, NumberError> {
    let t = text.trim();
    let valid = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !valid {
        return Err(NumberError::NotANumber(text.to_string()));
    }
    if t.contains(['e', 'E']) {
        // `from_scientific` wants a mantissa and an exponent; it is exact.
        Decimal::from_scientific(t).map_err(|e| classify(text, &e.to_string()))
    } else {
        Decimal::from_str_exact(t).map_err(|e| classify(text, &e.to_string()))
    }
}

fn classify(text: &str, msg: &str) -> NumberError {
    if msg.contains("overflow") || msg.contains("precision") || msg.contains("scale") {
        NumberError::OutOfRange(text.to_string())
    } else {
        NumberError::NotANumber(text.to_string())
    }
}

/// serde helpers: a [`Decimal`] as a JSON *number*, exact text both ways.
///
/// Deserializing reads the number's raw text (via `serde_json::value::RawValue`), so it
/// only works with serde_json, which is the only format we read money from. A JSON
/// string holding a number is accepted too, since some APIs quote their amounts.
pub mod json_number {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        let raw =
            RawValue::from_string(d.normalize().to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        from_raw(raw.get()).map_err(D::Error::custom)
    }

    pub(crate) fn from_raw(text: &str) -> Result<Decimal, NumberError> {
        let t = text.trim();
        let t = t
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(t);
        parse_json_number(t)
    }
}

/// [`json_number`] for `Option<Decimal>`: JSON `null` or a missing field is `None`.
/// Use with `#[serde(default, with = "json_number_opt")]`.
pub mod json_number_opt {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::json_number::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
        match raw {
            None => Ok(None),
            Some(r) if r.get().trim() == "null" => Ok(None),
            Some(r) => super::json_number::from_raw(r.get())
                .map(Some)
                .map_err(D::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_exponent_and_plain_forms_exactly() {
        assert_eq!(parse_json_number("4.25e-6").unwrap(), dec("0.00000425"));
        assert_eq!(parse_json_number("1E-9").unwrap(), dec("0.000000001"));
        assert_eq!(parse_json_number("2.5e+3").unwrap(), dec("2500"));
        assert!(matches!(
            parse_json_number("NaN"),
            Err(NumberError::NotANumber(_))
        ));
        assert!(parse_json_number("1e999").is_err());
    }

    #[test]
    fn json_number_round_trips_exact_text() {
        #[derive(Serialize, Deserialize)]
        struct U {
            #[serde(with = "json_number")]
            cost: Decimal,
            #[serde(default, with = "json_number_opt")]
            upstream: Option<Decimal>,
        }
        let u: U = serde_json::from_str(r#"{"cost":4.25e-6,"upstream":null}"#).unwrap();
        assert_eq!(u.cost, dec("0.00000425"));
        assert_eq!(u.upstream, None);
        // A JavaScript float artefact is kept digit for digit, not "fixed" by f64.
        let u: U = serde_json::from_str(r#"{"cost":0.00035999999999999997}"#).unwrap();
        assert_eq!(u.cost.to_string(), "0.00035999999999999997");
        let out = serde_json::to_string(&U {
            cost: dec("0.00066"),
            upstream: Some(dec("1.50")),
        })
        .unwrap();
        assert_eq!(out, r#"{"cost":0.00066,"upstream":1.5}"#);
        let e = serde_json::from_str::<U>(r#"{"cost":"ten"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`ten` is not a decimal number"), "{e}");
    }
}
