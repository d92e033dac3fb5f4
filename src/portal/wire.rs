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

/// `GET /api/v1/credentials/{id}/history` query: `limit` (1..=100, default 20) and `before`
/// (the `next` cursor of the previous page).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub limit: Option<String>,
    pub before: Option<String>,
}

impl HistoryQuery {
    /// The page asked for: (`before`, `limit`), or what is wrong with it.
    pub fn validate(&self) -> Result<(Option<i64>, u32), &'static str> {
        let limit = match &self.limit {
            None => crate::history::DEFAULT_PAGE,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=crate::history::MAX_PAGE).contains(&n) && raw.len() <= 3 => n,
                _ => return Err("limit must be an integer from 1 to 100"),
            },
        };
        let before = match &self.before {
            None => None,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n > 0 && raw.len() <= 19 && raw.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(n)
                }
                _ => return Err("before must be the next cursor of a previous page"),
            },
        };
        Ok((before, limit))
    }
}

/// One signHash that signed.
#[derive(Serialize)]
pub struct SigningEventView {
    pub at: String,
    pub count: u64,
    pub client_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub serial_number: Option<String>,
}

/// A page of a credential's signing history, newest first.
#[derive(Serialize)]
pub struct HistoryResponse {
    pub credential_id: Uuid,
    pub total_signatures: u64,
    pub signatures: Vec<SigningEventView>,
    /// Pass as `before` for the next page; `null` on the last.
    pub next: Option<String>,
}

impl HistoryResponse {
    pub fn of(credential_id: Uuid, page: crate::history::HistoryPage) -> HistoryResponse {
        HistoryResponse {
            credential_id,
            total_signatures: page.total_signatures,
            signatures: page
                .events
                .into_iter()
                .map(|e| SigningEventView {
                    at: rfc3339(e.at),
                    count: e.count,
                    client_id: e.client_id,
                    client_addr: e.client_addr,
                    user_agent: e.user_agent,
                    serial_number: e.serial_number,
                })
                .collect(),
            next: page.next.map(|n| n.to_string()),
        }
    }
}
