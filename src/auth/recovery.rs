//! Password recovery ("Non riesco ad accedere"): a user id → an e-mailed single-use link →
//! the current OTP factor and a new password → every session ends.
//!
//! Invariants: the answer to a request never tells whether the user id exists (the same 202,
//! and the same per-user count whether or not it does); requests are bounded per user id and
//! per client address in each window, so the link e-mails (and the OTP guesses each link
//! allows) are bounded too. A link is a 256-bit random token stored only as its SHA-256 in
//! Redis, for `recovery.link_ttl_secs`; completing takes it with GETDEL before anything is
//! checked, so it works once however many completions race, and a wrong OTP spends it.

use base64::Engine;
use rand::RngCore;
use redis::Script;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

use super::{budget::addr_bucket, check_policy, hash_password_async, session, AuthError};
use crate::db::{repo, DbError};
use crate::kv::KvError;
use crate::mail::{self, Message};
use crate::model::{Origin, OtpMethod, User};
use crate::otp::{OtpError, Purpose};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("the recovery link is unknown, already used or expired: ask for a new one")]
    InvalidLink,
    #[error("too many recovery requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("this subscriber's OTP comes from the authenticator app: no SMS is sent")]
    NotSms,
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl RecoveryError {
    /// A spent budget (HTTP 429 on the API and on the portal's pages alike).
    pub fn is_limited(&self) -> bool {
        match self {
            RecoveryError::TooManyRequests { .. } => true,
            RecoveryError::Otp(e) => e.is_limited(),
            RecoveryError::Auth(e) => e.is_limited(),
            _ => false,
        }
    }
}

impl From<redis::RedisError> for RecoveryError {
    fn from(e: redis::RedisError) -> Self {
        RecoveryError::Kv(KvError(e))
    }
}

/// KEYS[1] the counter, ARGV[1] the window: counts one more request; returns {count, ttl}.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local n = redis.call('INCR', KEYS[1])
          if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
          return {n, redis.call('TTL', KEYS[1])}",
    )
});

async fn count(services: &Services, key: String, limit: u32) -> Result<(), RecoveryError> {
    let mut conn = services.kv.conn();
    let (n, ttl): (u32, i64) = COUNT
        .key(key)
        .arg(services.config.recovery.window_secs)
        .invoke_async(&mut conn)
        .await?;
    if n > limit {
        return Err(RecoveryError::TooManyRequests {
            retry_after_secs: u64::try_from(ttl).unwrap_or(1).max(1),
        });
    }
    Ok(())
}

fn token_key(services: &Services, token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    services
        .kv
        .key(&format!("recovery:{}", hex::encode(digest)))
}

fn detail(origin: &Origin, user_id: &str) -> serde_json::Value {
    let mut map = origin.audit_fields();
    map.insert("user_id".into(), user_id.into());
    serde_json::Value::Object(map)
}

fn actor(user_id: &str) -> &str {
    if crate::enrolment::valid_user_id(user_id) {
        user_id
    } else {
        "unknown"
    }
}

/// `POST /api/v1/recovery`: when `user_id` exists, e-mails it a recovery link. The outcome is
/// the same whether or not it exists; past the window's bound (per address, then per user
/// id) the answer is 429, for known and unknown ids alike.
pub async fn request_recovery(
    services: &Services,
    user_id: &str,
    origin: &Origin,
) -> Result<(), RecoveryError> {
    let limits = &services.config.recovery;
    if let Some(addr) = origin.addr {
        let key = services
            .kv
            .key(&format!("recovery-addr:{}", addr_bucket(addr)));
        count(services, key, limits.max_per_addr).await?;
    }
    if crate::enrolment::valid_user_id(user_id) {
        let key = services.kv.user_key(user_id, &["recovery-sent"]);
        count(services, key, limits.max_per_user).await?;
    }
    let user = repo::users::find(&services.db, user_id).await?;
    let outcome = match user {
        Some(user) => {
            let mut random = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut random);
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
            let mut conn = services.kv.conn();
            let () = redis::cmd("SET")
                .arg(token_key(services, &token))
                .arg(&user.user_id)
                .arg("EX")
                .arg(limits.link_ttl_secs)
                .query_async(&mut conn)
                .await?;
            let message = Message::PasswordRecovery {
                user_id: user.user_id.clone(),
                link: limits.link.replace("{token}", &token),
                minutes: limits.link_ttl_secs.div_ceil(60),
            };
            let mut client = services.db.get().await.map_err(DbError::from)?;
            let tx = client.transaction().await.map_err(DbError::from)?;
            mail::enqueue(&tx, &user.user_id, &message).await?;
            tx.commit().await.map_err(DbError::from)?;
            services.mail.wake();
            "sent"
        }
        None => "unknown_user",
    };
    services
        .audit
        .record(
            actor(user_id),
            "user.password_recovery_request",
            None,
            outcome,
            detail(origin, user_id),
        )
        .await?;
    Ok(())
}

