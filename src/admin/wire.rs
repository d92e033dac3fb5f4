//! Admin request and response shapes, and their conversion into domain commands.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::enrolment::{CreatedCredential, CreatedUser, EnvelopeState, NewCredential, NewUser};
use crate::error::ApiError;
use crate::mail::Locale;
use crate::text::{opt_text, text, ID, PROSE};

/// `POST /admin/v1/users`: identity and contact data. No password (an unknown field, refused):
/// the subscriber chooses it through the e-mailed setup link.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub user_id: String,
    #[serde(deserialize_with = "text::<PROSE, _>")]
    pub given_name: String,
    #[serde(deserialize_with = "text::<PROSE, _>")]
    pub surname: String,
    #[serde(deserialize_with = "text::<ID, _>")]
    pub fiscal_code: String,
    #[serde(deserialize_with = "text::<PROSE, _>")]
    pub email: String,
    #[serde(deserialize_with = "text::<PROSE, _>")]
    pub phone: String,
    #[serde(deserialize_with = "text::<ID, _>")]
    pub otp_method: String,
    /// `it` (default) or `en`: the language of the subscriber's e-mails and envelopes.
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub locale: Option<String>,
}

impl TryFrom<CreateUserRequest> for NewUser {
    type Error = ApiError;
    fn try_from(r: CreateUserRequest) -> Result<Self, ApiError> {
        Ok(NewUser {
            otp_method: r
                .otp_method
                .parse()
                .map_err(|()| ApiError::invalid_request("otp_method: \"sms\" or \"totp\""))?,
            locale: match r.locale.as_deref() {
                None | Some("it") => Locale::It,
                Some("en") => Locale::En,
                Some(_) => return Err(ApiError::invalid_request("locale: \"it\" or \"en\"")),
            },
            user_id: r.user_id,
            given_name: r.given_name,
            surname: r.surname,
            fiscal_code: r.fiscal_code,
            email: r.email,
            phone: r.phone,
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// No secret of the subscriber's: the setup link went to their e-mail address.
#[derive(Serialize)]
pub struct CreateUserResponse {
    pub user_id: String,
    pub otp_method: &'static str,
    pub locale: &'static str,
    pub setup_link_expires_at: String,
}

impl From<CreatedUser> for CreateUserResponse {
    fn from(u: CreatedUser) -> Self {
        CreateUserResponse {
            user_id: u.user_id,
            otp_method: u.otp_method.as_str(),
            locale: u.locale.as_str(),
            setup_link_expires_at: rfc3339(u.setup_link_expires_at),
        }
    }
}

/// `POST /admin/v1/users/{user_id}/setup-link` → 201.
#[derive(Serialize)]
pub struct SetupLinkResponse {
    pub user_id: String,
    pub setup_link_expires_at: String,
}

impl SetupLinkResponse {
    pub fn new(user_id: String, expires_at: OffsetDateTime) -> Self {
        SetupLinkResponse {
            user_id,
            setup_link_expires_at: rfc3339(expires_at),
        }
    }
}

/// `POST /admin/v1/credentials/{credential_id}/envelope` → 200.
#[derive(Serialize)]
pub struct EnvelopeResponse {
    pub credential_id: Uuid,
    pub envelope: &'static str,
}

impl EnvelopeResponse {
    pub fn new(credential_id: Uuid, state: EnvelopeState) -> Self {
        EnvelopeResponse {
            credential_id,
            envelope: state.as_str(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub key_algo: String,
    #[serde(deserialize_with = "text::<ID, _>")]
    pub purpose: String,
    /// Absent or `null`: the CA's default (the admin API documents both).
    pub validity_days: Option<u32>,
}

impl CreateCredentialRequest {
    pub fn into_command(self, user_id: String) -> Result<NewCredential, ApiError> {
        Ok(NewCredential {
            user_id,
            key_algo: self.key_algo.parse().map_err(|()| {
                ApiError::invalid_request("key_algo: ec-p256, ec-p384, rsa-2048 or rsa-3072")
            })?,
            purpose: self
                .purpose
                .parse()
                .map_err(|()| ApiError::invalid_request("purpose: signing or authentication"))?,
            validity_days: self.validity_days,
        })
    }
}

/// No PUK: it is in the sealed envelope, e-mailed now (`sent`) or when the subscriber completes
/// the setup (`awaiting_setup`).
#[derive(Serialize)]
pub struct CreateCredentialResponse {
    pub credential_id: Uuid,
    pub status: &'static str,
    pub serial_number: String,
    pub envelope: &'static str,
}

impl From<CreatedCredential> for CreateCredentialResponse {
    fn from(c: CreatedCredential) -> Self {
        CreateCredentialResponse {
            credential_id: c.credential_id,
            status: c.status.as_str(),
            serial_number: c.serial_number,
            envelope: c.envelope.as_str(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeRequest {
    #[serde(deserialize_with = "text::<PROSE, _>")]
    pub reason: String,
    /// The CRLReason of a revocation (CRL and OCSP); unspecified when absent. Only revoke
    /// takes one: a suspension is certificateHold.
    #[serde(default)]
    pub reason_code: Option<crate::pki::RevocationReason>,
}

#[derive(Serialize)]
pub struct StatusResponse {
    pub credential_id: Uuid,
    pub status: &'static str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponsRequest {
    pub count: usize,
}

#[derive(Serialize)]
pub struct CouponsResponse {
    pub coupons: Vec<String>,
}
