//! PIN change (with the current PIN) and PIN unblock (with the PUK), both confirmed by an OTP;
//! the subscriber gets an e-mail notice of either, queued in the transaction of the new PIN.

use serde_json::json;
use uuid::Uuid;

use super::pin::check_factors;
use super::{check_new_pin, ActivationError, SecretKind};
use crate::db::{repo, DbError};
use crate::mail::{self, Message};
use crate::model::{Credential, CredentialStatus};
use crate::otp::Purpose;
use crate::services::Services;

/// Change the PIN of an active credential, or unblock a PIN-blocked one with the PUK.
pub enum PinChange {
    /// `{pin, new_pin, otp}` on an active credential.
    WithPin { pin: String },
    /// `{puk, new_pin, otp}` on a PIN-blocked credential.
    WithPuk { puk: String },
}

pub struct PinChangeCommand {
    pub user_id: String,
    pub credential_id: Uuid,
    pub change: PinChange,
    pub new_pin: String,
    pub otp: String,
}

async fn owned(
    services: &Services,
    user_id: &str,
    id: Uuid,
) -> Result<Credential, ActivationError> {
    repo::credentials::find_owned(&services.db, id, user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)
}

/// Sets a new PIN; returns the credential's status (active).
pub async fn change_pin(
    services: &Services,
    cmd: PinChangeCommand,
) -> Result<CredentialStatus, ActivationError> {
    let action = match cmd.change {
        PinChange::WithPin { .. } => "credential.pin_change",
        PinChange::WithPuk { .. } => "credential.pin_unblock",
    };
    let result = run(services, &cmd).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ActivationError::WrongPin { .. } | ActivationError::PinBlocked) => "wrong_pin",
        Err(ActivationError::WrongPuk { .. } | ActivationError::PukBlocked) => "wrong_puk",
        Err(ActivationError::Otp(e)) => e.audit_outcome(),
        Err(_) => "refused",
    };
    services
        .audit
        .record(
            &cmd.user_id,
            action,
            Some(cmd.credential_id),
            outcome,
            json!({}),
        )
        .await?;
    result
}

async fn run(
    services: &Services,
    cmd: &PinChangeCommand,
) -> Result<CredentialStatus, ActivationError> {
    check_new_pin(&cmd.new_pin)?;
    let credential = owned(services, &cmd.user_id, cmd.credential_id).await?;
    let from = match (&cmd.change, credential.status) {
        (PinChange::WithPin { pin }, CredentialStatus::Active) => {
            if *pin == cmd.new_pin {
                return Err(ActivationError::Malformed {
                    field: "new_pin",
                    reason: "the new PIN must differ from the current one",
                });
            }
            let purpose = Purpose::PinChange(credential.credential_id);
            check_factors(
                services,
                &credential,
                &cmd.otp,
                purpose,
                SecretKind::Pin,
                pin,
            )
            .await?;
            CredentialStatus::Active
        }
        (PinChange::WithPuk { puk }, CredentialStatus::PinBlocked) => {
            let purpose = Purpose::Unblock(credential.credential_id);
            check_factors(
                services,
                &credential,
                &cmd.otp,
                purpose,
                SecretKind::Puk,
                puk,
            )
            .await?;
            CredentialStatus::PinBlocked
        }
        (_, CredentialStatus::Blocked) => return Err(ActivationError::PukBlocked),
        (_, other) => return Err(ActivationError::WrongState(other)),
    };
    let pin_hmac = services
        .pins
        .digest(SecretKind::Pin, credential.credential_id, &cmd.new_pin)
        .await?;
    // The new PIN and its security notice commit together.
    let mut client = services.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    if !repo::credentials::set_pin_on(&tx, credential.credential_id, &pin_hmac, from).await? {
        drop(tx);
        drop(client);
        let now = owned(services, &cmd.user_id, cmd.credential_id)
            .await?
            .status;
        return Err(ActivationError::WrongState(now));
    }
    let notice = Message::PinChanged {
        serial_number: credential.serial_number.clone(),
        unblocked: from == CredentialStatus::PinBlocked,
    };
    mail::enqueue(&tx, &credential.user_id, &notice).await?;
    tx.commit().await.map_err(DbError::from)?;
    services.mail.wake();
    Ok(CredentialStatus::Active)
}
