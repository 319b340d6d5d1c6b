//! KOD I, the QR link printed on an invoice's visualisation (`docs/kody-qr.md`): anyone
//! holding the PDF can check that the invoice is in KSeF and unchanged. The link is built
//! locally from the invoice; KSeF is not asked.

use crate::config::Environment;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};

/// `https://qr[-test|-demo].ksef.mf.gov.pl/invoice/{NIP}/{DD-MM-YYYY}/{hash}`: the seller's
/// NIP, the issue date (`P_1`) and the SHA-256 of the exact XML bytes sent to KSeF in
/// Base64URL without padding (43 characters). `xml` must be byte for byte what was sent:
/// a re-serialised document has another hash and its link finds nothing.
pub fn qr_url(env: Environment, seller_nip: &str, issue_date: NaiveDate, xml: &[u8]) -> String {
    let hash: [u8; 32] = Sha256::digest(xml).into();
    qr_url_for_hash(env, seller_nip, issue_date, &hash)
}

fn qr_url_for_hash(
    env: Environment,
    seller_nip: &str,
    issue_date: NaiveDate,
    sha256: &[u8; 32],
) -> String {
    format!(
        "{}/invoice/{}/{}/{}",
        env.qr_base_url(),
        seller_nip,
        issue_date.format("%d-%m-%Y"),
        URL_SAFE_NO_PAD.encode(sha256)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_example_in_the_docs() {
        // docs/kody-qr.md, KOD I: NIP 1111111111, issued 01-02-2026, hash
        // UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE on the TEST environment.
        let hash: [u8; 32] = URL_SAFE_NO_PAD
            .decode("UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE")
            .unwrap()
            .try_into()
            .unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
        assert_eq!(
            qr_url_for_hash(Environment::Test, "1111111111", date, &hash),
            "https://qr-test.ksef.mf.gov.pl/invoice/1111111111/01-02-2026/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
        );
    }

    #[test]
    fn hashes_the_exact_bytes_per_environment() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        // SHA-256 of the empty string, Base64URL without padding.
        let empty = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";
        assert_eq!(
            qr_url(Environment::Prd, "5265877635", date, b""),
            format!("https://qr.ksef.mf.gov.pl/invoice/5265877635/31-12-2026/{empty}")
        );
        assert_eq!(
            qr_url(Environment::Demo, "5265877635", date, b""),
            format!("https://qr-demo.ksef.mf.gov.pl/invoice/5265877635/31-12-2026/{empty}")
        );
        // One byte more (a trailing newline) is another link.
        assert_ne!(
            qr_url(Environment::Prd, "5265877635", date, b"<Faktura/>"),
            qr_url(Environment::Prd, "5265877635", date, b"<Faktura/>\n")
        );
        let url = qr_url(Environment::Test, "5265877635", date, "zażółć".as_bytes());
        let hash = url.rsplit('/').next().unwrap();
        assert_eq!(hash.len(), 43, "{url}");
        assert!(!hash.contains(['+', '/', '=']), "{url}");
    }
}
