//! Enrolment: the operator enters subscribers (identity, contact data, OTP method) and
//! creates their credentials (a key pair generated in the HSM, a certificate from the
//! gateway's CA); the subscriber completes the setup through an e-mailed single-use link
//! (password and envelope passphrase), and each credential's PUK travels in a sealed envelope
//! (an encrypted PDF e-mailed to the subscriber) made when both exist.
//!
//! Invariants: every input is validated before any key is generated; a failure after key
//! generation destroys the key again, so nothing is half-enrolled; the operator's API never
//! returns, logs or audits a password, passphrase, PUK, emergency code or TOTP secret.

mod create_credential;
mod create_user;
pub mod envelope;
mod reseal_totp;
pub mod setup;
mod setup_link;

pub use create_credential::{
    create_credential, create_credential_by, CreatedCredential, NewCredential,
};
pub use create_user::{create_user, create_user_by, valid_user_id, CreatedUser, NewUser};
pub use envelope::{replace_envelope, EnvelopeState};
pub use reseal_totp::reseal_totp_seeds;
pub use setup::{check_passphrase, complete_setup, setup_link_is_valid};
pub use setup_link::resend_setup_link;

use crate::audit::AuditError;
use crate::auth::{AuthError, PolicyViolation};
use crate::ca::CaError;
use crate::db::DbError;
use crate::hsm::HsmError;
use crate::otp::OtpError;

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("{field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    #[error("a user with this user_id already exists")]
    UserExists,
    #[error("no such user")]
    UserNotFound,
    #[error("no such credential")]
    CredentialNotFound,
    #[error("the credential is not inactive: its envelope can no longer be replaced")]
    NotInactive,
    /// Unknown, expired or already used: the three are never told apart.
    #[error("the setup link is invalid, expired or already used")]
    InvalidSetupLink,
    #[error("the subscriber has already completed the setup")]
    SetupDone,
    #[error("passphrase: {0}")]
    Passphrase(&'static str),
    #[error("the task was interrupted")]
    Interrupted,
    #[error(transparent)]
    Envelope(#[from] crate::envelope::EnvelopeError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}
