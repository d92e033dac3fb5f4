//! Enrolment by the operator: subscribers (identity, password, OTP method) and their
//! credentials (a key pair generated in the HSM, a certificate from the gateway's CA, and a
//! PUK shown exactly once — the sealed envelope).
//!
//! Invariants: every input is validated before any key is generated; a failure after key
//! generation destroys the key again, so nothing is half-enrolled.

mod create_credential;
mod create_user;
mod reseal_totp;

pub use create_credential::{
    create_credential, create_credential_by, CreatedCredential, NewCredential,
};
pub use create_user::{create_user, create_user_by, valid_user_id, CreatedUser, NewUser};
pub use reseal_totp::reseal_totp_seeds;

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
