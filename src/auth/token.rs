//! Access tokens: short-lived HS256 JWTs, verified locally.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::AuthError;

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
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// Issues and verifies access tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl Tokens {
    pub fn new(key: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Tokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            ttl_secs,
        }
    }

    pub fn issue(&self, user_id: &str) -> Result<AccessToken, AuthError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(self.ttl_secs).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4().to_string(),
            iss: ISSUER.to_owned(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| AuthError::InvalidToken)?;
        Ok(AccessToken {
            token,
            expires_in: self.ttl_secs,
        })
    }

    /// The claims of a valid token; any defect is `InvalidToken`.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forged_ones_do_not() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", 60);
        let t = tokens.issue("alice").unwrap();
        assert_eq!(tokens.verify(&t.token).unwrap().sub, "alice");
        let other = Tokens::new(b"fedcba9876543210fedcba9876543210", 60);
        assert!(other.verify(&t.token).is_err());
        assert!(tokens.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", 0);
        let mut claims = tokens.verify(&tokens.issue("bob").unwrap().token).unwrap();
        claims.exp -= 3600;
        let stale = encode(&Header::new(Algorithm::HS256), &claims, &tokens.encoding).unwrap();
        assert!(tokens.verify(&stale).is_err());
    }
}
