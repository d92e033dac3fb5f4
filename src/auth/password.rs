//! The password policy of the service and Argon2id hashing. Hashing is CPU-heavy: callers run
//! it on the blocking pool.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Every rule of the policy, in the order they are checked and shown.
pub const POLICY_RULES: [PolicyViolation; 7] = [
    PolicyViolation::TooShort,
    PolicyViolation::TooLong,
    PolicyViolation::NoUpper,
    PolicyViolation::NoLower,
    PolicyViolation::NoDigit,
    PolicyViolation::NoSpecial,
    PolicyViolation::Repeated,
];

impl PolicyViolation {
    /// The rule's stable id (`POST /api/v1/password-policy`, the pages' strings).
    pub fn id(self) -> &'static str {
        match self {
            PolicyViolation::TooShort => "min_length",
            PolicyViolation::TooLong => "max_length",
            PolicyViolation::NoUpper => "upper",
            PolicyViolation::NoLower => "lower",
            PolicyViolation::NoDigit => "digit",
            PolicyViolation::NoSpecial => "special",
            PolicyViolation::Repeated => "no_triple",
        }
    }

    /// True if `password` breaks this rule: the one implementation of each rule.
    pub fn broken_by(self, password: &str) -> bool {
        match self {
            PolicyViolation::TooShort => password.chars().count() < 8,
            PolicyViolation::TooLong => password.chars().count() > 128,
            PolicyViolation::NoUpper => !password.chars().any(char::is_uppercase),
            PolicyViolation::NoLower => !password.chars().any(char::is_lowercase),
            PolicyViolation::NoDigit => !password.chars().any(|c| c.is_ascii_digit()),
            PolicyViolation::NoSpecial => !password
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
            PolicyViolation::Repeated => {
                let chars: Vec<char> = password.chars().collect();
                chars
                    .windows(3)
                    .any(|w| w.iter().all(|c| Some(c) == w.first()))
            }
        }
    }
}

/// Each rule of the policy and whether `password` keeps it (for a live display).
pub fn policy_report(password: &str) -> Vec<(PolicyViolation, bool)> {
    POLICY_RULES
        .iter()
        .map(|rule| (*rule, !rule.broken_by(password)))
        .collect()
}

/// Checks `password` against the policy; the first rule broken is reported.
pub fn check_policy(password: &str) -> Result<(), PolicyViolation> {
    match POLICY_RULES.iter().find(|rule| rule.broken_by(password)) {
        Some(rule) => Err(*rule),
        None => Ok(()),
    }
}

/// The Argon2 slots: at most one computation per core at a time, since each takes ~19 MiB, so
/// unbounded concurrent logins would be a memory (and CPU) amplifier.
fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(threads_or_cores(0)))
}

/// Password checks waiting for a slot now (process-wide, as the slots are).
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// One place in the queue; leaving it (served, refused or cancelled) frees it.
struct Waiting;

impl Waiting {
    /// A place, unless `max_waiting` are already waiting.
    fn join(max_waiting: usize) -> Option<Waiting> {
        WAITING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_waiting).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs an Argon2 computation on the blocking pool, in one of the slots. With `max_waiting`,
/// a caller that would queue behind that many others is refused at once (`Busy`): an
/// unauthenticated burst cannot pile up without bound in front of the CPU.
async fn argon2_task<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    max_waiting: Option<usize>,
) -> Result<T, AuthError> {
    let _permit = match permits().try_acquire() {
        Ok(permit) => permit,
        Err(_) => {
            let place = match max_waiting {
                Some(max) => Some(Waiting::join(max).ok_or(AuthError::Busy {
                    retry_after_secs: 1,
                })?),
                None => None,
            };
            let permit = permits()
                .acquire()
                .await
                .map_err(|e| AuthError::Hashing(e.to_string()))?;
            drop(place);
            permit
        }
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// `hash_password` off the async executor, bounded.
pub async fn hash_password_async(password: String) -> Result<String, AuthError> {
    argon2_task(move || hash_password(&password), None).await?
}

/// `verify_password` off the async executor, bounded.
pub async fn verify_password_async(password: String, phc: String) -> Result<bool, AuthError> {
    argon2_task(move || verify_password(&password, &phc), None).await
}

/// `verify_password` off the async executor, refused (`Busy`) rather than queued behind
/// `max_waiting` other checks.
pub async fn verify_password_bounded(
    password: String,
    phc: String,
    max_waiting: usize,
) -> Result<bool, AuthError> {
    argon2_task(move || verify_password(&password, &phc), Some(max_waiting)).await
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
    fn the_report_lists_every_rule_once_and_agrees_with_the_check() {
        let report = policy_report("abc");
        assert_eq!(report.len(), POLICY_RULES.len());
        let ids: std::collections::HashSet<_> = report.iter().map(|(r, _)| r.id()).collect();
        assert_eq!(ids.len(), POLICY_RULES.len());
        for password in ["abc", "Abbbcd1!", "Sigillo-2026!", "ABCDEF1!"] {
            let first_broken = policy_report(password)
                .into_iter()
                .find(|(_, ok)| !ok)
                .map(|(r, _)| r);
            assert_eq!(check_policy(password).err(), first_broken, "{password}");
        }
        assert!(policy_report("Sigillo-2026!").iter().all(|(_, ok)| *ok));
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
