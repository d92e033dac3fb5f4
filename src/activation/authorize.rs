//! `credentials/authorize`: the subscriber's PIN and OTP turn into a SAD for `numSignatures`
//! signatures — with SCAL2, for exactly the given hashes.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::pin::check_factors;
use super::sad::{self, NewSad};
use super::{ActivationError, SecretKind};
use crate::db::repo;
use crate::hsm::HashAlg;
use crate::model::CredentialStatus;
use crate::otp::Purpose;
use crate::services::Services;

/// A validated authorize request.
pub struct AuthorizeCommand {
    pub user_id: String,
    pub credential_id: Uuid,
    pub num_signatures: u32,
    /// The hashes to bind (distinct), with their algorithm if the client named it.
    pub hashes: Option<Vec<Vec<u8>>>,
    pub hash_alg: Option<HashAlg>,
    pub pin: Option<String>,
    pub otp: Option<String>,
}

/// An issued SAD.
pub struct Authorized {
    pub sad: String,
    pub expires_in: u64,
}

/// Checks OTP and PIN and issues a SAD.
pub async fn authorize(
    services: &Services,
    cmd: AuthorizeCommand,
) -> Result<Authorized, ActivationError> {
    let result = run(services, &cmd).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ActivationError::WrongPin { .. } | ActivationError::PinBlocked) => "wrong_pin",
        Err(ActivationError::Otp(e)) => e.audit_outcome(),
        Err(_) => "refused",
    };
    services
        .audit
        .record(
            &cmd.user_id,
            "credential.authorize",
            Some(cmd.credential_id),
            outcome,
            json!({ "num_signatures": cmd.num_signatures, "bound": cmd.hashes.is_some() }),
        )
        .await?;
    result
}

async fn run(services: &Services, cmd: &AuthorizeCommand) -> Result<Authorized, ActivationError> {
    let pin = cmd.pin.as_deref().ok_or(ActivationError::Malformed {
        field: "PIN",
        reason: "the PIN is required",
    })?;
    let otp = cmd.otp.as_deref().ok_or(ActivationError::Malformed {
        field: "OTP",
        reason: "the OTP is required",
    })?;
    if services.config.csc.scal == "2" && cmd.hashes.is_none() {
        return Err(ActivationError::Malformed {
            field: "hashes",
            reason: "SCAL2: the hashes to sign are required",
        });
    }
    let credential = repo::credentials::find_owned(&services.db, cmd.credential_id, &cmd.user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    if credential.status != CredentialStatus::Active {
        return Err(ActivationError::WrongState(credential.status));
    }
    if credential.valid_to <= OffsetDateTime::now_utc() {
        return Err(ActivationError::CertificateExpired);
    }
    // Counts the attempt before comparing; a right PIN clears the count.
    let purpose = Purpose::Sign(credential.credential_id);
    check_factors(services, &credential, otp, purpose, SecretKind::Pin, pin).await?;
    let ttl = services.config.csc.sad_ttl_secs;
    let sad = sad::create(
        &services.kv,
        NewSad {
            user_id: &cmd.user_id,
            credential_id: credential.credential_id,
            count: cmd.num_signatures,
            key_algo: credential.key_algo,
            purpose: credential.purpose,
            hash_alg: cmd.hash_alg,
            hashes: cmd.hashes.as_deref(),
            ttl_secs: ttl,
        },
    )
    .await?;
    Ok(Authorized {
        sad,
        expires_in: ttl,
    })
}

/// `credentials/extendTransaction`: a fresh SAD with what the old one has left.
pub async fn extend_transaction(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
    old_sad: &str,
) -> Result<Authorized, ActivationError> {
    let ttl = services.config.csc.sad_ttl_secs;
    let sad = sad::extend(&services.kv, user_id, credential_id, old_sad, ttl)
        .await?
        .ok_or(ActivationError::SadUnknown)?;
    Ok(Authorized {
        sad,
        expires_in: ttl,
    })
}
