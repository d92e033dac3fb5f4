//! Refresh tokens (rememberMe), revocation and the session epoch, in Redis under the user's
//! hash slot.
//!
//! Invariants: a refresh token is stored only as a SHA-256 digest and works once (each use
//! rotates it); using one that was already rotated is taken as theft and ends every session of
//! the user (its family, and all else), and is audited by the caller. A revoked access token is
//! refused on every node until it would have expired. Every token carries the user's session
//! epoch at issue: bumping the epoch (password change, OTP device change, refresh replay) ends
//! every session at once.
//!
//! The epoch is stored at `epoch_key` as the decimal string Redis `INCR` writes; a missing key
//! is epoch `"0"`. A token is current iff that string equals the decimal string of its `ep`
//! claim (absent claim = 0), so that Lua can compare exactly as this module does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::sha::sha256;
use rand::RngCore;
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AuthError, Claims};
use crate::kv::{Kv, KvError};

/// Separates the random part of a refresh token from the user id it belongs to.
const SEPARATOR: char = '~';

fn refresh_key(kv: &Kv, user_id: &str, secret: &str) -> String {
    kv.user_key(user_id, &["rt:", &hex::encode(sha256(secret.as_bytes()))])
}

/// Marks a rotated refresh token (by digest), holding its family id, to recognise a replay.
fn spent_key(kv: &Kv, user_id: &str, secret: &str) -> String {
    kv.user_key(
        user_id,
        &["rt-spent:", &hex::encode(sha256(secret.as_bytes()))],
    )
}

/// The key of `user_id`'s session epoch (see the module docs for how it is compared).
pub fn epoch_key(kv: &Kv, user_id: &str) -> String {
    kv.user_key(user_id, &["epoch"])
}

/// The epoch a token must carry to be current, from the value stored at `epoch_key`.
pub fn epoch_is_current(stored: Option<&str>, ep: u64) -> bool {
    stored.unwrap_or("0") == ep.to_string()
}

/// The current session epoch of `user_id` (0 until the first bump).
pub async fn current_epoch(kv: &Kv, user_id: &str) -> Result<u64, AuthError> {
    let mut conn = kv.conn();
    let stored: Option<u64> = conn.get(epoch_key(kv, user_id)).await.map_err(KvError)?;
    Ok(stored.unwrap_or(0))
}

/// Ends every session of `user_id`: access and refresh tokens issued before are refused.
pub async fn end_sessions(kv: &Kv, user_id: &str) -> Result<u64, AuthError> {
    let mut conn = kv.conn();
    let epoch: u64 = conn
        .incr(epoch_key(kv, user_id), 1)
        .await
        .map_err(KvError)?;
    Ok(epoch)
}

/// The Redis key that marks access token `jti` of `user_id` as revoked.
pub fn revoked_key(kv: &Kv, user_id: &str, jti: &str) -> String {
    kv.user_key(user_id, &["revoked:", jti])
}

/// A new family id: one per password login, inherited by every refresh token rotated from it.
pub fn new_family() -> String {
    Uuid::new_v4().simple().to_string()
}

/// Issues a refresh token for `user_id` in `family`, bound to session `epoch`, valid `ttl_secs`.
pub async fn issue_refresh(
    kv: &Kv,
    user_id: &str,
    family: &str,
    epoch: u64,
    ttl_secs: u64,
) -> Result<String, AuthError> {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let secret = URL_SAFE_NO_PAD.encode(random);
    let mut conn = kv.conn();
    let () = conn
        .set_ex(
            refresh_key(kv, user_id, &secret),
            format!("{family}.{epoch}"),
            ttl_secs,
        )
        .await
        .map_err(KvError)?;
    Ok(format!("{secret}{SEPARATOR}{user_id}"))
}

/// KEYS: the token, its spent marker, the epoch; ARGV[1]: how long a spent marker is kept.
/// A live token is consumed and marked spent: {1, family, epoch} if bound to the current epoch,
/// else {0, ...}. A spent one is a replay: the epoch is bumped (every session ends) and
/// {-1, family, new epoch} returned. Unknown: {0, '', epoch}. A token stored before families
/// (value "1") counts as family '' of epoch 0.
const REDEEM: &str = r"
local epoch = redis.call('GET', KEYS[3]) or '0'
local stored = redis.call('GET', KEYS[1])
if stored then
  redis.call('DEL', KEYS[1])
  local family, bound = string.match(stored, '^([^.]*)%.(%d+)$')
  if not family then family = ''; bound = '0' end
  redis.call('SET', KEYS[2], family, 'EX', ARGV[1])
  if bound ~= epoch then return {0, family, epoch} end
  return {1, family, epoch}
