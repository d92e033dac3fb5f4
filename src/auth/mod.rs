//! Subscriber authentication: the password policy and hashing, login, and access tokens.
//!
//! Invariants: passwords are stored only as Argon2id hashes; a login for an unknown user costs
//! the same as one with a wrong password; every wrong password is counted before it is checked
//! (`budget`); access tokens are HS256 JWTs checked without any database round trip
//! (revocation and the session epoch are one Redis lookup, folded into the SAD script on
//! signHash). Logins, refreshes, logouts and refresh replays are audited with the client.

pub mod budget;
mod change_password;
mod login;
mod logout;
mod password;
pub mod recovery;
pub mod session;
mod token;

pub use change_password::{change_password, password_change_required};
pub use login::{login, LoginMethod, LoginResult};
pub use logout::logout;
pub use password::{
    check_policy, hash_password, hash_password_async, policy_report, verify_password,
    verify_password_async, verify_password_bounded, PolicyViolation, POLICY_RULES,
};
pub use token::{AccessToken, Claims, Grant, Tokens};

use crate::db::DbError;
use crate::kv::KvError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password: the two are never told apart.
    #[error("invalid user or password")]
    InvalidCredentials,
    #[error("the access token is missing, malformed, expired or forged")]
    InvalidToken,
    #[error("the access token was revoked")]
    Revoked,
    #[error("the session ended (password or OTP device changed, or a refresh token was replayed): log in again")]
    SessionEnded,
    #[error("too many password checks are waiting; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
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

impl AuthError {
    /// A spent budget (HTTP 429 on the API and on the portal's pages alike).
    pub fn is_limited(&self) -> bool {
        matches!(
            self,
            AuthError::TooManyAttempts { .. } | AuthError::Busy { .. }
        )
    }
}
