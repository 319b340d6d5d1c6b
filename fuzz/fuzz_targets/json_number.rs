//! Exact JSON-number parsing (`mai_wire::money::parse_json_number`, re-exported as
//! `mai_core::money::parse_json_number`, and `mai_core::openrouter::number::
//! parse_decimal`, which reads every cost OpenRouter sends) on arbitrary text.
//!
//! Invariants: no panic; a parsed value prints as text that parses back to the same
//! value, also through the `json_number` serde helper (the seed-compatible wire);
//! both entry points agree; a plain decimal that `rust_decimal` reads exactly reads
//! to the same value; an accepted number has the JSON number alphabet only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mai_core::openrouter::number::parse_decimal;
use rust_decimal::Decimal;

#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    #[serde(with = "mai_wire::money::json_number")]
    v: Decimal,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wire = mai_wire::money::parse_json_number(text);
    let core = mai_core::money::parse_json_number(text);
    assert_eq!(wire.is_ok(), core.is_ok());
    let or = parse_decimal(text);
    let Ok(d) = wire else {
        return;
    };
    assert_eq!(core.unwrap(), d);
    // OpenRouter's reader also strips quotes and normalizes; same value.
    assert_eq!(
        or.expect("parse_decimal accepts what parse_json_number accepts"),
        d
    );
    assert!(text
        .trim()
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)));

    let shown = d.to_string();
    assert_eq!(
        mai_wire::money::parse_json_number(&shown).unwrap(),
        d,
        "{shown}"
    );
    let json = serde_json::to_string(&Wire { v: d }).expect("serialize");
    let back: Wire = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(back.v, d, "{json}");
    if !text.contains(['e', 'E']) {
        if let Ok(exact) = Decimal::from_str_exact(text.trim()) {
            assert_eq!(exact, d);
        }
    }
});
