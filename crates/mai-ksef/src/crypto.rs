//! The cryptography KSeF asks of a client (`docs/uwierzytelnianie.md`,
//! `docs/sesja-interaktywna.md`, the Ministry's C# `CryptographyService`):
//!
//! - RSAES-OAEP with SHA-256 and MGF1-SHA-256, empty label, under the RSA key of the
//!   Ministry's X.509 certificate: the `token|timestampMs` text and each session's AES key;
//! - AES-256-CBC with PKCS#7 padding: each invoice, under the session's key and IV. The IV
//!   travels once, in the session opening; the ciphertext is sent without it, as the C#
//!   client does (the docs' "IV as a prefix of the ciphertext" is what the readers of the
//!   docs flagged as ambiguous; the reference client is what KSeF is tested with);
//! - SHA-256 in Base64 of the plain and the encrypted invoice, with their byte sizes.
//!
//! Fresh key material comes from the operating system's RNG.

use aes::cipher::{block_padding::Pkcs7, BlockModeEncrypt, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::fmt;
use x509_cert::der::{Decode, Encode};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;

/// The RSA key of one of the Ministry's certificates, with the id KSeF knows it by.
#[derive(Clone)]
pub(crate) struct MinistryKey {
    pub key: RsaPublicKey,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (DER), Base64: KSeF's `publicKeyId`.
    pub spki_sha256: String,
}

impl fmt::Debug for MinistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MinistryKey")
            .field("spki_sha256", &self.spki_sha256)
            .finish_non_exhaustive()
    }
}

/// Reads the RSA public key out of an X.509 certificate (DER).
pub(crate) fn key_from_certificate_der(der: &[u8]) -> Result<MinistryKey, String> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| format!("the certificate is not X.509 DER ({e})"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("cannot re-encode the certificate's public key ({e})"))?;
    let key = RsaPublicKey::from_public_key_der(&spki).map_err(|e| {
        format!(
            "the certificate's key is not an RSA key (algorithm {}): {e}",
            cert.tbs_certificate.subject_public_key_info.algorithm.oid
        )
    })?;
    Ok(MinistryKey {
        key,
        spki_sha256: sha256_b64(&spki),
    })
}

/// RSAES-OAEP, SHA-256 and MGF1-SHA-256, no label.
pub(crate) fn rsa_oaep_sha256(key: &RsaPublicKey, message: &[u8]) -> Result<Vec<u8>, String> {
    key.encrypt(&mut OsRng, Oaep::new::<Sha256>(), message)
        .map_err(|e| format!("RSA-OAEP encryption failed ({e})"))
}

/// One online session's AES-256 key and IV. Never formatted: `Debug` shows nothing of it.
pub(crate) struct SessionKey {
    key: [u8; 32],
    iv: [u8; 16],
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// A fresh key and IV from the OS RNG; one per session (the docs recommend a new key
    /// for every session).
    pub(crate) fn generate() -> Self {
        let mut key = [0u8; 32];
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut key);
        OsRng.fill_bytes(&mut iv);
        Self { key, iv }
    }

    #[cfg(test)]
    pub(crate) fn from_parts(key: [u8; 32], iv: [u8; 16]) -> Self {
        Self { key, iv }
    }

    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    pub(crate) fn iv(&self) -> &[u8; 16] {
        &self.iv
    }

    /// AES-256-CBC with PKCS#7 padding: always 1 to 16 bytes longer than `plain`.
    pub(crate) fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        Aes256CbcEnc::new(&self.key.into(), &self.iv.into()).encrypt_padded_vec::<Pkcs7>(plain)
    }
}

impl Drop for SessionKey {
    fn drop(&mut self) {
        // Best effort: the key should not outlive its session in freed memory.
        self.key.fill(0);
        self.iv.fill(0);
    }
}

