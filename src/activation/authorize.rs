//! `credentials/authorize`: the subscriber's PIN and OTP turn into a SAD for `numSignatures`
//! signatures — with SCAL2, for exactly the given hashes.

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::pin::check_factors;
use super::sad::{self, NewSad, Rebind};
use super::{ActivationError, SecretKind};
use crate::db::repo;
use crate::db::repo::sads::NewSadRecord;
use crate::hsm::HashAlg;
use crate::model::{CredentialStatus, Origin};
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
    // The durable record first: it is issued only if the credential is active at this very
    // moment, and it is what signHash's audit commit will spend.
    let csc = &services.config.csc;
    let sad_id = Uuid::new_v4();
    let max_lifetime = Duration::seconds(i64::try_from(csc.sad_max_lifetime_secs).unwrap_or(0));
    let recorded = repo::sads::insert(
        &services.db,
        &NewSadRecord {
            sad_id,
            user_id: &cmd.user_id,
            credential_id: credential.credential_id,
            authorised: cmd.num_signatures,
            deadline: OffsetDateTime::now_utc() + max_lifetime,
        },
    )
    .await?;
    let Some(recorded) = recorded else {
        // Suspended, revoked or expired between the read above and now.
        let now = repo::credentials::find(&services.db, credential.credential_id).await?;
        return Err(match now {
            Some(c) if c.status != CredentialStatus::Active => {
                ActivationError::WrongState(c.status)
            }
            _ => ActivationError::CertificateExpired,
        });
    };
    let deadline = recorded.expires_at.unix_timestamp();
    let ttl =
        sad::lifetime(csc.sad_ttl_secs, deadline).ok_or(ActivationError::CertificateExpired)?;
    let sad = sad::create(
        &services.kv,
        &services.sad_seal,
        NewSad {
            user_id: &cmd.user_id,
            credential_id: credential.credential_id,
            sad_id,
            count: cmd.num_signatures,
            key_algo: credential.key_algo,
            purpose: credential.purpose,
            hash_alg: cmd.hash_alg,
            hashes: cmd.hashes.as_deref(),
            deadline,
            generation: recorded.generation,
            serial_number: &credential.serial_number,
            ttl_secs: ttl,
        },
    )
    .await?;
    Ok(Authorized {
        sad,
        expires_in: ttl,
    })
}

/// `credentials/extendTransaction`: a fresh SAD with what the old one has left, living at
/// most until the absolute deadline set at authorize; with `rebind` (SCAL2), bound to exactly
/// those hashes from now on (a document signed hash by hash under one authorisation: each
/// signature's hash is known only once the previous one is made). Never more signatures than
/// authorised: the count carries over, and the durable record still spends it. Audited,
/// refused ones too.
pub async fn extend_transaction(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
    old_sad: &str,
    rebind: Option<Rebind<'_>>,
    origin: &Origin,
) -> Result<Authorized, ActivationError> {
    let ttl = services.config.csc.sad_ttl_secs;
    let asked = rebind.as_ref().map_or(0, |r| r.hashes.len());
    let extended = sad::extend(
        &services.kv,
        &services.sad_seal,
        user_id,
        credential_id,
        old_sad,
        ttl,
        rebind,
    )
    .await?;
    let mut detail = origin.audit_fields();
    if let Ok(Some(e)) = &extended {
        detail.insert("sad".into(), e.sad_id.to_string().into());
        detail.insert("expires_in".into(), e.expires_in.into());
    }
    if asked > 0 {
        detail.insert("hashes".into(), asked.into());
    }
    let ok = matches!(extended, Ok(Some(_)));
    services
        .audit
        .record(
            user_id,
            "credential.extendTransaction",
            Some(credential_id),
            if ok { "ok" } else { "refused" },
            Value::Object(detail),
        )
        .await?;
    let extended = extended?.ok_or(ActivationError::SadUnknown)?;
    Ok(Authorized {
        sad: extended.sad,
        expires_in: extended.expires_in,
    })
}
