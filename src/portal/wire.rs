//! Portal request and response shapes.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::model::{Credential, CredentialStatus};
use crate::text::{text, PROSE, SECRET};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub puk: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub new_pin: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
}

#[derive(Serialize)]
pub struct CredentialStatusResponse {
    pub credential_id: Uuid,
    pub status: &'static str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePinRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub pin: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub new_pin: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnblockRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub puk: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub new_pin: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub password: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub new_password: String,
}

/// One credential as a portal shows it.
#[derive(Serialize)]
pub struct CredentialView {
    pub credential_id: Uuid,
    pub purpose: &'static str,
    pub key_algo: &'static str,
    /// The stored state, or `expired` once the certificate has run out.
    pub status: &'static str,
    pub serial_number: String,
    pub valid_from: String,
    pub valid_to: String,
    pub days_remaining: i64,
    pub renewable: bool,
    pub renewed: bool,
    pub renewal_window_opens: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl CredentialView {
    pub fn of(c: &Credential, now: OffsetDateTime, window_days: u32) -> CredentialView {
        let expired = c.valid_to <= now;
        let status = match c.status {
            CredentialStatus::Revoked | CredentialStatus::Suspended | CredentialStatus::Blocked => {
                c.status.as_str()
            }
            _ if expired => "expired",
            other => other.as_str(),
        };
        let window_opens = c.valid_to - Duration::days(i64::from(window_days));
        let renewable = c.renewed_at.is_none()
            && !expired
            && now >= window_opens
            // Renewal is confirmed with the PIN: only an active credential can be renewed.
            && c.status == CredentialStatus::Active;
        CredentialView {
            credential_id: c.credential_id,
            purpose: c.purpose.as_str(),
            key_algo: c.key_algo.as_str(),
            status,
            serial_number: c.serial_number.clone(),
            valid_from: rfc3339(c.valid_from),
            valid_to: rfc3339(c.valid_to),
            days_remaining: (c.valid_to - now).whole_days().max(0),
            renewable,
            renewed: c.renewed_at.is_some(),
            renewal_window_opens: rfc3339(window_opens),
        }
    }
}

#[derive(Serialize)]
pub struct CredentialList {
    pub credentials: Vec<CredentialView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    #[serde(default)]
    pub confirm_identity: bool,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub pin: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub coupon: String,
}

#[derive(Serialize)]
pub struct NotificationView {
    pub credential_id: Uuid,
    /// The scheduled day of the notice (YYYY-MM-DD).
    pub due_date: String,
    pub channel: String,
    pub text: String,
    pub sent_at: String,
}

#[derive(Serialize)]
pub struct NotificationList {
    pub notifications: Vec<NotificationView>,
}

impl From<crate::db::repo::notices::Notice> for NotificationView {
    fn from(n: crate::db::repo::notices::Notice) -> Self {
        NotificationView {
            credential_id: n.credential_id,
            due_date: n.due_date.to_string(),
            channel: n.channel,
            text: n.text,
            sent_at: rfc3339(n.sent_at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordOnly {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmDeviceRequest {
    /// The code from the new device (app or new phone).
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub code: String,
    /// The current factor (present phone's SMS code or present app's code).
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsDeviceRequest {
    #[serde(deserialize_with = "text::<PROSE, _>")]
    pub phone: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub password: String,
}

#[derive(Serialize)]
pub struct TotpStartResponse {
    pub otpauth_uri: String,
    pub qr_svg: String,
}
