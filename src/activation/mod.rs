//! Signature activation: the subscriber's PIN and PUK, checked through HMACs computed inside
//! the HSM; the activation of a new credential with the PUK from the sealed envelope; and the
//! Signature Activation Data (SAD) that PIN + OTP buy, consumed by signHash.
//!
//! Invariants: no PIN or PUK is ever stored, logged or sent anywhere in clear; a wrong PUK is
//! counted atomically and the 10th blocks the credential for good; only an `inactive`
//! credential can be activated, and only by its owner with the right PUK and a valid OTP;
//! 3 wrong PINs PIN-block a credential; a SAD never signs more than it authorised.

mod activate;
mod authorize;
pub mod emergency;
mod pin;
mod pin_change;
pub mod sad;
mod send_otp;

pub use activate::{activate, ActivateCommand};
pub use authorize::{authorize, extend_transaction, AuthorizeCommand, Authorized};
pub use pin::{check_factors, PinVault, SecretKind};
pub use pin_change::{change_pin, PinChange, PinChangeCommand};
pub use sad::Rebind;
pub use send_otp::{send_operation_otp, send_otp, OtpOperation};

use crate::audit::AuditError;
use crate::db::DbError;
use crate::hsm::HsmError;
use crate::kv::KvError;
use crate::model::CredentialStatus;
use crate::otp::OtpError;

/// Wrong PINs before a credential is PIN-blocked.
pub const PIN_MAX_FAILURES: i32 = 3;
/// Wrong PUKs before a credential is blocked for good.
pub const PUK_MAX_FAILURES: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// Unknown, or somebody else's: the two are never told apart.
    #[error("Invalid parameter credentialID")]
    CredentialNotFound,
    #[error("{field}: {reason}")]
    Malformed {
        field: &'static str,
        reason: &'static str,
    },
    #[error("the credential is {0}")]
    WrongState(CredentialStatus),
    #[error("wrong PUK; {remaining} attempts left")]
    WrongPuk { remaining: i32 },
    #[error("too many wrong PUKs: the credential is blocked for good")]
    PukBlocked,
    #[error("wrong PIN; {remaining} attempts left")]
    WrongPin { remaining: i32 },
    #[error("wrong PIN: the credential is now PIN-blocked; unblock it with the PUK")]
    PinBlocked,
    #[error("the certificate of the credential has expired")]
    CertificateExpired,
    #[error("Invalid parameter SAD: unknown or expired")]
    SadUnknown,
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// extendTransaction refused the hashes to bind to the new SAD.
    #[error(transparent)]
    Sad(#[from] sad::SadError),
}

impl ActivationError {
    /// A spent budget (HTTP 429 on the API and on the portal's pages alike).
    pub fn is_limited(&self) -> bool {
        matches!(self, ActivationError::Otp(e) if e.is_limited())
    }
}

/// A new PIN (activation, change, unblock) must be exactly 8 digits.
pub fn check_new_pin(new_pin: &str) -> Result<(), ActivationError> {
    if is_digits(new_pin, 8) {
        Ok(())
    } else {
        Err(ActivationError::Malformed {
            field: "new_pin",
            reason: "the PIN must be exactly 8 digits",
        })
    }
}

/// True if `value` is exactly `len` ASCII digits.
pub fn is_digits(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_digit())
}
