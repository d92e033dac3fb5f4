//! PIN and PUK digests: HMAC-SHA256 inside the HSM with a non-extractable key, so that a copy
//! of the database cannot be brute-forced offline (an 8-digit PIN is only 10^8 guesses).

use uuid::Uuid;

use super::{is_digits, ActivationError, PIN_MAX_FAILURES, PUK_MAX_FAILURES};
use crate::db::repo;
use crate::db::repo::credentials::{Release, Secret};
use crate::hsm::{Hsm, HsmError};
use crate::model::{Credential, CredentialStatus};
use crate::otp::Purpose;
use crate::secrets::ct_eq;
use crate::services::Services;

const KEY_NAME: &str = "pin-hmac";

/// Which secret a digest is of (domain separation: a PIN digest never equals a PUK digest).
#[derive(Debug, Clone, Copy)]
pub enum SecretKind {
    Pin,
    Puk,
}

/// Computes and checks PIN/PUK digests.
pub struct PinVault {
    pub(super) hsm: Hsm,
    pub(super) key_id: Vec<u8>,
}

impl PinVault {
    /// Creates the HMAC key in the token on first start.
    pub async fn ensure(hsm: &Hsm) -> Result<PinVault, HsmError> {
        hsm.ensure_hmac_key(KEY_NAME).await?;
        Ok(PinVault {
            hsm: hsm.clone(),
            key_id: hsm.own_key_id(KEY_NAME),
        })
    }

    /// The digest of `value` for credential `credential_id`.
    pub async fn digest(
        &self,
        kind: SecretKind,
        credential_id: Uuid,
        value: &str,
    ) -> Result<Vec<u8>, HsmError> {
        let label: &[u8] = match kind {
            SecretKind::Pin => b"sigillo-pin\0",
            SecretKind::Puk => b"sigillo-puk\0",
        };
        let data = [label, credential_id.as_bytes(), b"\0", value.as_bytes()].concat();
        self.hsm.hmac_sha256(self.key_id.clone(), data).await
    }

    /// True if `value` matches the stored digest (constant-time comparison).
    pub async fn matches(
        &self,
        kind: SecretKind,
        credential_id: Uuid,
        value: &str,
        stored: &[u8],
    ) -> Result<bool, HsmError> {
        Ok(ct_eq(
            &self.digest(kind, credential_id, value).await?,
            stored,
        ))
    }
}

/// Checks a subscriber's two factors for `credential`: the OTP first (without the phone or
/// app no PIN/PUK guess is even tried; an SMS code must have been sent for `purpose`), then
/// the PIN or PUK.
///
/// The attempt is counted BEFORE the secret is compared, by one conditional UPDATE that holds
/// only while the credential is still in the state the caller read (`active` for a PIN,
/// `inactive` or `pin_blocked` for a PUK) and under the limit: however many requests with valid
/// OTPs race, at most 3 PINs (10 PUKs) are ever compared. The attempt that reaches the limit
/// blocks the credential at once (3 wrong PINs PIN-block it, 10 wrong PUKs block it for good);
/// a right secret gives its attempt back (a right PIN clears the count), and so does one the
/// HSM could not compare.
pub async fn check_factors(
    services: &Services,
    credential: &Credential,
    otp: &str,
    purpose: Purpose,
    kind: SecretKind,
    value: &str,
) -> Result<(), ActivationError> {
    let user = repo::users::find(&services.db, &credential.user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    services.otp.verify(&user, otp, purpose).await?;
    match (kind, credential.status) {
        (SecretKind::Pin, CredentialStatus::Active)
        | (SecretKind::Puk, CredentialStatus::Inactive | CredentialStatus::PinBlocked) => {}
        (_, other) => return Err(ActivationError::WrongState(other)),
    }
    check_secret(services, credential, kind, value).await
}

/// Checks the PIN or PUK of `credential` in the state it was read in, counted as
/// [`check_factors`] counts it (the caller has checked that the state allows the secret and
/// has put its own factor first).
pub(crate) async fn check_secret(
    services: &Services,
    credential: &Credential,
    kind: SecretKind,
    value: &str,
) -> Result<(), ActivationError> {
    let (stored, secret, limit) = match kind {
        SecretKind::Pin => (
            credential.pin_hmac.as_deref().unwrap_or_default(),
            Secret::Pin,
            PIN_MAX_FAILURES,
        ),
        SecretKind::Puk => (
            // No PUK before the envelope: nothing can match.
            credential.puk_hmac.as_deref().unwrap_or_default(),
            Secret::Puk,
            PUK_MAX_FAILURES,
        ),
    };
    let from = credential.status;
    let id = credential.credential_id;
    let Some(reservation) =
        repo::credentials::reserve_attempt(&services.db, id, secret, from, limit).await?
    else {
        return Err(refused(services, id, kind).await?);
    };
    let compared = if is_digits(value, 8) {
        services.pins.matches(kind, id, value, stored).await
    } else {
        Ok(false)
    };
    let release = |how| {
        repo::credentials::release_attempt(&services.db, id, secret, reservation, from, how, limit)
    };
    match compared {
        Ok(true) => {
            release(Release::Right).await?;
            return Ok(());
        }
        Ok(false) => {}
        Err(e) => {
            release(Release::Unchecked).await?;
            return Err(e.into());
        }
    }
    let remaining = limit - reservation.failures;
    Err(match (kind, reservation.blocked) {
        (SecretKind::Pin, true) => ActivationError::PinBlocked,
        (SecretKind::Pin, false) => ActivationError::WrongPin { remaining },
        (SecretKind::Puk, true) => ActivationError::PukBlocked,
        (SecretKind::Puk, false) => ActivationError::WrongPuk { remaining },
    })
}

/// The answer to an attempt whose reservation was refused — nothing was compared: the same
/// error a caller gives for the state the credential is in now.
async fn refused(
    services: &Services,
    id: Uuid,
    kind: SecretKind,
) -> Result<ActivationError, ActivationError> {
    let now = repo::credentials::find(&services.db, id)
        .await?
        .map_or(CredentialStatus::Revoked, |c| c.status);
    Ok(match (kind, now) {
        (_, CredentialStatus::Blocked) => ActivationError::PukBlocked,
        // Active, yet the reservation was refused: the limit was reached (a row counted by an
        // older gateway) or the state changed back meanwhile. Nothing was compared.
        (SecretKind::Pin, CredentialStatus::Active) => ActivationError::PinBlocked,
        (
            SecretKind::Puk,
            CredentialStatus::Inactive | CredentialStatus::PinBlocked | CredentialStatus::Suspended,
        ) => ActivationError::PukBlocked,
        (_, other) => ActivationError::WrongState(other),
    })
}
