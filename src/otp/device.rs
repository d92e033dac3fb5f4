//! Staged OTP device changes: a new TOTP secret or a new phone waits in Redis (10 minutes)
//! until the subscriber confirms it with a code from the new device.

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};

use super::{Otp, OtpError, TotpEnrolment};
use crate::kv::KvError;

const STAGE_TTL_SECS: u64 = 600;

impl Otp {
    fn staged_key(&self, user_id: &str, what: &str) -> String {
        self.kv.key(&format!("otp:staged-{what}:{user_id}"))
    }

    /// Stages `value` as the new `what` (`totp` or `phone`); one change is staged at a time,
    /// so the other one is forgotten.
    async fn stage(&self, user_id: &str, what: &str, value: &[u8]) -> Result<(), OtpError> {
        let other = if what == "totp" { "phone" } else { "totp" };
        let mut conn = self.kv.conn();
        let _: i64 = conn
            .del(self.staged_key(user_id, other))
            .await
            .map_err(KvError)?;
        let () = conn
            .set_ex(self.staged_key(user_id, what), value, STAGE_TTL_SECS)
            .await
            .map_err(KvError)?;
        Ok(())
    }

    async fn staged(&self, user_id: &str, what: &str) -> Result<Option<Vec<u8>>, OtpError> {
        let mut conn = self.kv.conn();
        Ok(conn
            .get(self.staged_key(user_id, what))
            .await
            .map_err(KvError)?)
    }

    /// Forgets every staged change of `user_id`.
    pub async fn clear_staged(&self, user_id: &str) -> Result<(), OtpError> {
        let mut conn = self.kv.conn();
        let _: i64 = conn
            .del(&[
                self.staged_key(user_id, "totp"),
                self.staged_key(user_id, "phone"),
            ])
            .await
            .map_err(KvError)?;
        Ok(())
    }

    /// Creates and stages a new TOTP secret; returns it for the app (URI, QR).
    pub async fn stage_totp(&self, user_id: &str) -> Result<TotpEnrolment, OtpError> {
        let enrolment = self.new_totp(user_id).await?;
        self.stage(user_id, "totp", &enrolment.sealed_secret)
            .await?;
        Ok(enrolment)
    }

    /// The staged TOTP secret (sealed) if `code` is a valid code of it; records its step so that
    /// the code cannot be replayed once the secret is active.
    pub async fn confirm_staged_totp(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<Vec<u8>, OtpError> {
        let sealed = self
            .staged(user_id, "totp")
            .await?
            .ok_or(OtpError::Expired)?;
        let secret = self.secrets.open(user_id, &sealed).await?;
        let step = self.totp_step(user_id, secret.to_vec(), code).await?;
        static RAISE: LazyLock<Script> = LazyLock::new(|| {
            Script::new(
                r"local last = tonumber(redis.call('GET', KEYS[1]) or '0')
                  if tonumber(ARGV[1]) > last then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
                  return 1",
            )
        });
        let mut conn = self.kv.conn();
        let _: i64 = RAISE
            .key(self.kv.key(&format!("otp:totp:{user_id}")))
            .arg(step)
            .arg(120)
            .invoke_async(&mut conn)
            .await?;
        self.clear_totp_tries(user_id).await?;
        Ok(sealed)
    }

    /// Stages a new phone number.
    pub async fn stage_phone(&self, user_id: &str, phone: &str) -> Result<(), OtpError> {
        self.stage(user_id, "phone", phone.as_bytes()).await
    }

    /// The staged phone number.
    pub async fn staged_phone(&self, user_id: &str) -> Result<Option<String>, OtpError> {
        Ok(self
            .staged(user_id, "phone")
            .await?
            .and_then(|p| String::from_utf8(p).ok()))
    }
}
