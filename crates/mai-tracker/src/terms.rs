//! The client's commercial terms (markup schedule, monthly limit) as the console pushed
//! them with `PUT /api/v1/admin/terms`.
//!
//! The fleet file owns these facts (ARCHITECTURE.md, "One owner per fact"); the tracker
//! only keeps the last pushed copy, durably in its ledger's meta table so a restart does
//! not fall back to the default until the console pushes again. Until the first push
//! the tracker prices its reports at the product default (1.3 flat, no limit) and its
//! status says `"terms": null`, which the console reads as "push needed".

use mai_core::ledger::{Ledger, LedgerError};
use mai_core::pricing::{validate_markup, CommercialTerms, MarkupSchedule};
use rust_decimal::Decimal;

/// The ledger meta key holding the pushed terms as JSON (the wire type's own form, so
/// the stored copy and the API can never disagree on a field).
pub const META_KEY: &str = "tracker.commercial_terms";

/// The environment variables that used to carry these facts on the tracker.
pub const RETIRED_ENV: [&str; 2] = ["MAI_MARKUP_RATE", "MAI_MONTHLY_LIMIT_USD"];

/// Why pushed terms were refused; each names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    /// The body is not a `CommercialTerms` document (syntax, type, unknown field).
    #[error("terms body rejected at {path}: {detail}; send {{\"markup\":{{\"default_rate\":\"1.3\",\"entries\":[]}},\"monthly_limit_usd\":null}}")]
    Malformed { path: String, detail: String },
    /// Well-formed but not acceptable.
    #[error("{field} = {value} is invalid: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
}

