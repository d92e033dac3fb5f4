//! Keys the gateway derives from its configured `token_secret`, one per purpose (domain
//! separated with HMAC labels), and the small symmetric primitives that use them. Signing keys,
//! the CA key and the PIN key are NOT here: they live in the HSM.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rand::rand_bytes;
use openssl::sign::Signer;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("crypto primitive failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("sealed value is malformed or was tampered with")]
    BadSeal,
}

/// Purpose-bound keys derived from the token secret.
pub struct Secrets {
    token_key: Zeroizing<Vec<u8>>,
    otp_key: Zeroizing<Vec<u8>>,
    seal_key: Zeroizing<Vec<u8>>,
}

/// HMAC-SHA256(key, parts joined by 0x00).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, SecretsError> {
    let pkey = PKey::hmac(key)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &pkey)?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            signer.update(&[0])?;
        }
        signer.update(part)?;
    }
    Ok(signer.sign_to_vec()?)
}

impl Secrets {
    pub fn derive(token_secret: &str) -> Result<Self, SecretsError> {
        let derive = |label: &str| {
            hmac_sha256(token_secret.as_bytes(), &[b"sigillo-v1", label.as_bytes()])
                .map(Zeroizing::new)
        };
        Ok(Secrets {
            token_key: derive("access-token")?,
            otp_key: derive("otp-hash")?,
            seal_key: derive("seal")?,
        })
    }

    /// Key of the HS256 access tokens.
    pub fn token_key(&self) -> &[u8] {
        &self.token_key
    }

    /// Hex HMAC of an OTP for `user_id`: what Redis stores instead of the code.
    pub fn otp_digest(&self, user_id: &str, code: &str) -> Result<String, SecretsError> {
        Ok(hex::encode(hmac_sha256(
            &self.otp_key,
            &[user_id.as_bytes(), code.as_bytes()],
        )?))
    }

    /// AES-256-GCM seal of `plain`, bound to `context` (e.g. the user id): nonce || tag || ct.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let mut nonce = [0u8; 12];
        rand_bytes(&mut nonce)?;
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.seal_key,
            Some(&nonce),
            context.as_bytes(),
            plain,
            &mut tag,
        )?;
        Ok([&nonce[..], &tag[..], &ct[..]].concat())
    }

    /// Opens a value sealed by `seal` with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let (nonce, rest) = sealed.split_at_checked(12).ok_or(SecretsError::BadSeal)?;
        let (tag, ct) = rest.split_at_checked(16).ok_or(SecretsError::BadSeal)?;
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.seal_key,
            Some(nonce),
            context.as_bytes(),
            ct,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| SecretsError::BadSeal)
    }
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_is_bound_to_its_context() {
        let s = Secrets::derive("0123456789abcdef0123456789abcdef").unwrap();
        let sealed = s.seal("alice", b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(&s.open("alice", &sealed).unwrap()[..], b"JBSWY3DPEHPK3PXP");
        assert!(s.open("bob", &sealed).is_err());
        assert!(s.open("alice", &sealed[..10]).is_err());
    }

    #[test]
    fn derived_keys_differ_per_purpose() {
        let s = Secrets::derive("0123456789abcdef0123456789abcdef").unwrap();
        assert_ne!(s.token_key(), &s.otp_key[..]);
        assert_ne!(&s.otp_key[..], &s.seal_key[..]);
    }

    #[test]
    fn otp_digest_depends_on_user_and_code() {
        let s = Secrets::derive("0123456789abcdef0123456789abcdef").unwrap();
        let a = s.otp_digest("alice", "123456").unwrap();
        assert_ne!(a, s.otp_digest("bob", "123456").unwrap());
        assert_ne!(a, s.otp_digest("alice", "123457").unwrap());
        assert!(!a.contains("123456"));
    }

    #[test]
    fn ct_eq_compares_lengths_and_bytes() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