end
local family = redis.call('GET', KEYS[2])
if family then
  return {-1, family, tostring(redis.call('INCR', KEYS[3]))}
end
return {0, '', epoch}
";

static REDEEM_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REDEEM));

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// Consumed: issue the next one in `family`, at `epoch`.
    Granted {
        user_id: String,
        family: String,
        epoch: u64,
    },
    /// It had already been rotated: every session of `user_id` was ended.
    Replayed { user_id: String, family: String },
}

/// Consumes a refresh token. Unknown, expired or of an ended session → `InvalidToken`.
pub async fn redeem_refresh(
    kv: &Kv,
    token: &str,
    spent_ttl_secs: u64,
) -> Result<Redeemed, AuthError> {
    let (secret, user_id) = token.split_once(SEPARATOR).ok_or(AuthError::InvalidToken)?;
    // Only a user id names the keys: anything else (a `}` first would empty the hash tag and
    // spread the keys over several cluster slots) is no token of ours.
    if secret.len() != 43 || !crate::enrolment::valid_user_id(user_id) {
        return Err(AuthError::InvalidToken);
    }
    let mut conn = kv.conn();
    let (state, family, epoch): (i64, String, String) = REDEEM_SCRIPT
        .key(refresh_key(kv, user_id, secret))
        .key(spent_key(kv, user_id, secret))
        .key(epoch_key(kv, user_id))
        .arg(spent_ttl_secs.max(1))
        .invoke_async(&mut conn)
        .await
        .map_err(KvError)?;
    let user_id = user_id.to_owned();
    match state {
        1 => Ok(Redeemed::Granted {
            user_id,
            family: if family.is_empty() {
                new_family()
            } else {
                family
            },
            epoch: epoch.parse().map_err(|_| AuthError::InvalidToken)?,
        }),
        -1 => Ok(Redeemed::Replayed { user_id, family }),
        _ => Err(AuthError::InvalidToken),
    }
}

/// Revokes `token` of `user_id`: an access token (JWT) by its `jti` until it expires, or a
/// refresh token by deleting it; says which it was. A token of another user is `InvalidToken`.
pub async fn revoke(
    kv: &Kv,
    tokens: &super::Tokens,
    user_id: &str,
    token: &str,
) -> Result<&'static str, AuthError> {
    if let Ok(claims) = tokens.verify(token) {
        if claims.sub != user_id {
            return Err(AuthError::InvalidToken);
        }
        revoke_access(kv, &claims).await?;
        return Ok("access_token");
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
    Ok("refresh_token")
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

/// Refuses an access token that was revoked or whose session ended, in one round trip.
pub async fn check_access(kv: &Kv, claims: &Claims) -> Result<(), AuthError> {
    let mut conn = kv.conn();
    let (revoked, epoch): (Option<String>, Option<String>) = redis::cmd("MGET")
        .arg(revoked_key(kv, &claims.sub, &claims.jti))
        .arg(epoch_key(kv, &claims.sub))
        .query_async(&mut conn)
        .await
        .map_err(KvError)?;
    if revoked.is_some() {
        return Err(AuthError::Revoked);
    }
    if !epoch_is_current(epoch.as_deref(), claims.ep) {
        return Err(AuthError::SessionEnded);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_compare_as_redis_stores_them() {
        assert!(epoch_is_current(None, 0));
        assert!(!epoch_is_current(None, 1));
        assert!(epoch_is_current(Some("3"), 3));
        assert!(!epoch_is_current(Some("3"), 2));
        assert!(!epoch_is_current(Some("03"), 3));
    }

    /// The keys of the refresh script and of the access check, as they are built: one slot
    /// each, so Redis Cluster runs them; a token whose user part is no user id never gets
    /// that far.
    #[tokio::test]
    async fn every_session_script_touches_one_slot() {
        use crate::kv::slot;
        let kv = Kv::detached("sigillo:");
        let secret = "A".repeat(43);
        for user in ["alice", "user-0123456789ab", "mario.rossi@example.org"] {
            let redeem = [
                refresh_key(&kv, user, &secret),
                spent_key(&kv, user, &secret),
                epoch_key(&kv, user),
            ];
            let check = [revoked_key(&kv, user, "jti"), epoch_key(&kv, user)];
            for key in redeem.iter().chain(&check) {
                assert_eq!(slot(key), slot(user), "{key}");
            }
        }
        for user in ["}x{", "a}b", "{}", ""] {
            let got = redeem_refresh(&kv, &format!("{secret}~{user}"), 60).await;
            assert!(
                matches!(got, Err(AuthError::InvalidToken)),
                "{user}: {got:?}"
            );
        }
    }
}
