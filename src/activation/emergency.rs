//! The subscriber's emergency code, and the emergency suspension it allows without signing in.
//!
//! The code is 12 characters of Crockford's base32 (`0-9 A-Z` without `I L O U`), shown in
//! three groups of four (`7KQ2-MX9D-4TRA`): 60 bits, against the 33 of ten digits, because it
//! is a bearer secret that needs no second factor, yet short enough to copy from a paper
//! letter; case, dashes and spaces do not matter when it is typed back. It is stored only as
//! an HMAC computed in the HSM with the PIN key, bound to the user id (a database copy cannot
//! be searched offline).
//!
//! Invariant: every check of a code is counted BEFORE the HMAC runs, in the password budget of
//! the user id and of the client address ([`crate::auth::budget`]), and a wrong code keeps its
//! attempt. An unknown user id (or one without a code) costs the same HMAC, against a decoy,
//! and is answered exactly like a wrong code.

use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::{ActivationError, PinVault, SecretKind};
use crate::auth::{budget, AuthError};
use crate::db::repo::credentials::OperatorChange;
use crate::db::{repo, DbError};
use crate::devices::{self, DeviceError};
use crate::hsm::HsmError;
use crate::lifecycle::{self, LifecycleError};
use crate::mail::{self, Message};
use crate::model::{CredentialStatus, Operator, Origin};
use crate::secrets::ct_eq;
use crate::services::Services;

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of a code (without the dashes).
pub const CODE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum EmergencyError {
    /// Unknown user id or wrong code: the two are never told apart.
    #[error("invalid user id or emergency code")]
    Refused,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// Resume: the credential is not one the subscriber suspended (the operator's suspension
    /// takes the operator to lift).
    #[error("the credential is not suspended by its subscriber: the operator can resume it")]
    NotSubscriberSuspended,
    #[error(transparent)]
    Activation(#[from] ActivationError),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl EmergencyError {
    /// A spent budget (HTTP 429 on the API and on the portal's pages alike).
    pub fn is_limited(&self) -> bool {
        match self {
            EmergencyError::Auth(e) => e.is_limited(),
            EmergencyError::Activation(e) => e.is_limited(),
            EmergencyError::Device(e) => e.is_limited(),
            _ => false,
        }
    }
}

/// A fresh code, grouped for display (`XXXX-XXXX-XXXX`).
pub fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let raw: Vec<u8> = (0..CODE_LEN)
        .map(|_| {
            ALPHABET
                .get(rng.gen_range(0..ALPHABET.len()))
                .copied()
                .unwrap_or(b'0')
        })
        .collect();
    raw.chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The code as typed, in its canonical form (upper case, no dashes or spaces; `O` read as
/// `0`, `I` and `L` as `1`, as Crockford's alphabet allows); `None` if it cannot be a code.
pub fn normalize(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

impl PinVault {
    /// The digest of the canonical `code` of `user_id`.
    pub async fn emergency_digest(&self, user_id: &str, code: &str) -> Result<Vec<u8>, HsmError> {
        let data = [
            b"sigillo-emergency\0".as_slice(),
            user_id.as_bytes(),
            b"\0",
            code.as_bytes(),
        ]
        .concat();
        self.hsm.hmac_sha256(self.key_id.clone(), data).await
    }
}

/// A new emergency code for `user_id` (grouped, to be shown once) and its digest.
pub async fn new_code_for(
    services: &Services,
    user_id: &str,
) -> Result<(String, Vec<u8>), HsmError> {
    let code = new_code();
    let canonical = normalize(&code).unwrap_or_default();
    let digest = services.pins.emergency_digest(user_id, &canonical).await?;
    Ok((code, digest))
}

/// Stores the digest of the emergency code of `user_id` (replacing any earlier one).
pub async fn store_digest(
    services: &Services,
    user_id: &str,
    digest: &[u8],
) -> Result<(), DbError> {
    let client = services.db.get().await.map_err(DbError::from)?;
    store_digest_in(&client, user_id, digest).await
}

/// [`store_digest`] in the caller's transaction (the envelope that carries the code commits
/// with it).
pub async fn store_digest_in(
    client: &impl deadpool_postgres::GenericClient,
    user_id: &str,
    digest: &[u8],
) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE users SET emergency_code_hmac = $2 WHERE user_id = $1",
            &[&user_id, &digest],
        )
        .await?;
    Ok(())
}

async fn stored_digest(services: &Services, user_id: &str) -> Result<Option<Vec<u8>>, DbError> {
    let client = services.db.get().await.map_err(DbError::from)?;
    let row = client
        .query_opt(
            "SELECT emergency_code_hmac FROM users WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<_, Option<Vec<u8>>>(0)?,
        None => None,
    })
}