/// The subscriber a live link stands for (the link stays live).
async fn peek(services: &Services, token: &str) -> Result<User, RecoveryError> {
    let mut conn = services.kv.conn();
    let user_id: Option<String> = redis::cmd("GET")
        .arg(token_key(services, token))
        .query_async(&mut conn)
        .await?;
    let user_id = user_id.ok_or(RecoveryError::InvalidLink)?;
    repo::users::find(&services.db, &user_id)
        .await?
        .ok_or(RecoveryError::InvalidLink)
}

/// The OTP method of the subscriber a live link stands for (the recovery page asks for that
/// factor); the link stays live. An unknown, used or expired link is `InvalidLink`.
pub async fn link_otp_method(services: &Services, token: &str) -> Result<OtpMethod, RecoveryError> {
    Ok(peek(services, token).await?.otp_method)
}

/// `POST /api/v1/recovery/otp`: texts the SMS code for completing the recovery of a live
/// link (SMS subscribers only; the SMS send limits apply).
pub async fn send_recovery_otp(services: &Services, token: &str) -> Result<(), RecoveryError> {
    let user = peek(services, token).await?;
    if user.otp_method != OtpMethod::Sms {
        return Err(RecoveryError::NotSms);
    }
    services
        .otp
        .send_sms(&user, Purpose::PasswordRecovery)
        .await?;
    Ok(())
}

/// `POST /api/v1/recovery/complete`: spends the link, checks the OTP and the password policy,
/// stores the new password (with its e-mail notice, in one transaction) and ends every
/// session of the user.
pub async fn complete_recovery(
    services: &Services,
    token: &str,
    otp: &str,
    new_password: &str,
    origin: &Origin,
) -> Result<(), RecoveryError> {
    // The policy first: a refused password does not spend the link.
    check_policy(new_password).map_err(AuthError::from)?;
    let mut conn = services.kv.conn();
    let user_id: Option<String> = redis::cmd("GETDEL")
        .arg(token_key(services, token))
        .query_async(&mut conn)
        .await?;
    let user_id = user_id.ok_or(RecoveryError::InvalidLink)?;
    let user = repo::users::find(&services.db, &user_id)
        .await?
        .ok_or(RecoveryError::InvalidLink)?;
    if let Err(e) = services
        .otp
        .verify(&user, otp, Purpose::PasswordRecovery)
        .await
    {
        services
            .audit
            .record(
                &user_id,
                "user.password_recovery",
                None,
                e.audit_outcome(),
                detail(origin, &user_id),
            )
            .await?;
        return Err(e.into());
    }
    let hash = hash_password_async(new_password.to_owned()).await?;
    {
        let mut client = services.db.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        tx.execute(
            "UPDATE users SET password_hash = $2, password_by_subscriber = true \
             WHERE user_id = $1",
            &[&user_id, &hash],
        )
        .await
        .map_err(DbError::from)?;
        mail::enqueue(
            &tx,
            &user_id,
            &Message::PasswordChanged {
                user_id: user_id.clone(),
            },
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
    }
    services.mail.wake();
    // After the new hash is stored: a login racing the change gets the old epoch.
    session::end_sessions(&services.kv, &user_id).await?;
    services
        .audit
        .record(
            &user_id,
            "user.password_recovery",
            None,
            "ok",
            detail(origin, &user_id),
        )
        .await?;
    Ok(())
}
