//! The gateway's symmetric secrets, one key per purpose, and the small primitives that use them.
//! Signing keys, the CA key and the PIN key are NOT here: they live in the HSM.
//!
//! Invariants: the TOTP seeds are sealed with an AES-256 key that lives in the HSM
//! (non-extractable; the AES-GCM runs on the HSM worker pool), so the gateway's environment
//! alone cannot open them; the OTP digest key is an HMAC computed inside the HSM (with its own
//! non-extractable key, not the PIN key) over a fixed label, so it is not a function of the
//! environment alone either. Only the access-token key is still derived from the configured
//! `token_secret` ([`Secrets::token_key`]).
//!
//! Sealed values carry their format: `"S2" || nonce (12) || ciphertext || tag (16)` is sealed
//! in the HSM; anything else is the format before it (`nonce || tag || ciphertext`, AES-256-GCM
//! with a key derived from `token_secret`), which still opens, and [`Secrets::needs_reseal`]
//! tells a caller to seal it again in the current format.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rand::rand_bytes;
use openssl::sign::Signer;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use zeroize::Zeroizing;

use crate::hsm::{Hsm, HsmError};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("crypto primitive failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("sealed value is malformed or was tampered with")]
    BadSeal,
    #[error(transparent)]
    Hsm(#[from] HsmError),
}

/// The HSM's AES key that seals TOTP seeds.
const SEAL_KEY: &str = "seal-aes";
/// The HSM's HMAC key from which the other symmetric secrets are derived.
const DERIVE_KEY: &str = "derive-hmac";
/// The first bytes of a value sealed in the HSM.
const SEALED_IN_HSM: &[u8; 2] = b"S2";

/// Purpose-bound keys; the sealing key stays in the HSM.
pub struct Secrets {
    token_key: Zeroizing<Vec<u8>>,
    otp_key: Zeroizing<Vec<u8>>,
    /// Opens seeds sealed before the seal key moved into the HSM.
    legacy_seal_key: Zeroizing<Vec<u8>>,
    hsm: Hsm,
    seal_key_id: Vec<u8>,
}

/// An HMAC-SHA256 key held in memory only, derived once by an HMAC computed inside the HSM
/// with a non-extractable key of the gateway (`name`) over a fixed `label`: nobody without the
/// HSM can compute what it authenticates (SADs in Redis, the audit chain). Each input part is
/// length-prefixed, so that no two different lists of parts give the same input.
pub struct DerivedKey {
    mac: hmac::Hmac<sha2::Sha256>,
}

impl DerivedKey {
    /// Creates the HSM key `name` on first start (callers hold the bootstrap lock), then
    /// derives.
    pub async fn ensure(hsm: &Hsm, name: &str, label: &[u8]) -> Result<DerivedKey, HsmError> {
        hsm.ensure_hmac_key(name).await?;
        DerivedKey::open(hsm, name, label).await
    }

    /// Derives from the HSM key `name`, which must exist.
    pub async fn open(hsm: &Hsm, name: &str, label: &[u8]) -> Result<DerivedKey, HsmError> {
        let key = Zeroizing::new(
            hsm.hmac_sha256(hsm.own_key_id(name), label.to_vec())
                .await?,
        );
        Ok(DerivedKey::from_key(&key))
    }

    /// A key over `key` itself (tests).
    pub fn from_key(key: &[u8]) -> DerivedKey {
        use hmac::Mac;
        // HMAC takes keys of any length: this cannot fail.
        let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
            .unwrap_or_else(|_| hmac::Hmac::<sha2::Sha256>::new(&Default::default()));
        DerivedKey { mac }
    }

    /// HMAC-SHA256 of `parts`, each prefixed by its length (8 bytes, big-endian).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
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

/// The key of `label` derived from `token_secret` (the only source of keys before the HSM).
fn from_token_secret(token_secret: &str, label: &str) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    hmac_sha256(token_secret.as_bytes(), &[b"sigillo-v1", label.as_bytes()]).map(Zeroizing::new)
}

impl Secrets {
    /// Creates the HSM's sealing and derivation keys on first start, derives the OTP digest
    /// key inside the HSM and the access-token key from `token_secret`. Callers serialise this
    /// across nodes (start-up holds a database lock), or two nodes could each create a key.
    pub async fn ensure(hsm: &Hsm, token_secret: &str) -> Result<Self, SecretsError> {
        hsm.ensure_aes_key(SEAL_KEY).await?;
        hsm.ensure_hmac_key(DERIVE_KEY).await?;
        let otp_key = hsm
            .hmac_sha256(hsm.own_key_id(DERIVE_KEY), b"sigillo-v2\0otp-hash".to_vec())
            .await?;
        Ok(Secrets {
            token_key: from_token_secret(token_secret, "access-token")?,
            otp_key: Zeroizing::new(otp_key),
            legacy_seal_key: from_token_secret(token_secret, "seal")?,
            hsm: hsm.clone(),
            seal_key_id: hsm.own_key_id(SEAL_KEY),
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

    /// AES-256-GCM seal of `plain` in the HSM, bound to `context` (e.g. the user id).
    pub async fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let mut nonce = [0u8; 12];
        rand_bytes(&mut nonce)?;
        let sealed = self
            .hsm
            .aes_gcm_encrypt(
                self.seal_key_id.clone(),
                nonce,
                context.as_bytes().to_vec(),
                Zeroizing::new(plain.to_vec()),
            )
            .await?;
        Ok([&SEALED_IN_HSM[..], &nonce[..], &sealed[..]].concat())
    }

    /// Opens a value sealed by [`Secrets::seal`] (or in the format before it) with the same
    /// `context`.
    pub async fn open(
        &self,
        context: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        if let Some(body) = sealed.strip_prefix(&SEALED_IN_HSM[..]) {
            let (nonce, ct) = body.split_at_checked(12).ok_or(SecretsError::BadSeal)?;
            let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretsError::BadSeal)?;
            let opened = self
                .hsm
                .aes_gcm_decrypt(
                    self.seal_key_id.clone(),
                    nonce,
                    context.as_bytes().to_vec(),
                    ct.to_vec(),
                )
                .await?;
            if let Some(plain) = opened {
                return Ok(plain);
            }
            // An old value whose random nonce happened to begin with the marker (1 in 65,536)
            // is not authentic as a new one: it is tried as an old one.
        }
        open_with_key(&self.legacy_seal_key, context, sealed)
    }

    /// True if `sealed` is in the format before the HSM seal (it should be sealed again).
    pub fn needs_reseal(sealed: &[u8]) -> bool {
        !sealed.starts_with(SEALED_IN_HSM)
    }
}

/// Seals `plain` in the format before the HSM seal, with the key derived from `token_secret`.
/// Only for tests and tools that must produce an old value: the gateway never seals this way.
#[doc(hidden)]
pub fn seal_with_token_secret(
    token_secret: &str,
    context: &str,
    plain: &[u8],
) -> Result<Vec<u8>, SecretsError> {
    let key = from_token_secret(token_secret, "seal")?;
    let mut nonce = [0u8; 12];
    rand_bytes(&mut nonce)?;
    let mut tag = [0u8; 16];
    let ct = encrypt_aead(
        Cipher::aes_256_gcm(),
        &key,
        Some(&nonce),
        context.as_bytes(),
        plain,
        &mut tag,
    )?;
    Ok([&nonce[..], &tag[..], &ct[..]].concat())
}

/// Opens a value with only the key derived from `token_secret` (what someone holding the
/// gateway's environment but not the HSM could try).
pub fn open_with_token_secret(
    token_secret: &str,
    context: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    open_with_key(&from_token_secret(token_secret, "seal")?, context, sealed)
}

/// Opens `nonce || tag || ciphertext` (the format before the HSM seal).
fn open_with_key(
    key: &[u8],
    context: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let (nonce, rest) = sealed.split_at_checked(12).ok_or(SecretsError::BadSeal)?;
    let (tag, ct) = rest.split_at_checked(16).ok_or(SecretsError::BadSeal)?;
    decrypt_aead(
        Cipher::aes_256_gcm(),
        key,
        Some(nonce),
        context.as_bytes(),
        ct,
        tag,
    )
    .map(Zeroizing::new)
    .map_err(|_| SecretsError::BadSeal)
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn an_old_seal_opens_only_with_its_key_and_context() {
        let sealed = seal_with_token_secret(SECRET, "alice", b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(
            &open_with_token_secret(SECRET, "alice", &sealed).unwrap()[..],
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(open_with_token_secret(SECRET, "bob", &sealed).is_err());
        assert!(open_with_token_secret("another secret", "alice", &sealed).is_err());
        assert!(open_with_token_secret(SECRET, "alice", &sealed[..10]).is_err());
    }

    #[test]
    fn the_current_format_is_told_apart() {
        assert!(!Secrets::needs_reseal(b"S2............"));
        assert!(Secrets::needs_reseal(b"\x01\x02............"));
    }

    #[test]
    fn derived_keys_differ_per_purpose() {
        let token = from_token_secret(SECRET, "access-token").unwrap();
        let seal = from_token_secret(SECRET, "seal").unwrap();
        assert_ne!(&token[..], &seal[..]);
    }

    #[test]
    fn ct_eq_compares_lengths_and_bytes() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
