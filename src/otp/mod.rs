//! One-time passwords, the second factor of every signature and of every credential change.
//!
//! Invariants: an SMS OTP is 6 random digits, stored in Redis only as an HMAC, lives `ttl_secs`,
//! is consumed by its first correct use and destroyed after `max_tries` wrong ones; sending is
//! rate-limited per user. A TOTP code (SHA-1, 6 digits, 30 s, ±1 step) is accepted at most
//! once: a step at or before the last accepted one is refused as a replay. A TOTP user gets
//! the guesses an SMS user gets (`max_tries` × `send_limit` per `send_window_secs`), then even a
//! right code is refused until the window ends. No code is logged.
//!
//! An SMS code is bound to what it was sent for ([`Purpose`]: the operation and the
//! credential) and its text says so; it authorises nothing else. A TOTP code has no purpose:
//! the app's code is good for every operation.

mod device;
mod sender;
mod sms;
mod totp;

use std::sync::{Arc, LazyLock};

use redis::Script;
use uuid::Uuid;

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
    #[error("this code was sent for another operation or credential")]
    OtherPurpose,
    /// A TOTP user who has not enrolled the authenticator app yet (first sign-in).
    #[error("no authenticator app is enrolled yet: enrol one first (POST /api/v1/otp/totp/enrol)")]
    NoApp,
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

/// What an SMS code was sent for: it authorises that operation on that credential only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `credentials/authorize` (a signature) with the credential.
    Sign(Uuid),
    /// First activation of the credential with its PUK.
    Activate(Uuid),
    /// PIN change with the current PIN.
    PinChange(Uuid),
    /// PIN unblock with the PUK.
    Unblock(Uuid),
    /// Certificate renewal.
    Renew(Uuid),
    /// A change of the OTP device (the current factor's confirmation, or the new phone's code).
    DeviceChange,
    /// A new password through a recovery link ("Non riesco ad accedere").
    PasswordRecovery,
}

impl Purpose {
    /// The operation's name (audit log, wire).
    pub fn operation(self) -> &'static str {
        match self {
            Purpose::Sign(_) => "sign",
            Purpose::Activate(_) => "activate",
            Purpose::PinChange(_) => "pin_change",
            Purpose::Unblock(_) => "unblock",
            Purpose::Renew(_) => "renew",
            Purpose::DeviceChange => "device_change",
            Purpose::PasswordRecovery => "password_recovery",
        }
    }

    /// The tag stored beside the code: the operation and the credential.
    fn tag(self) -> String {
        match self {
            Purpose::Sign(id)
            | Purpose::Activate(id)
            | Purpose::PinChange(id)
            | Purpose::Unblock(id)
            | Purpose::Renew(id) => format!("{}:{id}", self.operation()),
            Purpose::DeviceChange | Purpose::PasswordRecovery => self.operation().to_owned(),
        }
    }

    /// What the SMS says the code is for. The credential is named by the first 8 characters of
    /// its id, as `credentials/list` and the portal show it.
    fn describe(self) -> String {
        let short = |id: Uuid| id.simple().to_string().chars().take(8).collect::<String>();
        match self {
            Purpose::Sign(id) => format!("to sign with credential {}", short(id)),
            Purpose::Activate(id) => format!("to activate credential {}", short(id)),
            Purpose::PinChange(id) => format!("to change the PIN of credential {}", short(id)),
            Purpose::Unblock(id) => format!("to unblock the PIN of credential {}", short(id)),
            Purpose::Renew(id) => format!("to renew the certificate of credential {}", short(id)),
            Purpose::DeviceChange => "to change your OTP device".to_owned(),
            Purpose::PasswordRecovery => "to choose a new password".to_owned(),
        }
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
    /// A spent budget (HTTP 429 on the API and on the portal's pages alike).
    pub fn is_limited(&self) -> bool {
        matches!(
            self,
            OtpError::RateLimited { .. } | OtpError::TooManyWrong { .. }
        )
    }

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

    /// Checks `code` for `user` by the user's method, consuming it on success. An SMS code
    /// must have been sent for `purpose`; a TOTP code is good for any.
    pub async fn verify(&self, user: &User, code: &str, purpose: Purpose) -> Result<(), OtpError> {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OtpError::Malformed);
        }
        match user.otp_method {
            OtpMethod::Sms => self.verify_sms(&user.user_id, code, purpose).await,
            OtpMethod::Totp => self.verify_totp(user, code).await,
        }
    }
}
