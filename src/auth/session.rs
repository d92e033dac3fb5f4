//! Refresh tokens (rememberMe) and revocation, in Redis under the user's hash slot.
//!
//! Invariants: a refresh token is stored only as a SHA-256 digest and works once (each use
//! rotates it); a revoked access token is refused on every node until it would have expired.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::sha::sha256;
use rand::RngCore;
use redis::AsyncCommands;
use time::OffsetDateTime;

use super::{AuthError, Claims};
use crate::kv::{Kv, KvError};

/// Separates the random part of a refresh token from the user id it belongs to.
const SEPARATOR: char = '~';

fn refresh_key(kv: &Kv, user_id: &str, secret: &str) -> String {
    kv.user_key(user_id, &["rt:", &hex::encode(sha256(secret.as_bytes()))])
}

/// The Redis key that marks access token `jti` of `user_id` as revoked.
pub fn revoked_key(kv: &Kv, user_id: &str, jti: &str) -> String {
    kv.user_key(user_id, &["revoked:", jti])
}

/// Issues a refresh token for `user_id`, valid `ttl_secs`.
pub async fn issue_refresh(kv: &Kv, user_id: &str, ttl_secs: u64) -> Result<String, AuthError> {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let secret = URL_SAFE_NO_PAD.encode(random);
    let mut conn = kv.conn();
    let () = conn
        .set_ex(refresh_key(kv, user_id, &secret), "1", ttl_secs)
        .await
        .map_err(KvError)?;
    Ok(format!("{secret}{SEPARATOR}{user_id}"))
}

/// Consumes a refresh token; returns its user id. Unknown, used or expired → `InvalidToken`.
pub async fn redeem_refresh(kv: &Kv, token: &str) -> Result<String, AuthError> {
    let (secret, user_id) = token.split_once(SEPARATOR).ok_or(AuthError::InvalidToken)?;
    if secret.len() != 43 || user_id.is_empty() || user_id.len() > 64 {
        return Err(AuthError::InvalidToken);
    }
    let mut conn = kv.conn();
    let found: Option<String> = conn
        .get_del(refresh_key(kv, user_id, secret))
        .await
        .map_err(KvError)?;
    found
        .map(|_| user_id.to_owned())
        .ok_or(AuthError::InvalidToken)
}

/// Revokes `token` of `user_id`: an access token (JWT) by its `jti` until it expires, or a
/// refresh token by deleting it. A token of another user is `InvalidToken`.
pub async fn revoke(
    kv: &Kv,
    tokens: &super::Tokens,
    user_id: &str,
    token: &str,
) -> Result<(), AuthError> {
    if let Ok(claims) = tokens.verify(token) {
        if claims.sub != user_id {
            return Err(AuthError::InvalidToken);
        }
        return revoke_access(kv, &claims).await;
    }
    let (secret, owner) = token.split_once(SEPARATOR).ok_or(AuthError::InvalidToken)?;
    if owner != user_id {
        return Err(AuthError::InvalidToken);
    }
    let mut conn = kv.conn();
    let deleted: u32 = conn
        .del(refresh_key(kv, user_id, secret))
        .await
        .map_err(KvError)?;
    if deleted == 0 {
        return Err(AuthError::InvalidToken);
    }
    Ok(())
}

/// Marks an access token revoked until its expiry.
pub async fn revoke_access(kv: &Kv, claims: &Claims) -> Result<(), AuthError> {
    let left = claims.exp - OffsetDateTime::now_utc().unix_timestamp();
    if left <= 0 {
        return Ok(());
    }
    let mut conn = kv.conn();
    let () = conn
        .set_ex(
            revoked_key(kv, &claims.sub, &claims.jti),
            "1",
            left.unsigned_abs() + 5,
        )
        .await
        .map_err(KvError)?;
    Ok(())
}

/// True if the access token was revoked.
pub async fn is_revoked(kv: &Kv, claims: &Claims) -> Result<bool, AuthError> {
    let mut conn = kv.conn();
    let exists: bool = conn
        .exists(revoked_key(kv, &claims.sub, &claims.jti))
        .await
        .map_err(KvError)?;
    Ok(exists)
}
