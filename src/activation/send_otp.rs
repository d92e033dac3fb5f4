//! `credentials/sendOTP`: texts a fresh OTP to the owner of a credential.

use serde_json::json;
use uuid::Uuid;

use super::ActivationError;
use crate::db::repo;
use crate::model::CredentialStatus;
use crate::services::Services;

/// Sends an SMS OTP to `user_id`, who must own `credential_id`.
pub async fn send_otp(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
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
    let result = services.otp.send_sms(&user).await;
    services
        .audit
        .record(
            user_id,
            "otp.send",
            Some(credential_id),
            if result.is_ok() { "ok" } else { "refused" },
            json!({}),
        )
        .await?;
    Ok(result?)
}
