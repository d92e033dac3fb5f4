//! First activation of a credential: PUK from the sealed envelope + OTP → first PIN.

use serde_json::json;
use uuid::Uuid;

use super::pin::check_factors;
use super::{check_new_pin, is_digits, ActivationError, SecretKind};
use crate::db::repo;
use crate::model::CredentialStatus;
use crate::otp::Purpose;
use crate::services::Services;

/// A subscriber's request to activate their credential.
pub struct ActivateCommand {
    pub user_id: String,
    pub credential_id: Uuid,
    pub puk: String,
    pub new_pin: String,
    pub otp: String,
}

/// Activates the credential; returns its new status (`active`).
pub async fn activate(
    services: &Services,
    cmd: ActivateCommand,
) -> Result<CredentialStatus, ActivationError> {
    let result = run(services, &cmd).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ActivationError::WrongPuk { .. }) => "wrong_puk",
        Err(ActivationError::PukBlocked) => "puk_blocked",
        Err(ActivationError::Otp(e)) => e.audit_outcome(),
        Err(_) => "refused",
    };
    services
        .audit
        .record(
            &cmd.user_id,
            "credential.activate",
            Some(cmd.credential_id),
            outcome,
            json!({}),
        )
        .await?;
    result
}

async fn run(
    services: &Services,
    cmd: &ActivateCommand,
) -> Result<CredentialStatus, ActivationError> {
    check_new_pin(&cmd.new_pin)?;
    if !is_digits(&cmd.puk, 8) {
        return Err(ActivationError::Malformed {
            field: "puk",
            reason: "the PUK is 8 digits",
        });
    }
    let credential = repo::credentials::find_owned(&services.db, cmd.credential_id, &cmd.user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    match credential.status {
        CredentialStatus::Inactive => {}
        CredentialStatus::Blocked => return Err(ActivationError::PukBlocked),
        other => return Err(ActivationError::WrongState(other)),
    }
    let purpose = Purpose::Activate(credential.credential_id);
    check_factors(
        services,
        &credential,
        &cmd.otp,
        purpose,
        SecretKind::Puk,
        &cmd.puk,
    )
    .await?;
    let pin_hmac = services
        .pins
        .digest(SecretKind::Pin, credential.credential_id, &cmd.new_pin)
        .await?;
    if !repo::credentials::activate(&services.db, credential.credential_id, &pin_hmac).await? {
        // A concurrent request changed the state first.
        let now = repo::credentials::find(&services.db, credential.credential_id)
            .await?
            .map_or(CredentialStatus::Revoked, |c| c.status);
        return Err(ActivationError::WrongState(now));
    }
    Ok(CredentialStatus::Active)
}