impl TermsError {
    fn invalid(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        TermsError::Invalid {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Parses and validates a pushed body. Errors say which field is wrong and how.
pub fn parse(body: &[u8]) -> Result<CommercialTerms, TermsError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let terms: CommercialTerms =
        serde_path_to_error::deserialize(de).map_err(|e| TermsError::Malformed {
            path: match e.path().to_string() {
                p if p == "." => "the top level".to_owned(),
                p => match value_at(body, e.path()) {
                    Some(v) => format!("{p} = {v}"),
                    None => p,
                },
            },
            detail: e.inner().to_string(),
        })?;
    validate(&terms)?;
    Ok(terms)
}

/// The JSON text at `path` in `body` (for the error message: serde says what it expected,
/// not what it got), cut to a readable length.
fn value_at(body: &[u8], path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut v = &serde_json::from_slice::<serde_json::Value>(body).ok()?;
    for seg in path {
        v = match seg {
            Segment::Map { key } => v.get(key)?,
            Segment::Seq { index } => v.get(index)?,
            _ => return None,
        };
    }
    let text = v.to_string();
    Some(if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    })
}

/// Rates within [`validate_markup`]'s range, entries strictly ascending by day (one
/// rate per day, so "the rate on day D" has one answer), a limit of zero or more.
pub fn validate(t: &CommercialTerms) -> Result<(), TermsError> {
    // validate_markup decides; the message here names the field as well as the value.
    let rate = |field: String, r: Decimal| {
        validate_markup(r).map(|_| ()).map_err(|_| {
            TermsError::invalid(
                field,
                format!("\"{r}\""),
                "a markup rate must be greater than 0 and at most 100 (1.3 is +30%)",
            )
        })
    };
    rate("markup.default_rate".into(), t.markup.default_rate)?;
    for (i, e) in t.markup.entries.iter().enumerate() {
        rate(format!("markup.entries[{i}].rate"), e.rate)?;
        if i > 0 {
            let prev = t.markup.entries[i - 1].effective_from;
            if e.effective_from <= prev {
                return Err(TermsError::invalid(
                    format!("markup.entries[{i}].effective_from"),
                    e.effective_from,
                    format!(
                        "it is not after markup.entries[{}].effective_from = {prev}; list \
                         the entries by day, at most one per day",
                        i - 1
                    ),
                ));
            }
        }
    }
    if let Some(l) = t.monthly_limit_usd {
        if l.is_sign_negative() && !l.is_zero() {
            return Err(TermsError::invalid(
                "monthly_limit_usd",
                format!("\"{l}\""),
                "a limit cannot be negative; use 0 or more USD, or null for no limit",
            ));
        }
    }
    Ok(())
}

/// The stored terms, if the console ever pushed some. A stored copy that does not
/// parse or validate (written by a newer tracker, or damaged) is reported as an error
/// and not used; the caller decides what to do.
pub fn load(ledger: &Ledger) -> Result<Option<CommercialTerms>, LoadError> {
    let Some(text) = ledger.get_meta(META_KEY)? else {
        return Ok(None);
    };
    parse(text.as_bytes())
        .map(Some)
        .map_err(|e| LoadError::Stored(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading the stored terms: {0}")]
    Ledger(#[from] LedgerError),
    #[error("the stored terms (ledger meta {META_KEY}) are unreadable: {0}")]
    Stored(String),
}

/// The JSON stored under [`META_KEY`].
pub fn to_stored(t: &CommercialTerms) -> String {
    serde_json::to_string(t).expect("terms serialize")
}

/// The schedule to price with: the pushed one, else the product default.
pub fn schedule_of(terms: Option<&CommercialTerms>) -> MarkupSchedule {
    terms.map(|t| t.markup.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn good_terms_parse() {
        let t = parse(
            br#"{"markup":{"default_rate":"1.3","entries":[{"effective_from":"2026-11-15","rate":"1.5"}]},"monthly_limit_usd":"0"}"#,
        )
        .unwrap();
        assert_eq!(t.markup.entries.len(), 1);
        assert_eq!(t.monthly_limit_usd, Some(Decimal::ZERO));
        let again = parse(to_stored(&t).as_bytes()).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn each_bad_body_names_its_field_and_value() {
        let cases = [
            (
                r#"{"markup":{"default_rate":"0","entries":[]},"monthly_limit_usd":null}"#,
                &["markup.default_rate", "\"0\""][..],
            ),
            (
                r#"{"markup":{"default_rate":"1.3","entries":[{"effective_from":"2026-11-01","rate":"1.2"},{"effective_from":"2026-11-02","rate":"101"}]},"monthly_limit_usd":null}"#,
                &["markup.entries[1].rate", "\"101\""],
            ),
            (
                r#"{"markup":{"default_rate":"1.3","entries":[{"effective_from":"2026-11-15","rate":"1.2"},{"effective_from":"2026-11-15","rate":"1.4"}]},"monthly_limit_usd":null}"#,
                &[
                    "markup.entries[1].effective_from",
                    "2026-11-15",
                    "at most one per day",
                ],
            ),
            (
                r#"{"markup":{"default_rate":"1.3","entries":[{"effective_from":"2026-11-15","rate":"1.2"},{"effective_from":"2026-11-01","rate":"1.4"}]},"monthly_limit_usd":null}"#,
                &["markup.entries[1].effective_from", "2026-11-01"],
            ),
            (
                r#"{"markup":{"default_rate":"1.3","entries":[]},"monthly_limit_usd":"-5"}"#,
                &["monthly_limit_usd", "\"-5\"", "negative"],
            ),
            (
                r#"{"markup":{"default_rate":"1,3","entries":[]},"monthly_limit_usd":null}"#,
                &["markup.default_rate = \"1,3\""],
            ),
            (
                r#"{"markup":{"default_rate":"1.3","entries":[{"effective_from":"15.11.2026","rate":"1.2"}]},"monthly_limit_usd":null}"#,
                &["markup.entries[0].effective_from = \"15.11.2026\""],
            ),
            (
                r#"{"markup":{"default_rate":"1.3","entries":[]},"monthly_limit_usd":null,"vat":"23"}"#,
                &["vat"],
            ),
            (
                r#"{"markup":{"default_rate":"1.3","entries":[]}}"#,
                &["monthly_limit_usd"],
            ),
            ("not json", &["the top level"]),
        ];
        for (body, want) in cases {
            let e = err(body);
            for w in want {
                assert!(e.contains(w), "{body}: `{e}` lacks `{w}`");
            }
        }
    }
}
