//! The sealed envelope ("busta cifrata"): a one-page letter holding a credential's PUK, the
//! subscriber's emergency code and the certificate's serial number, as a PDF 2.0 encrypted
//! with the subscriber's envelope passphrase (standard security handler, AES-256, revision 6).
//!
//! INTERFACE SKELETON (s4-base): the types and signatures below are what the rest of the code
//! calls; the real writer and security handler replace the bodies. The placeholder writes the
//! letter unencrypted so that callers can be built and tested meanwhile.

use serde::{Deserialize, Serialize};
use time::Date;
use zeroize::Zeroizing;

use crate::mail::Locale;

/// Why an envelope could not be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the passphrase does not open this envelope")]
    WrongPassphrase,
    #[error("not a sigillo envelope: {0}")]
    Malformed(&'static str),
    #[error("cryptography failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// The parts of the PDF encryption dictionary that depend on the passphrase (U, UE, O, OE,
/// Perms): stored with the subscriber, public in every envelope they receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockPublic {
    pub u: Vec<u8>,
    pub ue: Vec<u8>,
    pub o: Vec<u8>,
    pub oe: Vec<u8>,
    pub perms: Vec<u8>,
}

/// What seals a subscriber's envelopes: the 32-byte file encryption key and the dictionary
/// entries that let the passphrase (and only it) recover that key. Made once from the
/// passphrase, at setup; afterwards the key is kept sealed in the HSM and the passphrase is
/// never stored, not even encrypted.
pub struct Lock {
    file_key: Zeroizing<Vec<u8>>,
    public: LockPublic,
}

impl Lock {
    /// A new lock for `passphrase`: a random file key, wrapped for the passphrase as the
    /// AES-256 security handler of PDF 2.0 does it.
    pub fn from_passphrase(passphrase: &str) -> Result<Lock, EnvelopeError> {
        let _ = passphrase;
        Ok(Lock {
            file_key: Zeroizing::new(vec![0u8; 32]),
            public: LockPublic {
                u: vec![0; 48],
                ue: vec![0; 32],
                o: vec![0; 48],
                oe: vec![0; 32],
                perms: vec![0; 16],
            },
        })
    }

    /// The lock again from its two stored halves (the key unsealed from the HSM).
    pub fn from_parts(
        file_key: Zeroizing<Vec<u8>>,
        public: LockPublic,
    ) -> Result<Lock, EnvelopeError> {
        if file_key.len() != 32 {
            return Err(EnvelopeError::Malformed("file key length"));
        }
        Ok(Lock { file_key, public })
    }

    /// The file encryption key (to seal in the HSM).
    pub fn file_key(&self) -> &[u8] {
        &self.file_key
    }

    /// The passphrase-dependent dictionary entries (to store as they are).
    pub fn public(&self) -> &LockPublic {
        &self.public
    }
}

/// What the letter says.
#[derive(Debug, Clone)]
pub struct Letter {
    pub locale: Locale,
    pub given_name: String,
    pub surname: String,
    pub user_id: String,
    pub credential_id: String,
    pub serial_number: String,
    pub puk: String,
    pub emergency_code: String,
    pub issued_on: Date,
}

/// What a reader gets back out of an envelope (tests, the bench).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub puk: String,
    pub emergency_code: String,
    pub serial_number: String,
}

/// The envelope PDF of `letter`, encrypted with `lock`.
pub fn seal(lock: &Lock, letter: &Letter) -> Result<Vec<u8>, EnvelopeError> {
    let _ = lock;
    Ok(format!(
        "%PDF-2.0\nPUK {}\nEMERGENCY {}\nSERIAL {}\n%%EOF\n",
        letter.puk, letter.emergency_code, letter.serial_number
    )
    .into_bytes())
}

/// Opens an envelope made by [`seal`] with the subscriber's passphrase.
pub fn open(pdf: &[u8], passphrase: &str) -> Result<Opened, EnvelopeError> {
    let _ = passphrase;
    let text = String::from_utf8_lossy(pdf);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .ok_or(EnvelopeError::Malformed("field missing"))
    };
    Ok(Opened {
        puk: field("PUK ")?,
        emergency_code: field("EMERGENCY ")?,
        serial_number: field("SERIAL ")?,
    })
}
