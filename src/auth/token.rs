//! Access tokens: short-lived HS256 JWTs, verified locally.
//!
//! The key is `security.jwt_secret` (or, when that is empty, the key derived from
//! `token_secret`, as before). Each token names its key in the `kid` header; during a rotation
//! the current key signs and `jwt_secret_previous` still verifies, so nobody is logged out. A
//! token naming any other key is refused; one without `kid` (issued before key ids) is tried
//! against both.

use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use openssl::sha::sha256;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::AuthError;
use crate::config::SecurityConfig;

const ISSUER: &str = "sigillo";

/// What an access token asserts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The subscriber's user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique id, for revocation.
    pub jti: String,
    pub iss: String,
    /// The user's session epoch when issued (absent in older tokens: 0).
    #[serde(default)]
    pub ep: u64,
    /// OAuth2 scope (`service`, `credential`) of a token issued by the authorization server;
    /// absent in tokens of `auth/login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The OAuth2 client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// A credential token's SAD (scope `credential`): signHash uses it when the request has
    /// none, so the token signs exactly what the subscriber authorised, under the SAD's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sad: Option<String>,
}

/// What an OAuth2 token is issued for (`oauth2`).
pub struct Grant<'a> {
    pub scope: &'a str,
    pub client_id: &'a str,
    pub sad: Option<&'a str>,
    /// A lifetime shorter than `access_token_ttl_secs` (a credential token lives no longer
    /// than its SAD).
    pub ttl_secs: Option<u64>,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// One HS256 key and its id.
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    fn new(secret: &[u8]) -> Key {
        Key {
            kid: key_id(secret),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

/// The `kid` of a key: 64 bits of a labelled SHA-256, which names the key without revealing it.
fn key_id(secret: &[u8]) -> String {
    let digest = sha256(&[b"sigillo-jwt-kid\0".as_slice(), secret].concat());
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// Issues and verifies access tokens.
pub struct Tokens {
    current: Key,
    previous: Option<Key>,
    validation: Validation,
    ttl_secs: u64,
}

impl Tokens {
    /// Signs with `current`; also accepts tokens of `previous` (a key being rotated out).
    pub fn new(current: &[u8], previous: Option<&[u8]>, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Tokens {
            current: Key::new(current),
            previous: previous.map(Key::new),
            validation,
            ttl_secs,
        }
    }

    /// The keys `security` configures; `derived` (from `token_secret`) when `jwt_secret` is empty.
    pub fn configured(security: &SecurityConfig, derived: &[u8]) -> Self {
        let current = if security.jwt_secret.is_empty() {
            derived
        } else {
            security.jwt_secret.expose().as_bytes()
        };
        let previous = (!security.jwt_secret_previous.is_empty())
            .then(|| security.jwt_secret_previous.expose().as_bytes());
        Tokens::new(current, previous, security.access_token_ttl_secs)
    }

    /// An access token of `user_id` for session `epoch`.
    pub fn issue(&self, user_id: &str, epoch: u64) -> Result<AccessToken, AuthError> {
        self.issue_claims(user_id, epoch, None, self.ttl_secs)
    }

    /// An OAuth2 access token of `user_id` for session `epoch`, carrying `grant`.
    pub fn issue_grant(
        &self,
        user_id: &str,
        epoch: u64,
        grant: &Grant<'_>,
    ) -> Result<AccessToken, AuthError> {
        let ttl = grant
            .ttl_secs
            .map_or(self.ttl_secs, |t| t.min(self.ttl_secs));
        self.issue_claims(user_id, epoch, Some(grant), ttl)
    }

    fn issue_claims(
        &self,
        user_id: &str,
        epoch: u64,
        grant: Option<&Grant<'_>>,
        ttl_secs: u64,
    ) -> Result<AccessToken, AuthError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4().to_string(),
            iss: ISSUER.to_owned(),
            ep: epoch,
            scope: grant.map(|g| g.scope.to_owned()),
            cid: grant.map(|g| g.client_id.to_owned()),
            sad: grant.and_then(|g| g.sad.map(str::to_owned)),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        let token = encode(&header, &claims, &self.current.encoding)
            .map_err(|_| AuthError::InvalidToken)?;
        Ok(AccessToken {
            token,
            expires_in: ttl_secs,
        })
    }

    /// The claims of a valid token; any defect (an unknown `kid` included) is `InvalidToken`.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        let keys = [Some(&self.current), self.previous.as_ref()];
        let candidates = keys
            .into_iter()
            .flatten()
            .filter(|key| header.kid.as_ref().is_none_or(|kid| *kid == key.kid));
        for key in candidates {
            if let Ok(data) = decode::<Claims>(token, &key.decoding, &self.validation) {
                return Ok(data.claims);
            }
        }
        Err(AuthError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &[u8] = b"0123456789abcdef0123456789abcdef";
    const K2: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn issued_tokens_verify_and_forged_ones_do_not() {
        let tokens = Tokens::new(K1, None, 60);
        let t = tokens.issue("alice", 4).unwrap();
        let claims = tokens.verify(&t.token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.ep), ("alice", 4));
        let other = Tokens::new(K2, None, 60);
        assert!(other.verify(&t.token).is_err());
        assert!(tokens.verify("not.a.token").is_err());
    }

    #[test]
    fn grants_carry_scope_client_and_sad_and_never_outlive_the_ttl() {
        let tokens = Tokens::new(K1, None, 600);
        let grant = Grant {
            scope: "credential",
            client_id: "app",
            sad: Some("the-sad"),
            ttl_secs: Some(60),
        };
        let t = tokens.issue_grant("alice", 2, &grant).unwrap();
        assert_eq!(t.expires_in, 60);
        let claims = tokens.verify(&t.token).unwrap();
        assert_eq!(claims.scope.as_deref(), Some("credential"));
        assert_eq!(claims.cid.as_deref(), Some("app"));
        assert_eq!(claims.sad.as_deref(), Some("the-sad"));
        let long = Grant {
            ttl_secs: Some(10_000),
            ..grant
        };
        assert_eq!(
            tokens.issue_grant("alice", 2, &long).unwrap().expires_in,
            600
        );
        let plain = tokens
            .verify(&tokens.issue("bob", 0).unwrap().token)
            .unwrap();
        assert!(plain.scope.is_none() && plain.sad.is_none() && plain.cid.is_none());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let tokens = Tokens::new(K1, None, 0);
        let mut claims = tokens
            .verify(&tokens.issue("bob", 0).unwrap().token)
            .unwrap();
        claims.exp -= 3600;
        let stale = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &tokens.current.encoding,
        )
        .unwrap();
        assert!(tokens.verify(&stale).is_err());
    }

    #[test]
    fn tokens_name_their_key_and_rotation_keeps_the_previous_one() {
        let before = Tokens::new(K1, None, 60);
        let old = before.issue("carol", 0).unwrap().token;
        let kid = decode_header(&old).unwrap().kid.unwrap();
        assert_eq!(kid, key_id(K1));
        assert_eq!(kid.len(), 16);
        assert_ne!(key_id(K1), key_id(K2));

        let rotated = Tokens::new(K2, Some(K1), 60);
        assert_eq!(rotated.verify(&old).unwrap().sub, "carol");
        let new = rotated.issue("carol", 0).unwrap().token;
        assert_eq!(decode_header(&new).unwrap().kid.unwrap(), key_id(K2));
        assert!(rotated.verify(&new).is_ok());
        // Once the previous key is dropped, its tokens stop working.
        let after = Tokens::new(K2, None, 60);
        assert!(after.verify(&old).is_err());
        assert!(after.verify(&new).is_ok());
    }

    #[test]
    fn an_unknown_kid_is_refused_even_with_a_valid_signature() {
        let tokens = Tokens::new(K1, None, 60);
        let claims = tokens
            .verify(&tokens.issue("dave", 0).unwrap().token)
            .unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("0000000000000000".into());
        let odd = encode(&header, &claims, &tokens.current.encoding).unwrap();
        assert!(tokens.verify(&odd).is_err());
        // Tokens from before key ids carry none: tried against the known keys.
        let legacy = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &tokens.current.encoding,
        )
        .unwrap();
        assert_eq!(tokens.verify(&legacy).unwrap().sub, "dave");
    }
}
