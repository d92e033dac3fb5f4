//! SMS OTPs: issue (rate-limited) and verify (atomically, in one Lua script).

use rand::Rng;
use std::sync::LazyLock;

use redis::Script;

use super::{Otp, OtpError, Purpose};
use crate::model::{OtpMethod, User};

/// 1 = right (consumed), 0 = wrong (counted; destroyed at max tries), -1 = none/expired,
/// -2 = sent for another purpose (left alone: no guess was compared).
static SCRIPT_VERIFY: LazyLock<Script> = LazyLock::new(|| Script::new(VERIFY_SCRIPT));

const VERIFY_SCRIPT: &str = r"
local stored = redis.call('HMGET', KEYS[1], 'h', 'p')
if not stored[1] then return -1 end
if stored[2] ~= ARGV[3] then return -2 end
if stored[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
local tries = redis.call('HINCRBY', KEYS[1], 't', 1)
if tries >= tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) end
return 0
";

/// Which SMS code: the subscriber's sign-in factor, or the confirmation sent to a new phone.
#[derive(Debug, Clone, Copy)]
pub enum SmsCode {
    Factor,
    NewPhone,
}

impl Otp {
    fn sms_key(&self, user_id: &str, which: SmsCode) -> String {
        match which {
            SmsCode::Factor => self.kv.key(&format!("otp:sms:{user_id}")),
            SmsCode::NewPhone => self.kv.key(&format!("otp:sms-new:{user_id}")),
        }
    }

    /// Generates a fresh code for `user`, good only for `purpose`, replacing any earlier one,
    /// and texts it.
    pub async fn send_sms(&self, user: &User, purpose: Purpose) -> Result<(), OtpError> {
        if user.otp_method != OtpMethod::Sms {
            return Err(OtpError::NotOnline);
        }
        self.send_code(&user.user_id, SmsCode::Factor, purpose, &user.phone)
            .await
    }

    /// Generates a code of kind `which` for `user_id`, good only for `purpose`, and texts it
    /// to `phone` with what it is for (rate-limited per user, whatever the kind).
    pub async fn send_code(
        &self,
        user_id: &str,
        which: SmsCode,
        purpose: Purpose,
        phone: &str,
    ) -> Result<(), OtpError> {
        let (sent, retry_after_secs) = self.count_in_window(&format!("otp:rate:{user_id}")).await?;
        if sent > self.config.send_limit {
            return Err(OtpError::RateLimited { retry_after_secs });
        }
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let digest = self.secrets.otp_digest(user_id, &code)?;
        let key = self.sms_key(user_id, which);
        let tag = purpose.tag();
        let mut conn = self.kv.conn();
        let () = redis::pipe()
            .atomic()
            .del(&key)
            .ignore()
            .hset_multiple(
                &key,
                &[("h", digest.as_str()), ("t", "0"), ("p", tag.as_str())],
            )
            .ignore()
            .expire(&key, i64::try_from(self.config.ttl_secs).unwrap_or(300))
            .ignore()
            .query_async(&mut conn)
            .await?;
        let minutes = self.config.ttl_secs.div_ceil(60);
        let text = format!(
            "sigillo: {code} is your code {}. It expires in {minutes} min. \
             Never share it: we will never ask you for it.",
            purpose.describe()
        );
        self.sender.send(phone, &text).await?;
        Ok(())
    }

    /// Texts `text` to `phone` (expiry notices and other service messages).
    pub async fn send_text(&self, phone: &str, text: &str) -> Result<(), OtpError> {
        Ok(self.sender.send(phone, text).await?)
    }

    pub(super) async fn verify_sms(
        &self,
        user_id: &str,
        code: &str,
        purpose: Purpose,
    ) -> Result<(), OtpError> {
        self.verify_code(user_id, SmsCode::Factor, purpose, code)
            .await
    }

    /// Checks and consumes an SMS code of kind `which`; a code sent for another purpose is
    /// refused (and left for the operation it was sent for).
    pub async fn verify_code(
        &self,
        user_id: &str,
        which: SmsCode,
        purpose: Purpose,
        code: &str,
    ) -> Result<(), OtpError> {
        let digest = self.secrets.otp_digest(user_id, code)?;
        let mut conn = self.kv.conn();
        let outcome: i64 = SCRIPT_VERIFY
            .key(self.sms_key(user_id, which))
            .arg(digest)
            .arg(self.config.max_tries)
            .arg(purpose.tag())
            .invoke_async(&mut conn)
            .await?;
        match outcome {
            1 => Ok(()),
            0 => Err(OtpError::Wrong),
            -2 => Err(OtpError::OtherPurpose),
            _ => Err(OtpError::Expired),
        }
    }
}
