//! Bearer-token checks in constant time.
//!
//! Both sides are hashed first so the comparison takes the same time whatever the
//! length of the presented token.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Admin,
    Proxy,
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub fn token_matches(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// HMAC-SHA256 signature check of a webhook body: header value `sha256=<hex>`
/// (a bare hex digest is accepted too).
pub fn webhook_signature_ok(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    use hmac::{Hmac, Mac};
    let Some(h) = header else { return false };
    let hex_part = h.trim().strip_prefix("sha256=").unwrap_or(h.trim());
    let Ok(sig) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// `sha256=<hex>` for a body (tests and senders).
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_signatures() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("", "abc"));
        let sig = webhook_signature("s3cret", b"{}");
        assert!(webhook_signature_ok("s3cret", b"{}", Some(&sig)));
        assert!(!webhook_signature_ok("s3cret", b"{ }", Some(&sig)));
        assert!(!webhook_signature_ok("other", b"{}", Some(&sig)));
        assert!(!webhook_signature_ok("s3cret", b"{}", Some("sha256=zz")));
        assert!(!webhook_signature_ok("s3cret", b"{}", None));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer  tok ".parse().unwrap());
        assert_eq!(bearer(&h), Some("tok"));
    }
}
