//! The operator's lifecycle changes: suspend, resume, revoke.
//!
//! Invariant: a suspension or revocation stops the credential's outstanding SADs at once on
//! every gateway node — the Redis hold is set BEFORE the database changes, and checked by the
//! same Lua script that consumes a SAD. A revoked credential never signs again.

use serde_json::json;
use uuid::Uuid;

use crate::activation::sad;
use crate::audit::AuditError;
use crate::db::repo::credentials::{self as repo, OperatorChange};
use crate::db::DbError;
use crate::kv::KvError;
use crate::model::CredentialStatus;
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("no such credential")]
    NotFound,
    #[error("the credential is {0}: this change does not apply")]
    WrongState(CredentialStatus),
    #[error("reason: 1 to 500 characters")]
    BadReason,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Applies `change` to credential `id`; returns its new status.
pub async fn change_status(
    services: &Services,
    id: Uuid,
    change: OperatorChange,
    reason: &str,
) -> Result<CredentialStatus, LifecycleError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(LifecycleError::BadReason);
    }
    let credential = repo::find(&services.db, id)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    let stops_signing = matches!(change, OperatorChange::Suspend | OperatorChange::Revoke);
    if stops_signing {
        // First the hold, so that no SAD signs between this line and the database update.
        sad::hold(&services.kv, &credential.user_id, id).await?;
        services.hsm.forget_key(id.as_bytes());
    }
    let outcome = repo::apply_operator_change(&services.db, id, change, reason).await?;
    if outcome.is_some() && matches!(change, OperatorChange::Resume) {
        // The credential works again: lift the hold before anything else can fail.
        sad::release(&services.kv, &credential.user_id, id).await?;
    }
    let action = match change {
        OperatorChange::Suspend => "credential.suspend",
        OperatorChange::Resume => "credential.resume",
        OperatorChange::Revoke => "credential.revoke",
    };
    services
        .audit
        .record(
            "admin",
            action,
            Some(id),
            if outcome.is_some() { "ok" } else { "refused" },
            json!({ "reason": reason, "from": credential.status.as_str() }),
        )
        .await?;
    match outcome {
        Some(status) => Ok(status),
        None => {
            // Refused: a hold set above must not outlive a credential that still works.
            let still_held = matches!(
                credential.status,
                CredentialStatus::Suspended | CredentialStatus::Revoked
            );
            if stops_signing && !still_held {
                sad::release(&services.kv, &credential.user_id, id).await?;
            }
            Err(LifecycleError::WrongState(credential.status))
        }
    }
}
