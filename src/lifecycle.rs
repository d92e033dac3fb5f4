//! The operator's lifecycle changes: suspend, resume, revoke.
//!
//! Invariant: a suspension or revocation stops the credential's outstanding SADs at once on
//! every gateway node — the Redis hold is set BEFORE the database changes, and checked by the
//! same Lua script that consumes a SAD. A revoked credential never signs again.
//!
//! Revocation is final in the HSM too: once it is committed in PostgreSQL, the credential's
//! private key is destroyed (`C_DestroyObject`); the certificate, the public key and the
//! history stay. A suspension keeps the key. A destruction that fails after the commit leaves
//! the revocation final (PostgreSQL refuses every authorize of a revoked credential) and is
//! logged, audited as `credential.key_destroy`/`failed`, and retried by the next revoke of
//! that credential and by the sweep every gateway runs at start-up
//! ([`destroy_revoked_keys`]).

use serde_json::json;
use uuid::Uuid;

use crate::activation::sad;
use crate::audit::AuditError;
use crate::db::repo::credentials::{self as repo, OperatorChange};
use crate::db::DbError;
use crate::kv::KvError;
use crate::model::{CredentialStatus, Operator};
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

/// Applies `change` to credential `id` for `operator` (the audit's actor); returns its new
/// status.
pub async fn change_status(
    services: &Services,
    id: Uuid,
    change: OperatorChange,
    reason: &str,
    operator: &Operator,
) -> Result<CredentialStatus, LifecycleError> {
    let action = match change {
        OperatorChange::Suspend => "credential.suspend",
        OperatorChange::Resume => "credential.resume",
        OperatorChange::Revoke => "credential.revoke",
    };
    let reason = reason.trim();
    let found = if reason.is_empty() || reason.chars().count() > 500 {
        Err(LifecycleError::BadReason)
    } else {
        repo::find(&services.db, id)
            .await?
            .ok_or(LifecycleError::NotFound)
    };
    let credential = match found {
        Ok(credential) => credential,
        Err(err) => {
            // Refused before anything changed: audited all the same.
            services
                .audit
                .record(
                    &operator.name,
                    action,
                    Some(id),
                    "refused",
                    operator.audit_detail(json!({ "error": err.to_string() })),
                )
                .await?;
            return Err(err);
        }
    };
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
    let audited = services
        .audit
        .record(
            &operator.name,
            action,
            Some(id),
            if outcome.is_some() { "ok" } else { "refused" },
            operator.audit_detail(json!({ "reason": reason, "from": credential.status.as_str() })),
        )
        .await;
    // Committed (or committed earlier, if this is a second revoke): the key goes for good,
    // whether or not the audit above could be written.
    let revoked = outcome == Some(CredentialStatus::Revoked)
        || (outcome.is_none() && credential.status == CredentialStatus::Revoked);
    if matches!(change, OperatorChange::Revoke) && revoked {
        destroy_key(services, id, &operator.name).await;
    }
    audited?;
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

/// Destroys the private key of the revoked credential `id`; a failure is logged and audited,
/// not returned: the revocation it follows is already final.
async fn destroy_key(services: &Services, id: Uuid, actor: &str) {
    let (outcome, detail) = match services
        .hsm
        .destroy_private_key(id.as_bytes().to_vec())
        .await
    {
        Ok(objects) => ("ok", json!({ "objects": objects })),
        Err(e) => {
            tracing::error!(credential_id = %id, error = %e,
                "the key of a revoked credential could not be destroyed; retried at the next revoke and at start-up");
            ("failed", json!({ "error": e.to_string() }))
        }
    };
    if let Err(e) = services
        .audit
        .record(actor, "credential.key_destroy", Some(id), outcome, detail)
        .await
    {
        tracing::error!(credential_id = %id, error = %e, "audit of a key destruction failed");
    }
}

/// Start-up sweep: destroys any private key still in the token for a revoked credential (a
/// destruction that failed after its revocation committed). Costs one query and an in-memory
/// lookup per revoked credential (the handle cache holds every private key after
/// [`crate::hsm::Hsm::preload_keys`]). Returns how many keys it destroyed.
pub async fn destroy_revoked_keys(services: &Services) -> Result<usize, LifecycleError> {
    let mut destroyed = 0;
    for id in repo::revoked_ids(&services.db).await? {
        if services.hsm.caches_private_key(id.as_bytes()) {
            tracing::warn!(credential_id = %id, "revoked credential still has a key; destroying it");
            destroy_key(services, id, "system").await;
            destroyed += 1;
        }
    }
    Ok(destroyed)
}
