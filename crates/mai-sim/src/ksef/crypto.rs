//! The simulator's side of KSeF's cryptography: its own RSA key pairs and self-signed
//! certificates (one per usage, as `GET /security/public-key-certificates` publishes
//! them), RSA-OAEP-SHA256 decryption of the KSeF token and of each session's AES key,
//! and AES-256-CBC/PKCS#7 decryption of the invoices.
//!
//! Written against RustCrypto directly and on purpose sharing nothing with the
//! production client: a misreading of the contract must not hide in both.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Datelike, Duration, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rsa::{Oaep, RsaPrivateKey};
use sha2::{Digest, Sha256};

/// What a published key may be used for (the contract's `PublicKeyCertificateUsage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    KsefTokenEncryption,
    SymmetricKeyEncryption,
}

impl KeyUsage {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsage::KsefTokenEncryption => "KsefTokenEncryption",
            KeyUsage::SymmetricKeyEncryption => "SymmetricKeyEncryption",
        }
    }
}

/// One published key: the private half stays here, the certificate is served.
pub(crate) struct PublishedKey {
    pub usage: KeyUsage,
    private: RsaPrivateKey,
    pub certificate_der: Vec<u8>,
    /// Base64 SHA-256 of the certificate's DER (`klucze-publiczne-do-szyfrowania.md`).
    pub certificate_id: String,
    /// Base64 SHA-256 of the DER SubjectPublicKeyInfo; clients may echo it as `publicKeyId`.
    pub public_key_id: String,
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
}

/// Key generation could not finish (it should not; the message says which step).
#[derive(Debug, thiserror::Error)]
#[error("KSeF simulator key material: {0}")]
pub struct KeyError(String);

/// RSA-2048 keys generated from the seed. Prime search in an unoptimised test build
/// takes seconds, so each (seed, usage) is generated once per process and reused by
/// every simulator started with that seed.
fn private_key(seed: u64, usage: KeyUsage) -> Result<RsaPrivateKey, KeyError> {
    static CACHE: OnceLock<Mutex<HashMap<(u64, KeyUsage), RsaPrivateKey>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = map.get(&(seed, usage)) {
        return Ok(k.clone());
    }
    let stream = match usage {
        KeyUsage::KsefTokenEncryption => 0x70_6b,
        KeyUsage::SymmetricKeyEncryption => 0x73_6b,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ stream);
    let key = RsaPrivateKey::new(&mut rng, 2048).map_err(|e| {
        KeyError(format!(
            "generating the RSA-2048 {} key: {e}",
            usage.as_str()
        ))
    })?;
    map.insert((seed, usage), key.clone());
    Ok(key)
}

pub(crate) fn sha256_b64(bytes: &[u8]) -> String {
    B64.encode(Sha256::digest(bytes))
}

impl PublishedKey {
    /// The key of `usage` for `seed` and a self-signed certificate valid from a day
    /// before `now` for two years (the Ministry's certificates run two years).
    pub fn generate(seed: u64, usage: KeyUsage, now: DateTime<Utc>) -> Result<Self, KeyError> {
        let private = private_key(seed, usage)?;
        let spki = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| KeyError(format!("encoding the public key: {e}")))?;
        let pkcs8 = private
            .to_pkcs8_der()
            .map_err(|e| KeyError(format!("encoding the private key: {e}")))?;
        let key_pair = rcgen::KeyPair::try_from(pkcs8.as_bytes())
            .map_err(|e| KeyError(format!("loading the RSA key into rcgen: {e}")))?;
        let valid_from = now - Duration::days(1);
        let valid_to = valid_from + Duration::days(730);
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| KeyError(format!("certificate parameters: {e}")))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Ministerstwo Finansów");
        params.distinguished_name.push(
            rcgen::DnType::OrganizationName,
            "mai-sim KSeF simulator (not the Ministry)",
        );
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "PL");
        params.not_before = rcgen::date_time_ymd(
            valid_from.year(),
            valid_from.month() as u8,
            valid_from.day() as u8,
        );
        params.not_after = rcgen::date_time_ymd(
            valid_to.year(),
            valid_to.month() as u8,
            valid_to.day() as u8,
        );
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::DataEncipherment,
        ];
        let cert = params.self_signed(&key_pair).map_err(|e| {
            KeyError(format!(
                "self-signing the {} certificate: {e}",
                usage.as_str()
            ))
        })?;
        let certificate_der = cert.der().to_vec();
        Ok(PublishedKey {
            usage,
            certificate_id: sha256_b64(&certificate_der),
            public_key_id: sha256_b64(spki.as_bytes()),
            certificate_der,
            private,
            valid_from: ymd_to_chrono(valid_from),
            valid_to: ymd_to_chrono(valid_to),
        })
    }

    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256, as `EncryptionInfo` and
    /// `InitTokenAuthenticationRequest` prescribe.
    pub fn decrypt_oaep(&self, ciphertext: &[u8]) -> Result<Vec<u8>, rsa::Error> {
        self.private.decrypt(Oaep::new::<Sha256>(), ciphertext)
    }
}

/// The certificate carries whole days; report the same instants it does.
fn ymd_to_chrono(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(t, |d| d.and_utc())
}

/// AES-256-CBC with PKCS#7 padding; `None` when the key/IV lengths or the padding are wrong.
pub(crate) fn aes_cbc_decrypt(key: &[u8; 32], iv: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    if iv.len() != 16 || ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return None;
    }
    cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockModeEncrypt;

    #[test]
    fn cbc_round_trip_and_bad_padding() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .unwrap()
            .encrypt_padded_vec::<Pkcs7>(b"<Faktura/>");
        assert_eq!(aes_cbc_decrypt(&key, &iv, &ct).unwrap(), b"<Faktura/>");
        assert!(aes_cbc_decrypt(&[8u8; 32], &iv, &ct).is_none_or(|p| p != b"<Faktura/>"));
        assert!(aes_cbc_decrypt(&key, &iv, &ct[..15]).is_none());
    }
}
