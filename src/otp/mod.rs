//! One-time passwords, the second factor of every signature and of every credential change.
//!
//! Invariants: an SMS OTP is 6 random digits, stored in Redis only as an HMAC, lives `ttl_secs`,
//! is consumed by its first correct use and destroyed after `max_tries` wrong ones; sending is
//! rate-limited per user. A TOTP code (SHA-1, 6 digits, 30 s, ±1 step) is accepted at most
//! once: a step at or before the last accepted one is refused as a replay. A TOTP user gets
//! the guesses an SMS user gets (`max_tries` × `send_limit` per `send_window_secs`), then even a
//! right code is refused until the window ends. No code is logged.

mod device;
mod sender;
mod sms;
mod totp;

use std::sync::{Arc, LazyLock};

use redis::Script;

pub use sender::{build_sender, sender_of, HttpSender, OutboxSender, SmsError, SmsSender};
pub use sms::SmsCode;
pub use totp::TotpEnrolment;

use crate::config::OtpConfig;
use crate::kv::{Kv, KvError};
use crate::model::{OtpMethod, User};
use crate::secrets::{Secrets, SecretsError};

#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    #[error("the OTP is wrong")]
    Wrong,
    #[error("no valid OTP: it expired, was used, or was never sent")]
    Expired,
    #[error("the TOTP code was already used")]
    Replayed,
    #[error("too many OTP requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("too many wrong authenticator codes; retry in {retry_after_secs} s")]
    TooManyWrong { retry_after_secs: u64 },
    #[error("this user's OTP comes from an authenticator app, not by SMS")]
    NotOnline,
    #[error("malformed OTP: 6 digits expected")]
    Malformed,
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Sms(#[from] SmsError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("TOTP secret rejected: {0}")]
    Totp(String),
}

impl From<redis::RedisError> for OtpError {
    fn from(err: redis::RedisError) -> Self {
        OtpError::Kv(KvError(err))
    }
}

/// The OTP service: issues and checks codes for a user, whatever the user's method.
#[derive(Clone)]
pub struct Otp {
    kv: Kv,
    secrets: Arc<Secrets>,
    sender: Arc<dyn SmsSender>,
    config: Arc<OtpConfig>,
}

impl OtpError {
    /// The audit log's word for a refusal by the OTP check: a spent guess budget is told
    /// apart from a wrong code.
    pub fn audit_outcome(&self) -> &'static str {
        match self {
            OtpError::TooManyWrong { .. } => "otp_limited",
            _ => "wrong_otp",
        }
    }
}

impl Otp {
    pub fn new(
        kv: Kv,
        secrets: Arc<Secrets>,
        sender: Arc<dyn SmsSender>,
        config: OtpConfig,
    ) -> Self {
        Otp {
            kv,
            secrets,
            sender,
            config: Arc::new(config),
        }
    }

    /// Counts one more event under `name` in the window of `send_window_secs` that the first
    /// one opened; returns (events so far, seconds left in the window).
    async fn count_in_window(&self, name: &str) -> Result<(u32, u64), OtpError> {
        static COUNT: LazyLock<Script> = LazyLock::new(|| {
            Script::new(
                r"local n = redis.call('INCR', KEYS[1])
                  if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
                  return {n, redis.call('TTL', KEYS[1])}",
            )
        });
        let mut conn = self.kv.conn();
        let (n, ttl): (u32, i64) = COUNT
            .key(self.kv.key(name))
            .arg(self.config.send_window_secs)
            .invoke_async(&mut conn)
            .await?;
        Ok((n, u64::try_from(ttl).unwrap_or(1).max(1)))
    }

    /// Checks `code` for `user` by the user's method, consuming it on success.
    pub async fn verify(&self, user: &User, code: &str) -> Result<(), OtpError> {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OtpError::Malformed);
        }
        match user.otp_method {
            OtpMethod::Sms => self.verify_sms(&user.user_id, code).await,
            OtpMethod::Totp => self.verify_totp(user, code).await,
        }
    }
}