pub(crate) fn sha256_b64(bytes: &[u8]) -> String {
    B64.encode(Sha256::digest(bytes))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub(crate) fn b64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64.decode(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockModeDecrypt;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::RsaPrivateKey;

    const CERT: &[u8] = include_bytes!("../tests/fixtures/crypto/test-cert.der");
    const KEY: &[u8] = include_bytes!("../tests/fixtures/crypto/test-key.pk8.der");

    fn private_key() -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_der(KEY).unwrap()
    }

    #[test]
    fn reads_the_rsa_key_and_its_id_from_a_certificate() {
        let k = key_from_certificate_der(CERT).unwrap();
        assert_eq!(k.key, private_key().to_public_key());
        // openssl x509 -inform DER -in test-cert.der -pubkey -noout
        //   | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64
        assert_eq!(
            k.spki_sha256,
            "ounwBdo6/B94/05qxpg4seGCRYxwMsyylrXBoRr9aoE="
        );

        let e = key_from_certificate_der(b"not a certificate").unwrap_err();
        assert!(e.contains("X.509"), "{e}");
        let e = key_from_certificate_der(&CERT[..CERT.len() - 10]).unwrap_err();
        assert!(e.contains("X.509"), "{e}");
    }

    #[test]
    fn rsa_oaep_sha256_round_trip() {
        let public = key_from_certificate_der(CERT).unwrap().key;
        let private = private_key();
        let message = "20251010-EC-0123456789-ABCDEF0123-45|nip-5265877635|c0ffee|1752236636015";
        let c1 = rsa_oaep_sha256(&public, message.as_bytes()).unwrap();
        let c2 = rsa_oaep_sha256(&public, message.as_bytes()).unwrap();
        assert_eq!(c1.len(), 256, "2048-bit modulus");
        assert_ne!(c1, c2, "OAEP is randomised");
        for c in [&c1, &c2] {
            let plain = private.decrypt(Oaep::new::<Sha256>(), c).unwrap();
            assert_eq!(plain, message.as_bytes());
        }
        // Both the label hash and MGF1 are SHA-256: another hash in either cannot open it.
        assert!(private.decrypt(Oaep::new::<sha2::Sha512>(), &c1).is_err());
        assert!(private
            .decrypt(Oaep::new_with_mgf_hash::<Sha256, sha2::Sha512>(), &c1)
            .is_err());
        // A 32-byte session key fits; a message longer than k - 2*32 - 2 = 190 does not.
        assert!(rsa_oaep_sha256(&public, &[7u8; 32]).is_ok());
        assert!(rsa_oaep_sha256(&public, &[7u8; 190]).is_ok());
        assert!(rsa_oaep_sha256(&public, &[7u8; 191]).is_err());
    }

    fn decrypt(k: &SessionKey, c: &[u8]) -> Vec<u8> {
        cbc::Decryptor::<aes::Aes256>::new(k.key().into(), k.iv().into())
            .decrypt_padded_vec::<Pkcs7>(c)
            .unwrap()
    }

    #[test]
    fn aes_cbc_matches_openssl() {
        // printf 'Zażółć gęślą jaźń <Faktura/>\n' | openssl enc -aes-256-cbc \
        //   -K 000102…1e1f -iv f0e1d2c3b4a5968778695a4b3c2d1e0f | base64
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = i as u8;
        }
        let iv = [
            0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d,
            0x1e, 0x0f,
        ];
        let k = SessionKey::from_parts(key, iv);
        let plain = "Zażółć gęślą jaźń <Faktura/>\n".as_bytes();
        assert_eq!(plain.len(), 38);
        let c = k.encrypt(plain);
        assert_eq!(
            b64(&c),
            "aMCF7cWRHpmSl+44Oc4X/NLFKhAiKsgaLYfYMZgeWtTIYQ/K5feHUtw075HKWXI1"
        );
        assert_eq!(decrypt(&k, &c), plain);
        // openssl dgst -sha256 -binary | base64
        assert_eq!(
            sha256_b64(plain),
            "9o+wyXAs6RaWhYBireRrEq2GiZdQLJXcmF7MA90k5EI="
        );
    }

    #[test]
    fn pkcs7_padding_always_adds_a_block_part() {
        let k = SessionKey::generate();
        for n in [0usize, 1, 15, 16, 17, 31, 32, 1000] {
            let plain: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let c = k.encrypt(&plain);
            assert_eq!(c.len(), (n / 16 + 1) * 16, "{n} bytes");
            assert_eq!(decrypt(&k, &c), plain);
        }
    }

    #[test]
    fn session_keys_are_fresh() {
        let a = SessionKey::generate();
        let b = SessionKey::generate();
        assert_ne!(a.key(), b.key());
        assert_ne!(a.iv(), b.iv());
        assert_ne!(a.key(), &[0u8; 32]);
        assert_eq!(format!("{a:?}"), "SessionKey(..)");
        assert_eq!(a.encrypt(b"x"), a.encrypt(b"x"), "one IV per session");
    }
}
