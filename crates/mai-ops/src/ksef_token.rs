//! The KSeF token in the OS keychain, beside the OpenRouter keys and tracker tokens
//! ([`crate::keys`], same service and the same no-plaintext rule).
//!
//! A KSeF token stands for the seller in KSeF: whoever holds it issues invoices in the
//! seller's name. So it is kept per seller NIP *and* per KSeF environment (entry
//! `ksef-token:<NIP>:<environment>` under [`crate::keys::SERVICE`]): a token stored for
//! the test environment or a simulator is never the one sent to production, and a
//! production token is never sent to a URL someone put in `KSEF_BASE_URL`. The token is
//! only ever shown masked (`…abcd`); it reaches nothing but the keychain and the KSeF
//! client ([`KsefToken::expose`]).

use std::fmt;

use mai_wire::ksef::KsefEnvironment;

use crate::keys::{mask, KeyError, Keychain};

/// What errors call the secret.
const WHAT: &str = "KSeF token";

/// Longest token KSeF issues (`GenerateTokenResponse.token`, maxLength 160 in the
/// Ministry's open-api.json).
pub const MAX_TOKEN_LEN: usize = 160;

/// Which KSeF token: the seller's, for one KSeF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsefTokenKey {
    /// 10 digits, normalised.
    pub seller_nip: String,
    pub environment: KsefEnvironment,
    /// Where the token is sent; names the entry of a custom KSeF.
    pub base_url: url::Url,
}

impl KsefTokenKey {
    /// The keychain entry's user name: `ksef-token:1234563218:prd`, or for a KSeF of
    /// one's own `ksef-token:1234563218:custom:127.0.0.1:18443` (host and port).
    pub fn entry_user(&self) -> String {
        match self.environment {
            KsefEnvironment::Custom => format!(
                "ksef-token:{}:custom:{}:{}",
                self.seller_nip,
                self.base_url.host_str().unwrap_or(""),
                self.base_url.port_or_known_default().unwrap_or(0)
            ),
            named => format!("ksef-token:{}:{named}", self.seller_nip),
        }
    }

    /// How errors and the audit log name the token's place, e.g. `prd` or
    /// `custom (https://127.0.0.1:18443/v2)`.
    pub fn environment_label(&self) -> String {
        match self.environment {
            KsefEnvironment::Custom => format!("custom ({})", self.base_url),
            named => named.to_string(),
        }
    }

    fn whose(&self) -> String {
        format!(
            "seller NIP {} ({})",
            self.seller_nip,
            self.environment_label()
        )
    }
}

/// A KSeF token read from the keychain. Its `Debug` and `Display` show only the mask, so
/// it can sit in structs that are logged.
#[derive(Clone, PartialEq, Eq)]
pub struct KsefToken(String);

impl KsefToken {
    /// The token itself, for the KSeF client's authentication request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Debug for KsefToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KsefToken({})", self.masked())
    }
}

impl fmt::Display for KsefToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Whether `s` has the shape of a KSeF reference number (`20250625-EC-2C3E6C8000-B675CF5D68-07`,
/// 36 characters): what KSeF shows next to a token, and easy to paste instead of it.
fn is_reference_number(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let hex = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    };
    parts.len() == 5
        && parts[0].len() == 8
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1].len() == 2
        && parts[1].bytes().all(|b| b.is_ascii_uppercase())
        && parts[2].len() == 10
        && hex(parts[2])
        && parts[3].len() == 10
        && hex(parts[3])
        && parts[4].len() == 2
        && hex(parts[4])
}

