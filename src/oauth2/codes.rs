//! Authorization codes: 256 random bits, valid once for `oauth2.code_ttl_secs`, stored in Redis
//! by their SHA-256 with what the token endpoint needs to check and issue. Redeeming is one
//! `GETDEL`: two requests with one code, on any nodes, get it at most once between them.
//!
//! A credential code carries its SAD sealed (AES-256-GCM) under a key derived from the code
//! itself: Redis holds no usable SAD, only the code's holder can open it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::sha::sha256;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use rand::RngCore;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::OAuth2Error;
use crate::kv::Kv;

/// What a code was issued for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: String,
    pub user_id: String,
    /// The user's session epoch at sign-in.
    pub epoch: u64,
    pub scope: String,
    pub credential_id: Option<Uuid>,
    /// The SAD's deadline (unix seconds): the token lives no longer.
    pub sad_expires_at: Option<i64>,
    pub authorization_details: Option<Value>,
    /// The SAD, sealed under the code (hex of nonce, ciphertext, tag).
    sealed_sad: Option<String>,
}

impl CodeGrant {
    /// What a code for `request`, signed in as `user_id` at `epoch`, grants.
    pub fn new(
        request: &super::request::AuthorizationRequest,
        user_id: &str,
        epoch: u64,
        sad_expires_at: Option<i64>,
    ) -> CodeGrant {
        CodeGrant {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_given: request.redirect_uri_given,
            code_challenge: request.code_challenge.clone(),
            user_id: user_id.to_owned(),
            epoch,
            scope: request.scope.clone(),
            credential_id: request.grant.as_ref().map(|g| g.credential_id),
            sad_expires_at,
            authorization_details: request.authorization_details.clone(),
            sealed_sad: None,
        }
    }
}

fn key(kv: &Kv, code: &str) -> String {
    kv.key(&format!(
        "oauth2:code:{}",
        hex::encode(sha256(code.as_bytes()))
    ))
}

fn seal_key(code: &str) -> [u8; 32] {
    sha256(&[b"sigillo-oauth2-code-sad\0".as_slice(), code.as_bytes()].concat())
}

fn seal(code: &str, sad: &str) -> Result<String, OAuth2Error> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut tag = [0u8; 16];
    let sealed = encrypt_aead(
        Cipher::aes_256_gcm(),
        &seal_key(code),
        Some(&nonce),
        b"sad",
        sad.as_bytes(),
        &mut tag,
    )
    .map_err(|_| OAuth2Error::Seal)?;
    Ok(hex::encode([nonce.as_slice(), &sealed, &tag].concat()))
}

fn open(code: &str, sealed: &str) -> Option<String> {
    let bytes = hex::decode(sealed).ok()?;
    let (nonce, rest) = bytes.split_at_checked(12)?;
    let (ciphertext, tag) = rest.split_at_checked(rest.len().checked_sub(16)?)?;
    let plain = decrypt_aead(
        Cipher::aes_256_gcm(),
        &seal_key(code),
        Some(nonce),
        b"sad",
        ciphertext,
        tag,
    )
    .ok()?;
    String::from_utf8(plain).ok()
}

/// Issues a code for `grant` (and its SAD), valid `ttl` seconds.
pub async fn issue(
    kv: &Kv,
    mut grant: CodeGrant,
    sad: Option<&str>,
    ttl: u64,
) -> Result<String, OAuth2Error> {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let code = URL_SAFE_NO_PAD.encode(random);
    grant.sealed_sad = sad.map(|s| seal(&code, s)).transpose()?;
    let value = serde_json::to_string(&grant).map_err(|_| OAuth2Error::Seal)?;
    let mut conn = kv.conn();
    let () = conn
        .set_ex(key(kv, &code), value, ttl)
        .await
        .map_err(crate::kv::KvError)?;
    Ok(code)
}

/// Takes the grant of `code` (and its SAD), once; `None` if unknown, expired or used.
pub async fn redeem(
    kv: &Kv,
    code: &str,
) -> Result<Option<(CodeGrant, Option<String>)>, OAuth2Error> {
    if code.len() != 43 {
        return Ok(None);
    }
    let mut conn = kv.conn();
    let stored: Option<String> = redis::cmd("GETDEL")
        .arg(key(kv, code))
        .query_async(&mut conn)
        .await
        .map_err(crate::kv::KvError)?;
    let Some(grant) = stored.and_then(|s| serde_json::from_str::<CodeGrant>(&s).ok()) else {
        return Ok(None);
    };
    let sad = match &grant.sealed_sad {
        Some(sealed) => match open(code, sealed) {
            Some(sad) => Some(sad),
            None => return Ok(None),
        },
        None => None,
    };
    Ok(Some((grant, sad)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_sad_opens_only_with_its_code() {
        let sealed = seal("code-1", "the-sad").unwrap();
        assert_eq!(open("code-1", &sealed).as_deref(), Some("the-sad"));
        assert_eq!(open("code-2", &sealed), None);
        assert_eq!(open("code-1", "00"), None);
        assert!(!sealed.contains(&hex::encode("the-sad")));
    }
}
