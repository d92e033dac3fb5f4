//! A subscriber's view of their credentials (CSC credentials/list and credentials/info).
//!
//! Invariant: a user only ever sees their own credentials; someone else's is "not found".

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{repo, DbError};
use crate::model::{Credential, CredentialStatus};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("Invalid parameter credentialID")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// CSC `cert/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Valid,
    Expired,
    Revoked,
    Suspended,
}

impl CertStatus {
    pub fn of(credential: &Credential, now: OffsetDateTime) -> CertStatus {
        match credential.status {
            CredentialStatus::Revoked => CertStatus::Revoked,
            CredentialStatus::Suspended => CertStatus::Suspended,
            _ if credential.valid_to <= now => CertStatus::Expired,
            _ => CertStatus::Valid,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Valid => "valid",
            CertStatus::Expired => "expired",
            CertStatus::Revoked => "revoked",
            CertStatus::Suspended => "suspended",
        }
    }
}

/// True if the credential can sign right now (active, certificate valid).
pub fn is_usable(credential: &Credential, now: OffsetDateTime) -> bool {
    credential.status == CredentialStatus::Active
        && CertStatus::of(credential, now) == CertStatus::Valid
}

/// The caller's credentials, oldest first; `only_valid` keeps those that can sign now.
pub async fn list(
    services: &Services,
    user_id: &str,
    only_valid: bool,
) -> Result<Vec<Credential>, CredentialError> {
    let now = OffsetDateTime::now_utc();
    let mut all = repo::credentials::list_for_user(&services.db, user_id).await?;
    if only_valid {
        all.retain(|c| is_usable(c, now));
    }
    Ok(all)
}

/// One of the caller's credentials.
pub async fn get(
    services: &Services,
    user_id: &str,
    id: Uuid,
) -> Result<Credential, CredentialError> {
    repo::credentials::find_owned(&services.db, id, user_id)
        .await?
        .ok_or(CredentialError::NotFound)
}

/// How `user_id` receives OTPs (for the credential's auth descriptors).
pub async fn otp_method(
    services: &Services,
    user_id: &str,
) -> Result<crate::model::OtpMethod, CredentialError> {
    repo::users::find(&services.db, user_id)
        .await?
        .map(|u| u.otp_method)
        .ok_or(CredentialError::NotFound)
}

/// The expiry notices sent to `user_id` (an audited portal read).
pub async fn notifications(
    services: &Services,
    user_id: &str,
) -> Result<Vec<repo::notices::Notice>, CredentialError> {
    let notices = repo::notices::for_user(&services.db, user_id).await?;
    services
        .audit
        .record(
            user_id,
            "portal.notifications",
            None,
            "ok",
            serde_json::json!({}),
        )
        .await?;
    Ok(notices)
}

/// The caller's credentials for the self-service portal (an audited portal read).
pub async fn list_for_portal(
    services: &Services,
    user_id: &str,
) -> Result<Vec<Credential>, CredentialError> {
    let all = list(services, user_id, false).await?;
    services
        .audit
        .record(
            user_id,
            "portal.credentials",
            None,
            "ok",
            serde_json::json!({ "count": all.len() }),
        )
        .await?;
    Ok(all)
}
