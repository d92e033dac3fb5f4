//! The one place where PKCS#11 return values are interpreted.

use cryptoki::error::{Error as CkError, RvError};

/// What went wrong in the HSM, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// Every worker is busy and the queue is full: shed load (503 + Retry-After).
    #[error("HSM queue full")]
    QueueFull,
    /// The worker pool is gone (shutting down).
    #[error("HSM worker pool stopped")]
    Stopped,
    /// The session or login was lost; the worker reopens it and retries once.
    #[error("HSM session lost during {op}")]
    SessionLost { op: &'static str },
    /// A cached object handle no longer names the object; evicted and retried once.
    #[error("stale HSM object handle during {op}")]
    StaleHandle { op: &'static str },
    /// The token or device is not usable (removed, broken, out of memory).
    #[error("HSM token unavailable during {op}: {rv}")]
    Unavailable { op: &'static str, rv: String },
    /// No token carries the configured label.
    #[error("no PKCS#11 token labelled {0:?}")]
    TokenNotFound(String),
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("PKCS#11 module {module}: {reason}")]
    Module { module: String, reason: String },
    /// The token refused the configured PIN.
    #[error("the HSM refused the service PIN")]
    LoginFailed,
    /// No key object with this `CKA_ID`.
    #[error("no HSM key with id {0}")]
    KeyNotFound(String),
    /// More than one object with this `CKA_ID`: refuse rather than guess.
    #[error("{count} HSM objects share the id {id}")]
    AmbiguousKey { id: String, count: usize },
    /// The token returned a value the gateway cannot interpret.
    #[error("unexpected HSM output: {0}")]
    BadOutput(&'static str),
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 {op} failed: {rv}")]
    Pkcs11 { op: &'static str, rv: String },
}

impl HsmError {
    /// True when a caller may simply try again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HsmError::QueueFull | HsmError::Unavailable { .. } | HsmError::SessionLost { .. }
        )
    }
}

/// Maps a cryptoki error of operation `op` to an `HsmError`.
pub(super) fn classify(op: &'static str, err: CkError) -> HsmError {
    match err {
        CkError::Pkcs11(rv, _) => match rv {
            // CKR_OPERATION_ACTIVE: an operation a failed call left open in the session (a
            // C_Sign that failed without ending its C_SignInit) blocks every later one; a
            // fresh session is the way out, as for a lost one.
            RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::OperationActive => HsmError::SessionLost { op },
            RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => {
                HsmError::StaleHandle { op }
            }
            RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::HostMemory => HsmError::Unavailable {
                op,
                rv: format!("{rv:?}"),
            },
            RvError::PinIncorrect | RvError::PinLocked | RvError::PinExpired => {
                HsmError::LoginFailed
            }
            other => HsmError::Pkcs11 {
                op,
                rv: format!("{other:?}"),
            },
        },
        other => HsmError::Pkcs11 {
            op,
            rv: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    fn rv(rv: RvError) -> CkError {
        CkError::Pkcs11(rv, Function::Sign)
    }

    #[test]
    fn lost_sessions_and_logins_are_retryable() {
        assert!(matches!(
            classify("sign", rv(RvError::SessionHandleInvalid)),
            HsmError::SessionLost { .. }
        ));
        assert!(matches!(
            classify("sign", rv(RvError::UserNotLoggedIn)),
            HsmError::SessionLost { .. }
        ));
    }

    #[test]
    fn a_session_left_with_an_operation_open_is_reopened() {
        assert!(matches!(
            classify("sign", rv(RvError::OperationActive)),
            HsmError::SessionLost { .. }
        ));
    }

    #[test]
    fn stale_handles_are_evicted() {
        assert!(matches!(
            classify("sign", rv(RvError::KeyHandleInvalid)),
            HsmError::StaleHandle { .. }
        ));
    }

    #[test]
    fn device_errors_mean_unavailable() {
        let err = classify("sign", rv(RvError::DeviceRemoved));
        assert!(matches!(err, HsmError::Unavailable { .. }));
        assert!(err.is_transient());
    }

    #[test]
    fn other_errors_keep_their_return_value() {
        let err = classify("sign", rv(RvError::MechanismInvalid));
        assert!(matches!(err, HsmError::Pkcs11 { op: "sign", .. }));
        assert!(!err.is_transient());
    }
}