/// Refuses what cannot be a KSeF token for this seller before it reaches the keychain.
/// Messages show the token masked at most.
pub fn validate_ksef_token(token: &str, seller_nip: &str) -> Result<(), KeyError> {
    if token.is_empty() {
        return Err(KeyError::Invalid(
            "the KSeF token is empty; nothing was stored. Paste the token KSeF showed once when it was created".into(),
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(KeyError::Invalid(format!(
            "the KSeF token {} contains spaces, line breaks or control characters; paste it again as one line",
            mask(token)
        )));
    }
    if token.chars().count() > MAX_TOKEN_LEN {
        return Err(KeyError::Invalid(format!(
            "the KSeF token {} is longer than the {MAX_TOKEN_LEN} characters KSeF issues; paste only the token",
            mask(token)
        )));
    }
    if is_reference_number(token) {
        return Err(KeyError::Invalid(
            "that is a KSeF reference number (YYYYMMDD-XX-…), not the token; the token itself is shown once, when it is created in KSeF".into(),
        ));
    }
    // KSeF tokens carry their context (`…|nip-1234563218|…`); one of another NIP would
    // only fail later, at authentication, with a less clear message.
    for part in token.split('|') {
        if let Some(nip) = part.strip_prefix("nip-") {
            if nip != seller_nip {
                return Err(KeyError::Invalid(format!(
                    "the KSeF token {} is for NIP {nip}, but the seller in the billing file is NIP {seller_nip}; create a token in the seller's KSeF context",
                    mask(token)
                )));
            }
        }
    }
    Ok(())
}

impl Keychain {
    /// The KSeF token of `key`; a missing one is [`KeyError::MissingKsefToken`].
    pub fn ksef_token(&self, key: &KsefTokenKey) -> Result<KsefToken, KeyError> {
        match self.get_entry(&key.entry_user(), WHAT, &key.whose()) {
            Ok(t) => Ok(KsefToken(t)),
            Err(KeyError::Missing { .. }) => Err(KeyError::MissingKsefToken {
                nip: key.seller_nip.clone(),
                environment: key.environment_label(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Stores (or replaces) the KSeF token of `key`; returns it masked.
    pub fn set_ksef_token(&self, key: &KsefTokenKey, token: &str) -> Result<String, KeyError> {
        let token = token.trim();
        validate_ksef_token(token, &key.seller_nip)?;
        self.set_entry(&key.entry_user(), token, WHAT, &key.whose())?;
        let masked = mask(token);
        tracing::info!(
            seller_nip = %key.seller_nip,
            environment = %key.environment_label(),
            token = %masked,
            "KSeF token stored in keychain"
        );
        Ok(masked)
    }

    /// Deletes the KSeF token of `key`; deleting what is not there is not an error.
    pub fn delete_ksef_token(&self, key: &KsefTokenKey) -> Result<(), KeyError> {
        self.delete_entry(&key.entry_user(), WHAT, &key.whose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIP: &str = "1234563218";
    const TOKEN: &str =
        "20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";

    fn key(env: KsefEnvironment, url: &str) -> KsefTokenKey {
        KsefTokenKey {
            seller_nip: NIP.into(),
            environment: env,
            base_url: url.parse().unwrap(),
        }
    }

    fn mock() -> Keychain {
        Keychain::with_store(keyring_core::mock::Store::new().unwrap())
    }

    #[test]
    fn entries_are_per_seller_and_environment() {
        let prd = key(KsefEnvironment::Prd, "https://api.ksef.mf.gov.pl/v2");
        assert_eq!(prd.entry_user(), "ksef-token:1234563218:prd");
        let sim = key(KsefEnvironment::Custom, "http://127.0.0.1:18200/v2");
        assert_eq!(
            sim.entry_user(),
            "ksef-token:1234563218:custom:127.0.0.1:18200"
        );
        assert_eq!(
            sim.environment_label(),
            "custom (http://127.0.0.1:18200/v2)"
        );
        let k = mock();
        k.set_ksef_token(&prd, TOKEN).unwrap();
        let e = k.ksef_token(&sim).unwrap_err();
        assert!(matches!(e, KeyError::MissingKsefToken { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("1234563218")
                && msg.contains("custom")
                && msg.contains("maictl ksef token set"),
            "{msg}"
        );
        assert_eq!(k.ksef_token(&prd).unwrap().expose(), TOKEN);
    }

    #[test]
    fn set_replace_delete_and_the_token_only_ever_masked() {
        let k = mock();
        let test = key(KsefEnvironment::Test, "https://api-test.ksef.mf.gov.pl/v2");
        assert_eq!(
            k.set_ksef_token(&test, &format!("  {TOKEN}\n")).unwrap(),
            "…6d5e"
        );
        let t = k.ksef_token(&test).unwrap();
        assert_eq!(t.expose(), TOKEN);
        assert_eq!(format!("{t:?} {t}"), "KsefToken(…6d5e) …6d5e");
        let other = TOKEN.replace("6d5e", "9999");
        assert_eq!(k.set_ksef_token(&test, &other).unwrap(), "…9999");
        assert_eq!(k.ksef_token(&test).unwrap().expose(), other);
        k.delete_ksef_token(&test).unwrap();
        k.delete_ksef_token(&test).unwrap();
        assert!(matches!(
            k.ksef_token(&test),
            Err(KeyError::MissingKsefToken { .. })
        ));
    }

    #[test]
    fn refuses_what_is_not_a_token_of_this_seller_without_echoing_it() {
        let bad = |t: &str| validate_ksef_token(t, NIP).unwrap_err().to_string();
        assert!(bad("").contains("empty"));
        let two_lines = format!("{}\n{}", &TOKEN[..40], &TOKEN[40..]);
        let m = bad(&two_lines);
        assert!(m.contains("one line") && !m.contains(&TOKEN[..40]), "{m}");
        assert!(bad(&"a".repeat(161)).contains("160"));
        let m = bad("20251010-EC-1B5A8A2000-9D0F7C3E21-5A");
        assert!(m.contains("reference number"), "{m}");
        let m = bad(&TOKEN.replace("nip-1234563218", "nip-5265877635"));
        assert!(
            m.contains("5265877635") && m.contains("1234563218") && !m.contains("6f1c0e7b"),
            "{m}"
        );
        validate_ksef_token(TOKEN, NIP).unwrap();
        // A token without the context part is accepted: its format is KSeF's business.
        validate_ksef_token("opaque-token-from-a-simulator-0001", NIP).unwrap();
    }
}
