//! The HSM: every PKCS#11 call of the gateway goes through here.
//!
//! Invariants: PKCS#11 runs only on the pool's named OS threads, each owning one logged-in
//! session (never on an actix worker, never a session shared between threads); jobs queue on a
//! bounded channel and a full queue answers `QueueFull` at once; key objects are found by
//! `CKA_ID` once and their handles cached; private and secret keys are created sensitive and
//! non-extractable. Nothing outside this module sees a cryptoki type or error.

mod error;
mod keys;
mod locks;
pub mod mechanism;
mod pool;

pub use error::HsmError;
pub use keys::{with_object_store, KeyAlgo};
pub use locks::created as module_mutexes;
pub use mechanism::{HashAlg, KeyFamily, MechanismError, SignAlgo};
pub use pool::{context, Hsm};
