//! The sealed envelope ("busta cifrata"): a one-page letter holding a credential's PUK, the
//! subscriber's emergency code and the certificate's serial number, as a PDF 2.0 encrypted
//! with the subscriber's envelope passphrase (standard security handler, AES-256, revision 6).
//!
//! Invariants: the passphrase is never stored; what a [`Lock`] keeps is the random file key
//! (sealed in the HSM by the caller) and the public dictionary entries. Every string and
//! stream of an envelope is encrypted with its own random IV; the owner password is random and
//! discarded, so the restrictions (no modifying, no copying) cannot be lifted with it. The
//! passphrase is used as its UTF-8 bytes cut to 127 bytes, as ISO 32000-2 says
//! ([`crypt::PASSWORD_MAX_BYTES`]; callers accept at most 128 characters anyway), so two
//! passphrases that differ only after byte 127 open the same envelopes.
//!
//! Files: `crypt.rs` the security handler (algorithms 2.A, 2.B, 8-13 of ISO 32000-2),
//! `letter.rs` the words and the layout, `pdf.rs` the writer, `read.rs` the reader of our own
//! envelopes ([`open`]).

pub mod crypt;
mod letter;
mod pdf;
mod read;

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
        let (file_key, public) = crypt::make_lock(passphrase)?;
        Ok(Lock { file_key, public })
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
    pdf::write(lock, letter)
}

