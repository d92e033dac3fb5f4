//! `credentials/sendOTP` and the portal's `credentials/{id}/otp`: text a fresh OTP to the owner
//! of a credential, bound to one operation on that credential ([`Purpose`]).

use serde_json::json;
use uuid::Uuid;

use super::ActivationError;
use crate::db::repo;
use crate::model::{Credential, CredentialStatus};
use crate::otp::Purpose;
use crate::services::Services;

/// The operations a subscriber can ask a code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpOperation {
    Sign,
    Activate,
    PinChange,
    Unblock,
    Renew,
}

impl OtpOperation {
    fn purpose(self, credential_id: Uuid) -> Purpose {
        match self {
            OtpOperation::Sign => Purpose::Sign(credential_id),
            OtpOperation::Activate => Purpose::Activate(credential_id),
            OtpOperation::PinChange => Purpose::PinChange(credential_id),
            OtpOperation::Unblock => Purpose::Unblock(credential_id),
            OtpOperation::Renew => Purpose::Renew(credential_id),
        }
    }
}

/// CSC `credentials/sendOTP`: a code to sign with `credential_id` — or, where the state of the
/// credential allows one operation only, for that one: its activation while it is inactive,
/// its PIN unblock while it is PIN-blocked. A code for a PIN change or a renewal comes from
/// [`send_operation_otp`].
pub async fn send_otp(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
) -> Result<(), ActivationError> {
    send(services, user_id, credential_id, |c| match c.status {
        CredentialStatus::Inactive => Purpose::Activate(c.credential_id),
        CredentialStatus::PinBlocked => Purpose::Unblock(c.credential_id),
        _ => Purpose::Sign(c.credential_id),
    })
    .await
}

/// `POST /api/v1/credentials/{id}/otp {operation}`: a code for `operation` on `credential_id`.
pub async fn send_operation_otp(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
    operation: OtpOperation,
) -> Result<(), ActivationError> {
    send(services, user_id, credential_id, |c| {
        operation.purpose(c.credential_id)
    })
    .await
}

async fn send(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
    purpose_of: impl FnOnce(&Credential) -> Purpose,
) -> Result<(), ActivationError> {
    let credential = repo::credentials::find_owned(&services.db, credential_id, user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    if matches!(
        credential.status,
        CredentialStatus::Revoked | CredentialStatus::Blocked
    ) {
        return Err(ActivationError::WrongState(credential.status));
    }
    let user = repo::users::find(&services.db, user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    let purpose = purpose_of(&credential);
    let result = services.otp.send_sms(&user, purpose).await;
    services
        .audit
        .record(
            user_id,
            "otp.send",
            Some(credential_id),
            if result.is_ok() { "ok" } else { "refused" },
            json!({ "operation": purpose.operation() }),
        )
        .await?;
    Ok(result?)
}
