//! The secrets this client holds. The KSeF token authenticates as the seller (it is what
//! the operator created in KSeF and keeps in the OS keychain); the bearer tokens KSeF
//! hands out grant the same access for minutes (access) or days (refresh). None of them is
//! ever formatted whole: `Debug` and `Display` show [`mai_core::secret::mask_key`] at most,
//! and the plaintext only goes into a request (an `Authorization` header or the
//! RSA-encrypted `token|timestamp`).

use mai_core::secret::mask_key;
use std::fmt;

/// The seller's KSeF token (`POST /tokens` in KSeF, shown once to whoever created it).
#[derive(Clone)]
pub struct KsefToken(String);

impl KsefToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into().trim().to_owned())
    }

    /// The masked token (`…abcd`), for status pages and logs.
    pub fn label(&self) -> String {
        mask_key(&self.0)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for KsefToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KsefToken({})", self.label())
    }
}

impl fmt::Display for KsefToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A JWT KSeF issued (authentication, access or refresh token).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bearer(String);

impl Bearer {
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }

    pub(crate) fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bearer({})", mask_key(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_token() {
        let secret =
            "20251010-EC-0123456789-ABCDEF0123-45|nip-5265877635|0123456789abcdefsecretwxyz";
        let t = KsefToken::new(format!("  {secret}\n"));
        assert_eq!(
            t.expose(),
            secret,
            "surrounding whitespace is not part of the token"
        );
        for shown in [format!("{t:?}"), format!("{t}"), t.label()] {
            assert!(!shown.contains("secret"), "{shown}");
            assert!(!shown.contains("0123456789"), "{shown}");
            assert!(
                shown.ends_with("wxyz") || shown.ends_with("wxyz)"),
                "{shown}"
            );
        }
        let b = Bearer::new("eyJhbGciOiJIUzI1NiJ9.eyJzZWNyZXQiOjF9.signaturewxyz".into());
        let shown = format!("{b:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
    }
}
