//! The password policy of the service and Argon2id hashing. Hashing is CPU-heavy: callers run
//! it on the blocking pool.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;
use tokio::sync::Semaphore;

use crate::config::threads_or_cores;

use super::AuthError;

/// The rule a password breaks; the message is shown to the user as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("password must be at least 8 characters long")]
    TooShort,
    #[error("password must be at most 128 characters long")]
    TooLong,
    #[error("password must contain an upper-case letter")]
    NoUpper,
    #[error("password must contain a lower-case letter")]
    NoLower,
    #[error("password must contain a digit")]
    NoDigit,
    #[error("password must contain a special character")]
    NoSpecial,
    #[error("password must not repeat a character more than twice in a row")]
    Repeated,
}

/// Checks `password` against the policy; the first rule broken is reported.
pub fn check_policy(password: &str) -> Result<(), PolicyViolation> {
    let len = password.chars().count();
    if len < 8 {
        return Err(PolicyViolation::TooShort);
    }
    if len > 128 {
        return Err(PolicyViolation::TooLong);
    }
    if !password.chars().any(char::is_uppercase) {
        return Err(PolicyViolation::NoUpper);
    }
    if !password.chars().any(char::is_lowercase) {
        return Err(PolicyViolation::NoLower);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(PolicyViolation::NoDigit);
    }
    if !password
        .chars()
        .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
    {
        return Err(PolicyViolation::NoSpecial);
    }
    let chars: Vec<char> = password.chars().collect();
    if chars
        .windows(3)
        .any(|w| w.iter().all(|c| Some(c) == w.first()))
    {
        return Err(PolicyViolation::Repeated);
    }
    Ok(())
}

/// Runs an Argon2 computation on the blocking pool, at most one per core at a time: each
/// takes ~19 MiB, so unbounded concurrent logins would be a memory (and CPU) amplifier.
async fn argon2_task<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    let permits = PERMITS.get_or_init(|| Semaphore::new(threads_or_cores(0)));
    let _permit = permits
        .acquire()
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// `hash_password` off the async executor, bounded.
pub async fn hash_password_async(password: String) -> Result<String, AuthError> {
    argon2_task(move || hash_password(&password)).await?
}

/// `verify_password` off the async executor, bounded.
pub async fn verify_password_async(password: String, phc: String) -> Result<bool, AuthError> {
    argon2_task(move || verify_password(&password, &phc)).await
}

/// Argon2id PHC string of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// True if `password` matches `phc`. A malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rules_one_by_one() {
        assert_eq!(check_policy("Ab1!"), Err(PolicyViolation::TooShort));
        assert_eq!(
            check_policy(&"Ab1!".repeat(40)),
            Err(PolicyViolation::TooLong)
        );
        assert_eq!(check_policy("abcdef1!"), Err(PolicyViolation::NoUpper));
        assert_eq!(check_policy("ABCDEF1!"), Err(PolicyViolation::NoLower));
        assert_eq!(check_policy("Abcdefg!"), Err(PolicyViolation::NoDigit));
        assert_eq!(check_policy("Abcdefg1"), Err(PolicyViolation::NoSpecial));
        assert_eq!(check_policy("Abbbcd1!"), Err(PolicyViolation::Repeated));
        assert_eq!(check_policy("Abbcdd1!"), Ok(()));
        assert_eq!(check_policy("Sìgillo-2026"), Ok(()));
    }

    #[test]
    fn hashes_verify_and_do_not_contain_the_password() {
        let phc = hash_password("Correct-Horse-9").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("Correct-Horse-9"));
        assert!(verify_password("Correct-Horse-9", &phc));
        assert!(!verify_password("Correct-Horse-8", &phc));
        assert!(!verify_password("Correct-Horse-9", "not a hash"));
    }
}
