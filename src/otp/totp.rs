//! TOTP (RFC 6238): enrolment secrets and single-use verification.

use rand::RngCore;
use std::sync::LazyLock;

use redis::{AsyncCommands, Script};
use totp_rs::{Algorithm, TOTP};

use super::{Otp, OtpError};
use crate::model::User;
use crate::secrets::ct_eq;

const STEP: u64 = 30;

/// Accepts `step` only if it is later than the last accepted one; 1 = accepted, 0 = replay.
static SCRIPT_REPLAY: LazyLock<Script> = LazyLock::new(|| Script::new(REPLAY_SCRIPT));

const REPLAY_SCRIPT: &str = r"
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
";

/// A new TOTP secret: the sealed form to store and the URI to show the user once.
pub struct TotpEnrolment {
    pub sealed_secret: Vec<u8>,
    pub otpauth_uri: String,
}

impl Otp {
    pub(super) fn totp(&self, secret: Vec<u8>, account: &str) -> Result<TOTP, OtpError> {
        TOTP::new(
            Algorithm::SHA1,
            6,
            1,
            STEP,
            secret,
            Some(self.config.totp_issuer.clone()),
            account.to_owned(),
        )
        .map_err(|e| OtpError::Totp(e.to_string()))
    }

    /// Creates a 160-bit secret for `user_id`, sealed in the HSM.
    pub async fn new_totp(&self, user_id: &str) -> Result<TotpEnrolment, OtpError> {
        let mut secret = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let sealed_secret = self.secrets.seal(user_id, &secret).await?;
        let otpauth_uri = self.totp(secret, user_id)?.get_url();
        Ok(TotpEnrolment {
            sealed_secret,
            otpauth_uri,
        })
    }

    /// The step (now ±1) of which `code` is the code for `secret`, within `user_id`'s budget of
    /// guesses. An SMS code dies after `max_tries` wrong tries and a new one costs a send out of
    /// `send_limit`; a TOTP secret lives on, so without a budget its 10⁶ codes could be tried
    /// at the gateway's speed. Every try counts (concurrent guesses cannot slip past the
    /// limit); only an accepted code clears the count ([`Otp::clear_totp_tries`]), not a
    /// replayed one.
    pub(super) async fn totp_step(
        &self,
        user_id: &str,
        secret: Vec<u8>,
        code: &str,
    ) -> Result<u64, OtpError> {
        let (tries, retry_after_secs) = self.count_in_window(&totp_tries_key(user_id)).await?;
        // send_limit 0 (no SMS at all) still leaves max_tries guesses per window.
        let budget = self
            .config
            .max_tries
            .saturating_mul(self.config.send_limit.max(1));
        if tries > budget {
            return Err(OtpError::TooManyWrong { retry_after_secs });
        }
        let totp = self.totp(secret, user_id)?;
        let now = time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .unsigned_abs()
            / STEP;
        let step = [now.saturating_sub(1), now, now + 1]
            .into_iter()
            .find(|s| ct_eq(totp.generate(s * STEP).as_bytes(), code.as_bytes()))
            .ok_or(OtpError::Wrong)?;
        Ok(step)
    }

    /// Clears `user_id`'s count of TOTP tries once a code was accepted.
    pub(super) async fn clear_totp_tries(&self, user_id: &str) -> Result<(), OtpError> {
        let mut conn = self.kv.conn();
        let _: i64 = conn.del(self.kv.key(&totp_tries_key(user_id))).await?;
        Ok(())
    }

    pub(super) async fn verify_totp(&self, user: &User, code: &str) -> Result<(), OtpError> {
        let sealed = user.totp_secret.as_deref().ok_or(OtpError::NoApp)?;
        let secret = self.secrets.open(&user.user_id, sealed).await?;
        let step = self.totp_step(&user.user_id, secret.to_vec(), code).await?;
        let mut conn = self.kv.conn();
        let accepted: i64 = SCRIPT_REPLAY
            .key(self.kv.key(&format!("otp:totp:{}", user.user_id)))
            .arg(step)
            .arg(STEP * 4)
            .invoke_async(&mut conn)
            .await?;
        if accepted == 1 {
            self.clear_totp_tries(&user.user_id).await
        } else {
            Err(OtpError::Replayed)
        }
    }
}

fn totp_tries_key(user_id: &str) -> String {
    format!("otp:totp-tries:{user_id}")
}
