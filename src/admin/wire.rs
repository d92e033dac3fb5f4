//! Admin request and response shapes, and their conversion into domain commands.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::enrolment::{CreatedCredential, CreatedUser, NewCredential, NewUser};
use crate::error::ApiError;
use crate::text::{text, ID, PROSE, SECRET};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub user_id: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub password: String,
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
}

impl TryFrom<CreateUserRequest> for NewUser {
    type Error = ApiError;
    fn try_from(r: CreateUserRequest) -> Result<Self, ApiError> {
        Ok(NewUser {
            otp_method: r
                .otp_method
                .parse()
                .map_err(|()| ApiError::invalid_request("otp_method: \"sms\" or \"totp\""))?,
            user_id: r.user_id,
            password: r.password,
            given_name: r.given_name,
            surname: r.surname,
            fiscal_code: r.fiscal_code,
            email: r.email,
            phone: r.phone,
        })
    }
}

#[derive(Serialize)]
pub struct CreateUserResponse {
    pub user_id: String,
    pub otp_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_uri: Option<String>,
    /// Shown this once. Temporary: the sealed envelope will carry it instead.
    pub emergency_code: String,
}

impl From<CreatedUser> for CreateUserResponse {
    fn from(u: CreatedUser) -> Self {
        CreateUserResponse {
            user_id: u.user_id,
            otp_method: u.otp_method.as_str(),
            totp_uri: u.totp_uri,
            emergency_code: u.emergency_code,
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

#[derive(Serialize)]
pub struct Activation {
    pub puk: String,
}

#[derive(Serialize)]
pub struct CreateCredentialResponse {
    pub credential_id: Uuid,
    pub status: &'static str,
    pub serial_number: String,
    pub activation: Activation,
}

impl From<CreatedCredential> for CreateCredentialResponse {
    fn from(c: CreatedCredential) -> Self {
        CreateCredentialResponse {
            credential_id: c.credential_id,
            status: c.status.as_str(),
            serial_number: c.serial_number,
            activation: Activation { puk: c.puk },
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