/// True if `typed` is the emergency code of `user_id`. Costs one HMAC in the HSM whether or
/// not the user (or their code) exists.
async fn code_matches(
    services: &Services,
    user_id: &str,
    typed: &str,
) -> Result<bool, EmergencyError> {
    let stored = stored_digest(services, user_id).await?;
    let canonical = normalize(typed);
    // The decoy: a code of the right shape that no stored digest can equal.
    let (probe, stored) = match (&canonical, stored) {
        (Some(code), Some(stored)) => (code.clone(), Some(stored)),
        _ => ("0".repeat(CODE_LEN), None),
    };
    let digest = services.pins.emergency_digest(user_id, &probe).await?;
    Ok(stored.is_some_and(|s| ct_eq(&digest, &s)))
}

/// `POST /api/v1/emergency-suspension`: checks `code` within the password budget of `user_id`
/// and of the client address, then suspends every credential of the user that can be
/// suspended (the operator's suspend path: Redis hold, PKI status, a notice per credential)
/// and e-mails the subscriber that it was done. Returns how many credentials it suspended.
pub async fn emergency_suspend(
    services: &Services,
    user_id: &str,
    code: &str,
    origin: &Origin,
) -> Result<usize, EmergencyError> {
    let actor = Operator {
        name: if crate::enrolment::valid_user_id(user_id) {
            user_id.to_owned()
        } else {
            "unknown".to_owned()
        },
        origin: origin.clone(),
    };
    let reservation = match budget::reserve(services, Some(user_id), origin.addr).await {
        Ok(r) => r,
        Err(e) => {
            audit(services, &actor, user_id, "limited", json!({})).await?;
            return Err(e.into());
        }
    };
    let checked = code_matches(services, user_id, code).await;
    let settled = match &checked {
        Ok(ok) => Ok(*ok),
        Err(_) => Err(AuthError::InvalidCredentials),
    };
    reservation.settle(services, &settled).await?;
    if !checked? {
        audit(services, &actor, user_id, "wrong_code", json!({})).await?;
        return Err(EmergencyError::Refused);
    }
    let mut suspended = Vec::new();
    for credential in repo::credentials::list_for_user(&services.db, user_id).await? {
        if !matches!(
            credential.status,
            CredentialStatus::Inactive | CredentialStatus::Active | CredentialStatus::PinBlocked
        ) {
            continue;
        }
        match lifecycle::change_status(
            services,
            credential.credential_id,
            OperatorChange::SubscriberSuspend,
            "emergency suspension by the subscriber",
            None,
            &actor,
        )
        .await
        {
            Ok(_) => suspended.push((credential.credential_id, credential.serial_number)),
            // Suspended or revoked meanwhile: nothing left to stop.
            Err(LifecycleError::WrongState(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let ids: Vec<Uuid> = suspended.iter().map(|(id, _)| *id).collect();
    let serial_numbers: Vec<String> = suspended.into_iter().map(|(_, s)| s).collect();
    let count = ids.len();
    {
        let mut client = services.db.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        mail::enqueue(
            &tx,
            user_id,
            &Message::EmergencySuspension { serial_numbers },
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
    }
    services.mail.wake();
    audit(
        services,
        &actor,
        user_id,
        "ok",
        json!({ "suspended": ids.iter().map(Uuid::to_string).collect::<Vec<_>>() }),
    )
    .await?;
    Ok(count)
}

/// `POST /api/v1/credentials/{credential_id}/resume`: the subscriber, signed in, lifts their emergency
/// suspension without the lost device: `puk` is the PUK of `credential_id` (one the subscriber
/// suspended), `code` a code from the new OTP device staged by `POST /api/v1/otp/totp` or
/// `/otp/sms`. The PUK stands in for the old device: it is counted like every PUK (10 wrong
/// ones block that credential for good) and checked before the new device's code, so a typo
/// in the code costs no attempt. Then the new device replaces the old one (every session
/// ends) and every credential the subscriber suspended resumes. A credential the operator
/// suspended stays suspended. Returns how many credentials resumed.
pub async fn emergency_resume(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
    puk: &str,
    code: &str,
    origin: &Origin,
) -> Result<usize, EmergencyError> {
    let actor = Operator {
        name: user_id.to_owned(),
        origin: origin.clone(),
    };
    let result = resume(services, user_id, credential_id, puk, code, &actor).await;
    let (outcome, detail) = match &result {
        Ok(ids) => (
            "ok",
            json!({ "with": credential_id.to_string(),
                    "resumed": ids.iter().map(Uuid::to_string).collect::<Vec<_>>() }),
        ),
        Err(e) => (
            "refused",
            json!({ "with": credential_id.to_string(), "error": e.to_string() }),
        ),
    };
    services
        .audit
        .record(
            &actor.name,
            "user.emergency_resume",
            Some(credential_id),
            outcome,
            actor.audit_detail(detail),
        )
        .await?;
    Ok(result?.len())
}

async fn resume(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
    puk: &str,
    code: &str,
    actor: &Operator,
) -> Result<Vec<Uuid>, EmergencyError> {
    // The list first, then the credential: one that left the list (blocked by racing wrong
    // PUKs) is then read in its new state, never as the `suspended` it was before.
    let suspended = repo::credentials::suspended_by_subscriber(&services.db, user_id).await?;
    let credential = repo::credentials::find_owned(&services.db, credential_id, user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    if !suspended.contains(&credential_id) {
        return Err(match credential.status {
            CredentialStatus::Suspended => EmergencyError::NotSubscriberSuspended,
            // Its PUKs are spent (by a racing request, perhaps): the answer of a 10th wrong one.
            CredentialStatus::Blocked => ActivationError::PukBlocked.into(),
            other => ActivationError::WrongState(other).into(),
        });
    }
    super::pin::check_secret(services, &credential, SecretKind::Puk, puk).await?;
    let device = devices::prove_staged(services, user_id, code).await?;
    devices::install(services, user_id, device).await?;
    let mut resumed = Vec::new();
    for id in suspended {
        match lifecycle::change_status(
            services,
            id,
            OperatorChange::SubscriberResume,
            "resumed by the subscriber with the PUK and a new OTP device",
            None,
            actor,
        )
        .await
        {
            Ok(_) => resumed.push(id),
            // Resumed by a racing request or the operator, or revoked meanwhile.
            Err(LifecycleError::WrongState(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(resumed)
}

async fn audit(
    services: &Services,
    actor: &Operator,
    user_id: &str,
    outcome: &'static str,
    mut detail: serde_json::Value,
) -> Result<(), EmergencyError> {
    if let Some(map) = detail.as_object_mut() {
        map.insert("user_id".into(), user_id.into());
        map.insert("by".into(), "subscriber".into());
    }
    services
        .audit
        .record(
            &actor.name,
            "user.emergency_suspension",
            None,
            outcome,
            actor.audit_detail(detail),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_read_back_however_typed() {
        let code = new_code();
        assert_eq!(code.len(), CODE_LEN + 2);
        assert_eq!(code.matches('-').count(), 2);
        let canonical = normalize(&code).unwrap();
        assert_eq!(canonical.len(), CODE_LEN);
        assert_eq!(
            normalize(&code.to_lowercase().replace('-', " ")),
            Some(canonical)
        );
        assert_eq!(normalize("oiL0-0000-0000"), Some("011000000000".into()));
        assert_eq!(normalize("UUUU-0000-0000"), None);
        assert_eq!(normalize("0000-0000-000"), None);
        assert_ne!(new_code(), new_code());
    }
}
