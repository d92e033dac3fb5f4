//! The messages sigillo sends, one variant each: what a caller passes to
//! [`super::enqueue`]. A new message is a variant here, its values, and a template per
//! language in templates/mail/.

use time::{Date, OffsetDateTime};

/// A file sent with a message (the sealed envelope's PDF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    /// A MIME type such as `application/pdf`.
    pub content_type: String,
    pub content: Vec<u8>,
}

/// What happened to a credential, for the status-change notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Suspended,
    Resumed,
    Revoked,
}

/// A message to one subscriber. The recipient's address, name and language come from the
/// `users` row at enqueue time.
#[derive(Debug, Clone)]
pub enum Message {
    /// The certificate `serial_number` expires on `expires_on`; renew at `renewal_link`.
    ExpiryNotice {
        serial_number: String,
        expires_on: Date,
        renewal_link: String,
    },
    /// The PIN was changed with the old PIN (`unblocked: false`) or replaced with the PUK.
    PinChanged {
        serial_number: String,
        unblocked: bool,
    },
    /// A credential was suspended, resumed or revoked.
    StatusChanged {
        serial_number: String,
        change: StatusChange,
    },
    /// The sealed envelope of a credential: the encrypted PDF, attached.
    Envelope { serial_number: String, pdf: Vec<u8> },
    /// The subscriber's emergency code suspended these credentials (their serial numbers).
    EmergencySuspension { serial_numbers: Vec<String> },
    /// A password recovery link for `user_id`, valid `minutes`.
    PasswordRecovery {
        user_id: String,
        link: String,
        minutes: u64,
    },
    /// The password of `user_id` was replaced through a recovery link.
    PasswordChanged { user_id: String },
    /// The single-use setup link of a new subscriber `user_id`, valid `hours`.
    SetupLink {
        user_id: String,
        link: String,
        hours: u32,
    },
}

impl Message {
    /// The template's name (also `mail_outbox.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::ExpiryNotice { .. } => "expiry_notice",
            Message::PinChanged {
                unblocked: false, ..
            } => "pin_changed",
            Message::PinChanged {
                unblocked: true, ..
            } => "pin_unblocked",
            Message::StatusChanged { change, .. } => match change {
                StatusChange::Suspended => "credential_suspended",
                StatusChange::Resumed => "credential_resumed",
                StatusChange::Revoked => "credential_revoked",
            },
            Message::Envelope { .. } => "envelope",
            Message::EmergencySuspension { .. } => "emergency_suspension",
            Message::PasswordRecovery { .. } => "password_recovery",
            Message::PasswordChanged { .. } => "password_changed",
            Message::SetupLink { .. } => "setup_link",
        }
    }

    /// The template's values besides the recipient's names; `now` dates the security notices.
    pub fn values(&self, now: OffsetDateTime) -> Vec<(&'static str, String)> {
        let at = format!("{} {:02}:{:02} UTC", now.date(), now.hour(), now.minute());
        match self {
            Message::ExpiryNotice {
                serial_number,
                expires_on,
                renewal_link,
            } => vec![
                ("serial_number", serial_number.clone()),
                ("expires_on", expires_on.to_string()),
                ("renewal_link", renewal_link.clone()),
            ],
            Message::PinChanged { serial_number, .. }
            | Message::StatusChanged { serial_number, .. } => {
                vec![("serial_number", serial_number.clone()), ("at", at)]
            }
            Message::Envelope { serial_number, .. } => {
                vec![("serial_number", serial_number.clone())]
            }
            Message::EmergencySuspension { serial_numbers } => {
                let list = if serial_numbers.is_empty() {
                    "-".to_owned()
                } else {
                    serial_numbers.join(", ")
                };
                vec![("serial_numbers", list), ("at", at)]
            }
            Message::PasswordRecovery {
                user_id,
                link,
                minutes,
            } => vec![
                ("user_id", user_id.clone()),
                ("link", link.clone()),
                ("minutes", minutes.to_string()),
            ],
            Message::PasswordChanged { user_id } => {
                vec![("user_id", user_id.clone()), ("at", at)]
            }
            Message::SetupLink {
                user_id,
                link,
                hours,
            } => vec![
                ("user_id", user_id.clone()),
                ("link", link.clone()),
                ("hours", hours.to_string()),
            ],
        }
    }

    /// The files sent with the message.
    pub fn attachments(&self) -> Vec<Attachment> {
        match self {
            Message::Envelope { serial_number, pdf } => vec![Attachment {
                filename: format!("busta-{serial_number}.pdf"),
                content_type: "application/pdf".into(),
                content: pdf.clone(),
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::template::{kinds, render, Locale};
    use time::macros::{date, datetime};

    fn every_message() -> Vec<Message> {
        let serial = || "0a1b2c".to_owned();
        let mut all = vec![
            Message::ExpiryNotice {
                serial_number: serial(),
                expires_on: date!(2027 - 03 - 31),
                renewal_link: "https://portal.example/renew".into(),
            },
            Message::Envelope {
                serial_number: serial(),
                pdf: b"%PDF-2.0".to_vec(),
            },
            Message::EmergencySuspension {
                serial_numbers: vec![serial(), "ffee".into()],
            },
            Message::PasswordRecovery {
                user_id: serial(),
                link: "https://portal.example/recovery?token=t".into(),
                minutes: 15,
            },
            Message::PasswordChanged { user_id: serial() },
            Message::SetupLink {
                user_id: serial(),
                link: "https://portal.example/portal/setup?token=t".into(),
                hours: 72,
            },
        ];
        for unblocked in [false, true] {
            all.push(Message::PinChanged {
                serial_number: serial(),
                unblocked,
            });
        }
        for change in [
            StatusChange::Suspended,
            StatusChange::Resumed,
            StatusChange::Revoked,
        ] {
            all.push(Message::StatusChanged {
                serial_number: serial(),
                change,
            });
        }
        all
    }

    #[test]
    fn every_message_renders_in_both_languages_and_every_template_is_used() {
        let now = datetime!(2026-12-01 09:05 UTC);
        let messages = every_message();
        for kind in kinds() {
            assert!(
                messages.iter().any(|m| m.kind() == kind),
                "template {kind} has no message"
            );
        }
        for m in &messages {
            let mut values = m.values(now);
            values.push(("given_name", "Mario".into()));
            values.push(("surname", "Rossi".into()));
            let it = render(m.kind(), Locale::It, &values).unwrap();
            let en = render(m.kind(), Locale::En, &values).unwrap();
            assert_ne!(it, en, "{}", m.kind());
            for r in [&it, &en] {
                assert!(r.body.contains("0a1b2c") && r.body.contains("Mario Rossi"));
                assert!(!r.body.contains("{{") && !r.subject.contains("{{"));
            }
            assert!(it.body.contains("Gentile") && en.body.contains("Dear"));
        }
        let pin = render(
            "pin_changed",
            Locale::En,
            &[
                ("serial_number", "x".into()),
                ("at", "2026-12-01 09:05 UTC".into()),
                ("given_name", "A".into()),
                ("surname", "B".into()),
            ],
        )
        .unwrap();
        assert!(pin.body.contains("on 2026-12-01 09:05 UTC"));
    }

    #[test]
    fn only_the_envelope_has_an_attachment() {
        for m in every_message() {
            let files = m.attachments();
            match m {
                Message::Envelope { .. } => {
                    assert_eq!(files.len(), 1);
                    assert_eq!(files[0].content_type, "application/pdf");
                    assert_eq!(files[0].filename, "busta-0a1b2c.pdf");
                }
                _ => assert!(files.is_empty()),
            }
        }
    }
}