/// Opens an envelope made by [`seal`] with the subscriber's passphrase: a passphrase that
/// does not match U is [`EnvelopeError::WrongPassphrase`].
pub fn open(pdf: &[u8], passphrase: &str) -> Result<Opened, EnvelopeError> {
    read::open(pdf, passphrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(locale: Locale) -> Letter {
        Letter {
            locale,
            given_name: "Niccolò".into(),
            surname: "Caccioppoli-D'Aragona".into(),
            user_id: "niccolo.daragona".into(),
            credential_id: "6f1c2a9e-1b7d-4c55-9d0e-2f6b8a7c1d33".into(),
            serial_number: "4F2A9C01D7E3B5681A2C".into(),
            puk: "73920418".into(),
            emergency_code: "K7QF-2M9X-RT4H-8WZC".into(),
            issued_on: time::macros::date!(2026 - 12 - 02),
        }
    }

    #[test]
    fn an_envelope_opens_with_its_passphrase_and_gives_the_three_values() {
        for locale in [Locale::It, Locale::En] {
            let lock = Lock::from_passphrase("una frase lunga e segreta").unwrap();
            let pdf = seal(&lock, &letter(locale)).unwrap();
            assert!(pdf.starts_with(b"%PDF-2.0\n"));
            let opened = open(&pdf, "una frase lunga e segreta").unwrap();
            assert_eq!(
                opened,
                Opened {
                    puk: "73920418".into(),
                    emergency_code: "K7QF-2M9X-RT4H-8WZC".into(),
                    serial_number: "4F2A9C01D7E3B5681A2C".into(),
                }
            );
        }
    }

    #[test]
    fn nothing_secret_is_in_the_clear() {
        let lock = Lock::from_passphrase("una frase lunga e segreta").unwrap();
        let pdf = seal(&lock, &letter(Locale::It)).unwrap();
        for secret in ["73920418", "K7QF-2M9X", "4F2A9C01", "Busta", "niccolo"] {
            assert!(
                !pdf.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in the clear"
            );
        }
    }

    #[test]
    fn a_wrong_passphrase_is_refused() {
        let lock = Lock::from_passphrase("una frase lunga e segreta").unwrap();
        let pdf = seal(&lock, &letter(Locale::It)).unwrap();
        for wrong in ["una frase lunga e segreto", "", "Una frase lunga e segreta"] {
            assert!(
                matches!(open(&pdf, wrong), Err(EnvelopeError::WrongPassphrase)),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn two_locks_of_one_passphrase_share_nothing() {
        let a = Lock::from_passphrase("una frase lunga e segreta").unwrap();
        let b = Lock::from_passphrase("una frase lunga e segreta").unwrap();
        assert_ne!(a.file_key(), b.file_key());
        assert_eq!(a.file_key().len(), 32);
        let (pa, pb) = (a.public(), b.public());
        assert_ne!(pa.u, pb.u);
        assert_ne!(pa.u.get(32..48), pb.u.get(32..48), "salts");
        assert_ne!(pa.ue, pb.ue);
        assert_ne!(pa.o, pb.o);
        assert_ne!(pa.oe, pb.oe);
        assert_ne!(pa.perms, pb.perms);
        assert_eq!(
            (
                pa.u.len(),
                pa.ue.len(),
                pa.o.len(),
                pa.oe.len(),
                pa.perms.len()
            ),
            (48, 32, 48, 32, 16)
        );
        // Each lock opens its own envelopes only by the passphrase, never by the other's key.
        let pdf = seal(&a, &letter(Locale::En)).unwrap();
        let swapped = Lock::from_parts(Zeroizing::new(b.file_key().to_vec()), pa.clone()).unwrap();
        let forged = seal(&swapped, &letter(Locale::En)).unwrap();
        assert!(open(&pdf, "una frase lunga e segreta").is_ok());
        assert!(matches!(
            open(&forged, "una frase lunga e segreta"),
            Err(EnvelopeError::Crypto(_) | EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn a_lock_rebuilt_from_its_parts_seals_the_same_way() {
        let lock = Lock::from_passphrase("una frase lunga e segreta").unwrap();
        let again = Lock::from_parts(
            Zeroizing::new(lock.file_key().to_vec()),
            lock.public().clone(),
        )
        .unwrap();
        let pdf = seal(&again, &letter(Locale::It)).unwrap();
        assert_eq!(
            open(&pdf, "una frase lunga e segreta").unwrap().puk,
            "73920418"
        );
        assert!(Lock::from_parts(Zeroizing::new(vec![0; 16]), lock.public().clone()).is_err());
    }

    #[test]
    fn only_the_first_127_bytes_of_a_passphrase_count() {
        let long = "x".repeat(127);
        let lock = Lock::from_passphrase(&format!("{long}abc")).unwrap();
        let pdf = seal(&lock, &letter(Locale::It)).unwrap();
        assert!(open(&pdf, &format!("{long}abc")).is_ok());
        assert!(
            open(&pdf, &format!("{long}zzzzz")).is_ok(),
            "byte 128 on is ignored"
        );
        assert!(open(&pdf, &long).is_ok());
        assert!(matches!(
            open(&pdf, &"x".repeat(126)),
            Err(EnvelopeError::WrongPassphrase)
        ));
        // Multi-byte characters are cut on the byte, as the standard says.
        let accented = "è".repeat(64); // 128 bytes
        let lock = Lock::from_passphrase(&accented).unwrap();
        let pdf = seal(&lock, &letter(Locale::It)).unwrap();
        assert!(
            open(&pdf, &format!("{}é", "è".repeat(63))).is_ok(),
            "same first 127 bytes"
        );
        assert!(matches!(
            open(&pdf, &"è".repeat(63)),
            Err(EnvelopeError::WrongPassphrase)
        ));
    }

    #[test]
    fn accented_passphrases_and_names_survive() {
        let lock = Lock::from_passphrase("perché è già così più").unwrap();
        let mut it = letter(Locale::It);
        it.serial_number = "àèéìòù".into(); // only to carry accents through the tagged field
        let pdf = seal(&lock, &it).unwrap();
        assert!(matches!(
            open(&pdf, "perche e gia cosi piu"),
            Err(EnvelopeError::WrongPassphrase)
        ));
        let opened = open(&pdf, "perché è già così più").unwrap();
        assert_eq!(opened.serial_number, "àèéìòù");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let lock = Lock::from_passphrase("una frase lunga e segreta").unwrap();
        let pdf = seal(&lock, &letter(Locale::It)).unwrap();
        for cut in [0, 8, pdf.len() / 2, pdf.len() - 40] {
            let mut bad = pdf.clone();
            bad.truncate(cut);
            assert!(open(&bad, "una frase lunga e segreta").is_err());
        }
        let mut flipped = pdf.clone();
        let at = flipped.len() / 2;
        if let Some(b) = flipped.get_mut(at) {
            *b ^= 0x55;
        }
        let _ = open(&flipped, "una frase lunga e segreta");
        assert!(matches!(
            open(b"%PDF-2.0\n%%EOF\n", "x"),
            Err(EnvelopeError::Malformed(_))
        ));
        // An xref table naming a huge object number is refused, not allocated for.
        let huge = b"%PDF-2.0\nxref\n99999999999 1\n0000000000 65535 f \ntrailer\n<< >>\nstartxref\n9\n%%EOF\n";
        assert!(matches!(open(huge, "x"), Err(EnvelopeError::Malformed(_))));
    }
}
