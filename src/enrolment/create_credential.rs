//! Creating a credential: key pair in the HSM, certificate, and — once the subscriber has
//! done the setup — the sealed envelope with its PUK (at once, or when the setup completes).

use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::envelope::{lock_user, make_waiting, sent, EnvelopeState};
use super::EnrolError;
use crate::ca::IssueRequest;
use crate::db::{repo, DbError};
use crate::hsm::KeyAlgo;
use crate::model::{Credential, CredentialStatus, Operator, Purpose};
use crate::services::Services;

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub user_id: String,
    pub key_algo: KeyAlgo,
    pub purpose: Purpose,
    pub validity_days: Option<u32>,
}

/// The new credential; its PUK is in the envelope only.
#[derive(Debug, Clone)]
pub struct CreatedCredential {
    pub credential_id: Uuid,
    pub status: CredentialStatus,
    pub serial_number: String,
    pub envelope: EnvelopeState,
}

/// Longest certificate the CA issues.
pub const MAX_VALIDITY_DAYS: u32 = 3650;

/// Creates an inactive credential for an existing subscriber, as the operator of this
/// machine's command line.
pub async fn create_credential(
    services: &Services,
    new: NewCredential,
) -> Result<CreatedCredential, EnrolError> {
    let operator = Operator::local(&services.config.security.admin_name);
    create_credential_by(services, new, &operator).await
}

/// [`create_credential`] by `operator`: audited with the operator's name and address,
/// refusals too.
pub async fn create_credential_by(
    services: &Services,
    new: NewCredential,
    operator: &Operator,
) -> Result<CreatedCredential, EnrolError> {
    let result = create(services, &new, operator).await;
    if let Err(err) = &result {
        services
            .audit
            .record(
                &operator.name,
                "credential.create",
                None,
                "refused",
                operator.audit_detail(json!({
                    "user_id": new.user_id,
                    "key_algo": new.key_algo.as_str(),
                    "error": err.to_string(),
                })),
            )
            .await?;
    }
    result
}

async fn create(
    services: &Services,
    new: &NewCredential,
    operator: &Operator,
) -> Result<CreatedCredential, EnrolError> {
    let days = new
        .validity_days
        .unwrap_or(services.config.ca.default_validity_days);
    if !(1..=MAX_VALIDITY_DAYS).contains(&days) {
        return Err(EnrolError::Invalid {
            field: "validity_days",
            reason: "between 1 and 3650",
        });
    }
    let user = repo::users::find(&services.db, &new.user_id)
        .await?
        .ok_or(EnrolError::UserNotFound)?;

    let credential_id = Uuid::new_v4();
    let key_id = credential_id.as_bytes().to_vec();
    let spki = services
        .hsm
        .generate_key_pair(new.key_algo, key_id.clone(), credential_id.to_string())
        .await?;
    let result = finish(services, new, &user, credential_id, spki, days, operator).await;
    if result.is_err() {
        // Nothing half-enrolled: the key goes with the failed credential.
        if let Err(e) = services.hsm.destroy_key_pair(key_id).await {
            tracing::error!(%credential_id, error = %e, "could not destroy the key of a failed enrolment");
        }
    }
    result
}

async fn finish(
    services: &Services,
    new: &NewCredential,
    user: &crate::model::User,
    credential_id: Uuid,
    spki: Vec<u8>,
    days: u32,
    operator: &Operator,
) -> Result<CreatedCredential, EnrolError> {
    let now = OffsetDateTime::now_utc();
    let issued = services
        .ca
        .issue(IssueRequest {
            given_name: user.given_name.clone(),
            surname: user.surname.clone(),
            fiscal_code: user.fiscal_code.clone(),
            organization: None,
            purpose: new.purpose,
            spki,
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(i64::from(days)),
        })
        .await?;
    let credential = Credential {
        credential_id,
        user_id: user.user_id.clone(),
        key_algo: new.key_algo,
        purpose: new.purpose,
        status: CredentialStatus::Inactive,
        pin_hmac: None,
        puk_hmac: None,
        pin_failures: 0,
        puk_failures: 0,
        serial_number: issued.serial_number.clone(),
        subject_dn: issued.subject_dn,
        valid_from: issued.not_before,
        valid_to: issued.not_after,
        cert_chain: issued.chain,
        renewed_at: None,
    };
    let mut client = services.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    // The subscriber first (as setup takes it): the envelope is made here or by the setup.
    let setup_done = lock_user(&tx, &user.user_id).await?;
    repo::credentials::insert(&tx, &credential).await?;
    let made = make_waiting(services, &tx, &user.user_id).await?;
    tx.commit().await.map_err(DbError::from)?;
    let envelope = if setup_done {
        EnvelopeState::Sent
    } else {
        EnvelopeState::AwaitingSetup
    };
    services
        .audit
        .record(
            &operator.name,
            "credential.create",
            Some(credential_id),
            "ok",
            operator.audit_detail(json!({
                "user_id": user.user_id,
                "key_algo": new.key_algo.as_str(),
                "purpose": new.purpose.as_str(),
                "serial_number": issued.serial_number,
                "envelope": envelope.as_str(),
            })),
        )
        .await?;
    sent(services, &operator.name, &user.user_id, &made, |d| {
        operator.audit_detail(d)
    })
    .await?;
    Ok(CreatedCredential {
        credential_id,
        status: CredentialStatus::Inactive,
        serial_number: credential.serial_number,
        envelope,
    })
}
