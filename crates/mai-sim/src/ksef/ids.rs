//! Identifiers KSeF hands out: reference numbers, KSeF numbers (with their CRC-8),
//! JWT-looking opaque tokens, and the contract's timestamp text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Europe::Warsaw;
use sha2::{Digest, Sha256};

/// CRC-8 with polynomial 0x07 and initial value 0x00, no reflection, no final XOR
/// (`docs/numer-ksef.md`).
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `{seller NIP}-{YYYYMMDD}-{12 upper hex}-{CRC-8 of the first 32 characters}`; the
/// date is the acquisition day in Warsaw.
pub fn ksef_number(nip: &str, acquired: DateTime<Utc>, technical: u64) -> String {
    let day = acquired.with_timezone(&Warsaw).format("%Y%m%d");
    let body = format!("{nip}-{day}-{:012X}", technical & 0xFFFF_FFFF_FFFF);
    let crc = crc8(body.as_bytes());
    format!("{body}-{crc:02X}")
}

/// True when `n` is 35 characters and its last two are the CRC-8 of the first 32.
pub fn ksef_number_is_valid(n: &str) -> bool {
    n.len() == 35
        && n.is_ascii()
        && n.as_bytes()[32] == b'-'
        && u8::from_str_radix(&n[33..], 16).is_ok_and(|c| c == crc8(&n.as_bytes()[..32]))
        && n[33..].chars().all(|c| !c.is_ascii_lowercase())
}

/// A 36-character reference number, `20250625-SO-2C3E6C8000-B675CF5D68-07`: the day,
/// the kind (`SO` online session, `EE` invoice, `AU` authentication, `CR` challenge,
/// `EU` session receipt, `TK` token), twenty hex digits and a check pair.
pub fn reference_number(kind: &str, at: DateTime<Utc>, seed: u64, counter: u64) -> String {
    let h = Sha256::digest(format!("{seed}:{kind}:{counter}").as_bytes());
    let micros = (at.timestamp_micros() as u64) & 0xFF_FFFF_FFFF;
    let body = format!(
        "{}-{kind}-{micros:010X}-{:02X}{:02X}{:02X}{:02X}{:02X}",
        at.format("%Y%m%d"),
        h[0],
        h[1],
        h[2],
        h[3],
        h[4]
    );
    let crc = crc8(body.as_bytes());
    format!("{body}-{crc:02X}")
}

/// An opaque bearer token shaped like the Ministry's JWTs (`header.payload.signature`,
/// base64url). Nothing verifies it: the simulator looks it up in its own table.
pub fn jwt_like(
    kind: &str,
    reference: &str,
    nip: &str,
    iat: i64,
    exp: i64,
    seed: u64,
    n: u64,
) -> String {
    let header = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = serde_json::json!({
        "token-type": kind,
        "operation-reference-number": reference,
        "context-identifier-type": "Nip",
        "context-identifier-value": nip,
        "iat": iat,
        "exp": exp,
        "iss": "mai-sim-ksef",
        "aud": "mai-sim-ksef",
    });
    let payload = B64URL.encode(payload.to_string().as_bytes());
    let sig = B64URL.encode(Sha256::digest(format!("{seed}:{n}:{payload}").as_bytes()));
    format!("{header}.{payload}.{sig}")
}

/// `2025-07-11T12:23:56.0154302+00:00`: the contract's examples carry seven fractional
/// digits and an explicit offset.
pub fn timestamp(t: DateTime<Utc>) -> String {
    format!(
        "{}{:07}+00:00",
        t.format("%Y-%m-%dT%H:%M:%S."),
        (t.nanosecond() % 1_000_000_000) / 100
    )
}

/// The UPO's wall-clock form, `2025-09-16T11:05:40.841+02:00` (Warsaw, milliseconds).
pub fn warsaw_millis(t: DateTime<Utc>) -> String {
    t.with_timezone(&Warsaw)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_example_checks() {
        // docs/numer-ksef.md
        assert!(ksef_number_is_valid("5265877635-20250826-0100001AF629-AF"));
        assert_eq!(crc8(b"5265877635-20250826-0100001AF629"), 0xAF);
        assert!(!ksef_number_is_valid("5265877635-20250826-0100001AF629-AE"));
    }

    #[test]
    fn generated_numbers_and_references_have_the_contract_shape() {
        let t = DateTime::parse_from_rfc3339("2026-02-15T23:30:00Z")
            .unwrap()
            .to_utc();
        let n = ksef_number("5265877635", t, 0x0100001AF629);
        // 23:30 UTC is already the next day in Warsaw.
        assert!(n.starts_with("5265877635-20260216-0100001AF629-"), "{n}");
        assert!(ksef_number_is_valid(&n));
        let r = reference_number("SO", t, 1, 2);
        assert_eq!(r.len(), 36, "{r}");
        assert_eq!(&r[8..12], "-SO-");
        assert_eq!(timestamp(t), "2026-02-15T23:30:00.0000000+00:00");
        assert_eq!(warsaw_millis(t), "2026-02-16T00:30:00.000+01:00");
    }
}
