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
    /// Argon2id PHC string; `None` until the subscriber sets it through the setup link.
    pub password_hash: Option<String>,
    /// True once the subscriber chose the password (setup, change, recovery); false for one
    /// set by the operator's command line or from before, which the portal asks to change.
    pub password_by_subscriber: bool,
    pub given_name: String,
    pub surname: String,
    pub fiscal_code: String,
    pub email: String,
    pub phone: String,
    pub otp_method: OtpMethod,
    /// The TOTP secret, sealed; `None` for SMS users and for TOTP users who have not
    /// enrolled their app yet.
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
    /// `None` until the credential's sealed envelope is made (the PUK is made with it).
    pub puk_hmac: Option<Vec<u8>>,
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

/// Where a request came from, for the audit log: the peer address of the connection (no
/// forwarding header is trusted) and the User-Agent, cut to 200 characters with control
/// characters dropped, so that a caller cannot forge or flood audit lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub addr: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

impl Origin {
    /// Longest User-Agent kept.
    pub const MAX_USER_AGENT: usize = 200;

    pub fn new(addr: Option<std::net::IpAddr>, user_agent: Option<&str>) -> Origin {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(Self::MAX_USER_AGENT)
                    .collect::<String>()
            })
            .filter(|ua| !ua.is_empty());
        Origin { addr, user_agent }
    }

    /// The audit-detail fields `client_addr` and `user_agent` (null when unknown).
    pub fn audit_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "client_addr".into(),
            self.addr
                .map_or(serde_json::Value::Null, |a| a.to_string().into()),
        );
        fields.insert(
            "user_agent".into(),
            self.user_agent
                .clone()
                .map_or(serde_json::Value::Null, serde_json::Value::String),
        );
        fields
    }
}

/// Who did an operator action: the name the admin token stands for
/// (`security.admin_name`) and where the request came from.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub origin: Origin,
}

impl Operator {
    /// The operator of a command given on this machine (`sigillo admin ...`): no address.
    pub fn local(name: &str) -> Operator {
        Operator {
            name: name.to_owned(),
            origin: Origin::new(None, Some("sigillo-cli")),
        }
    }

    /// `detail` (a JSON object) with the origin's `client_addr` and `user_agent` added.
    pub fn audit_detail(&self, detail: serde_json::Value) -> serde_json::Value {
        let mut fields = match detail {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("detail".into(), other);
                map
            }
        };
        fields.extend(self.origin.audit_fields());
        serde_json::Value::Object(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_control_characters_and_bounds_the_user_agent() {
        let o = Origin::new(None, Some("curl/8\n{\"forged\":1}\u{0}"));
        assert_eq!(o.user_agent.as_deref(), Some("curl/8{\"forged\":1}"));
        let long = "x".repeat(1000);
        let o = Origin::new("127.0.0.1".parse().ok(), Some(&long));
        assert_eq!(o.user_agent.map(|u| u.len()), Some(Origin::MAX_USER_AGENT));
        assert_eq!(Origin::new(None, Some("\u{7}")).user_agent, None);
        let fields = Origin::new("::1".parse().ok(), None).audit_fields();
        assert_eq!(fields["client_addr"], "::1");
        assert!(fields["user_agent"].is_null());
    }

    #[test]
    fn an_operator_adds_its_origin_to_the_audit_detail() {
        let op = Operator {
            name: "maria".into(),
            origin: Origin::new("10.0.0.7".parse().ok(), Some("curl/8")),
        };
        let detail = op.audit_detail(serde_json::json!({ "reason": "lost" }));
        assert_eq!(detail["reason"], "lost");
        assert_eq!(detail["client_addr"], "10.0.0.7");
        assert_eq!(detail["user_agent"], "curl/8");
        assert!(
            Operator::local("x").audit_detail(serde_json::Value::Null)["client_addr"].is_null()
        );
    }
}
