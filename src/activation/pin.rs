//! PIN and PUK digests: HMAC-SHA256 inside the HSM with a non-extractable key, so that a copy
//! of the database cannot be brute-forced offline (an 8-digit PIN is only 10^8 guesses).

use uuid::Uuid;

use super::{is_digits, ActivationError, PIN_MAX_FAILURES, PUK_MAX_FAILURES};
use crate::db::repo;
use crate::hsm::{Hsm, HsmError};
use crate::model::{Credential, CredentialStatus};
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
    hsm: Hsm,
    key_id: Vec<u8>,
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
/// app no PIN/PUK guess is even tried), then the PIN or PUK. A wrong PIN or PUK is counted
/// atomically and may block the credential: 3 wrong PINs PIN-block it, 10 wrong PUKs block it
/// for good.
pub async fn check_factors(
    services: &Services,
    credential: &Credential,
    otp: &str,
    kind: SecretKind,
    value: &str,
) -> Result<(), ActivationError> {
    let user = repo::users::find(&services.db, &credential.user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    services.otp.verify(&user, otp).await?;
    let (stored, secret, limit) = match kind {
        SecretKind::Pin => (
            credential.pin_hmac.as_deref().unwrap_or_default(),
            repo::credentials::Secret::Pin,
            PIN_MAX_FAILURES,
        ),
        SecretKind::Puk => (
            credential.puk_hmac.as_slice(),
            repo::credentials::Secret::Puk,
            PUK_MAX_FAILURES,
        ),
    };
    let ok = is_digits(value, 8)
        && services
            .pins
            .matches(kind, credential.credential_id, value, stored)
            .await?;
    if ok {
        return Ok(());
    }
    let (failures, status) =
        repo::credentials::record_failure(&services.db, credential.credential_id, secret, limit)
            .await?;
    let remaining = limit - failures;
    Err(match (kind, status) {
        (SecretKind::Pin, CredentialStatus::PinBlocked) => ActivationError::PinBlocked,
        (SecretKind::Pin, _) => ActivationError::WrongPin { remaining },
        (SecretKind::Puk, CredentialStatus::Blocked) => ActivationError::PukBlocked,
        (SecretKind::Puk, _) => ActivationError::WrongPuk { remaining },
    })
}
