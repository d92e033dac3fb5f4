//! Subscriber authentication: the password policy and hashing, login, and access tokens.
//!
//! Invariants: passwords are stored only as Argon2id hashes; a login for an unknown user costs
//! the same as one with a wrong password; access tokens are HS256 JWTs checked without any
//! database round trip (revocation is one Redis lookup, folded into the SAD script on signHash).

mod change_password;
mod login;
mod password;
pub mod session;
mod token;

pub use change_password::change_password;
pub use login::{login, LoginMethod, LoginResult};
pub use password::{
    check_policy, hash_password, hash_password_async, verify_password, verify_password_async,
    PolicyViolation,
};
pub use token::{AccessToken, Claims, Tokens};

use crate::db::DbError;
use crate::kv::KvError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password: the two are never told apart.
    #[error("invalid user or password")]
    InvalidCredentials,
    #[error("the access token is missing, malformed, expired or forged")]
    InvalidToken,
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    #[error("too many wrong passwords; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the new password must differ from the current one")]
    SamePassword,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}
