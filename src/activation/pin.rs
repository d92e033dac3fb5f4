//! PIN and PUK digests: HMAC-SHA256 inside the HSM with a non-extractable key, so that a copy
//! of the database cannot be brute-forced offline (an 8-digit PIN is only 10^8 guesses).

use uuid::Uuid;

use crate::hsm::{Hsm, HsmError};
use crate::secrets::ct_eq;

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
