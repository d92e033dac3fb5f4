//! The operator's lifecycle changes: suspend, resume, revoke. Each change that applies sends
//! the subscriber an e-mail notice, queued in the change's own transaction.
//!
//! Invariant: a suspension or revocation stops the credential's outstanding SADs at once on
//! every gateway node — the Redis hold is set BEFORE the database changes, and checked by the
//! same Lua script that consumes a SAD. A revoked credential never signs again.
//!
//! Invariant: Redis and PostgreSQL agree whatever fails. Redis is changed first (hold set for
//! suspend and revoke, hold lifted for resume): a Redis failure commits nothing. A database
//! failure after it puts the hold back as it was. A change the database refuses (wrong
//! state) leaves the hold as the database's status says. Where Redis fails in that repair,
//! the hold errs towards refusing: a stray hold on an active credential (signHash refused)
//! is lifted by a resume; a missing one on a suspended credential is covered by PostgreSQL
//! (authorize refuses it; older SADs carry the generation the hold bumped).
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
use crate::mail::{self, Message, StatusChange};
use crate::model::{Credential, CredentialStatus, Operator};
use crate::pki::RevocationReason;
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
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
}

/// Applies `change` to credential `id` for `operator` (the audit's actor); returns its new
/// status.
pub async fn change_status(
    services: &Services,
    id: Uuid,
    change: OperatorChange,
    reason: &str,
    crl_reason: Option<RevocationReason>,
    operator: &Operator,
) -> Result<CredentialStatus, LifecycleError> {
    let action = match change {
        OperatorChange::Suspend | OperatorChange::SubscriberSuspend => "credential.suspend",
        OperatorChange::Resume | OperatorChange::SubscriberResume => "credential.resume",
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
    let stops_signing = matches!(
        change,
        OperatorChange::Suspend | OperatorChange::SubscriberSuspend | OperatorChange::Revoke
    );
    let resumes = matches!(
        change,
        OperatorChange::Resume | OperatorChange::SubscriberResume
    );
    let user_id = credential.user_id.as_str();
    // What this call did to the hold before the update: set it (true), released it (false).
    let mut touched = None;
    if stops_signing {
        // First the hold, so that no SAD signs between this line and the database update. If
        // Redis fails here, nothing is committed: the operator sees a 503 and retries.
        sad::hold(&services.kv, user_id, id).await?;
        touched = Some(true);
        services.hsm.forget_key(id.as_bytes());
    } else if resumes && credential.status == CredentialStatus::Suspended {
        // First the release: if Redis fails here, nothing is committed (the credential stays
        // suspended in both). Between this line and the update no SAD can sign: a new one
        // needs authorize, which reads the suspended status in PostgreSQL, and every older
        // one carries the generation the hold bumped.
        sad::release(&services.kv, user_id, id).await?;
        touched = Some(false);
    }
    let code = crl_reason.map(RevocationReason::code);
    let outcome = match apply_and_notify(services, &credential, change, reason, code).await {
        Ok(outcome) => outcome,
        Err(err) => {
            // Nothing committed: put Redis back as PostgreSQL still has it.
            if let Some(was_set) = touched {
                restore_hold(services, user_id, id, was_set).await;
            }
            return Err(err);
        }
    };
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
    if outcome.is_some() {
        // Relying parties learn it now from this node (OCSP, CRL), and from the others at
        // their next status poll.
        if let Err(e) = services.pki.refresh(&services.db, &services.ca).await {
            tracing::error!(credential_id = %id, error = %e,
                "certificate status refresh after a status change failed; the next poll retries");
        }
    }
    audited?;
    match outcome {
        Some(status) => Ok(status),
        None => {
            // Refused: Redis must agree with what PostgreSQL has now (a hold set above must
            // not outlive a credential that still works; a hold released above must come
            // back if the credential was suspended or revoked meanwhile; a resume of a
            // credential that was never suspended clears a stray hold).
            let now = repo::find(&services.db, id)
                .await?
                .map_or(credential.status, |c| c.status);
            if holds(now) {
                if resumes {
                    sad::hold(&services.kv, user_id, id).await?;
                }
            } else {
                sad::release(&services.kv, user_id, id).await?;
            }
            Err(LifecycleError::WrongState(credential.status))
        }
    }
}

/// The status change and, when it applies, the subscriber's e-mail notice of it, in one
/// transaction: both commit or neither does.
async fn apply_and_notify(
    services: &Services,
    credential: &Credential,
    change: OperatorChange,
    reason: &str,
    crl_reason: Option<i16>,
) -> Result<Option<CredentialStatus>, LifecycleError> {
    let mut client = services.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    let outcome =
        repo::apply_operator_change_on(&tx, credential.credential_id, change, reason, crl_reason)
            .await?;
    if outcome.is_some() {
        let change = match change {
            OperatorChange::Suspend | OperatorChange::SubscriberSuspend => StatusChange::Suspended,
            OperatorChange::Resume | OperatorChange::SubscriberResume => StatusChange::Resumed,
            OperatorChange::Revoke => StatusChange::Revoked,
        };
        let notice = Message::StatusChanged {
            serial_number: credential.serial_number.clone(),
            change,
        };
        mail::enqueue(&tx, &credential.user_id, &notice).await?;
    }
    tx.commit().await.map_err(DbError::from)?;
    if outcome.is_some() {
        services.mail.wake();
    }
    Ok(outcome)
}

/// Whether a credential in `status` has its Redis hold set.
fn holds(status: CredentialStatus) -> bool {
    matches!(
        status,
        CredentialStatus::Suspended | CredentialStatus::Revoked
    )
}

/// After a failed database update: sets the hold back to what PostgreSQL has (`true` when
/// the change was a suspension or revocation: it is lifted again; otherwise a resumption
/// released it: it is set again). A Redis failure here is logged: the hold is then wrong
/// but fails closed (a stray hold refuses signHash of a credential still active, and a
/// resume of that credential lifts it); a missing one is covered by PostgreSQL, which
/// refuses authorize of a suspended credential.
async fn restore_hold(services: &Services, user_id: &str, id: Uuid, was_set: bool) {
    let restored = if was_set {
        sad::release(&services.kv, user_id, id).await
    } else {
        sad::hold(&services.kv, user_id, id).await
    };
    if let Err(e) = restored {
        tracing::error!(credential_id = %id, error = %e,
            "the credential hold could not be put back after a failed status change");
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
