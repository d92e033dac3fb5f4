//! Domain records shared by every layer: subscribers and their credentials.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::hsm::KeyAlgo;

/// Declares a string-backed enum with its wire/database spelling, once.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }
    };
}

string_enum!(
    /// How a subscriber receives one-time passwords.
    OtpMethod { Sms => "sms", Totp => "totp" }
);

string_enum!(
    /// What a credential's certificate is for: only `Signing` may sign documents.
    Purpose { Signing => "signing", Authentication => "authentication" }
);

string_enum!(
    /// The lifecycle state of a credential. Only `Active` can ever sign.
    CredentialStatus {
        Inactive => "inactive",
        Active => "active",
        PinBlocked => "pin_blocked",
        Blocked => "blocked",
        Suspended => "suspended",
        Revoked => "revoked",
    }
);

/// A subscriber as stored.
#[derive(Debug, Clone)]
pub struct User {
    pub user_id: String,
    pub password_hash: String,
    pub given_name: String,
    pub surname: String,
    pub fiscal_code: String,
    pub email: String,
    pub phone: String,
    pub otp_method: OtpMethod,
    /// The TOTP secret, sealed; `None` for SMS users.
    pub totp_secret: Option<Vec<u8>>,
}

/// A credential as stored.
#[derive(Debug, Clone)]
pub struct Credential {
    pub credential_id: Uuid,
    pub user_id: String,
    pub key_algo: KeyAlgo,
    pub purpose: Purpose,
    pub status: CredentialStatus,
    pub pin_hmac: Option<Vec<u8>>,
    pub puk_hmac: Vec<u8>,
    pub pin_failures: i32,
    pub puk_failures: i32,
    pub serial_number: String,
    pub subject_dn: String,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    /// DER certificates, leaf first.
    pub cert_chain: Vec<Vec<u8>>,
    /// When the certificate was renewed (once at most).
    pub renewed_at: Option<OffsetDateTime>,
}
