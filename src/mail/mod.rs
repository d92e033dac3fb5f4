//! E-mail over SMTP through a durable outbox in PostgreSQL.
//!
//! A message is rendered from its template (templates/mail/<locale>/<kind>.txt, in the
//! subscriber's language) and written to `mail_outbox` by [`enqueue`], in the transaction of
//! the change it reports wherever the caller has one. Every node runs [`sender::run`], which
//! claims due messages (`FOR UPDATE SKIP LOCKED`, under a lease), sends them with `lettre`
//! and marks them sent; a failed send is retried with exponential backoff and, after
//! `mail.max_attempts`, marked failed, logged and counted (`sigillo_mail_failed_total`).
//!
//! Invariants: a message committed to the outbox is never dropped (only a send the server
//! accepted marks it sent); one node at a time holds a message (the claim's token), so two
//! nodes send it once; a node that dies mid-send leaves its claim to the others when its
//! lease ends, and only then (at-least-once: the SMTP server may have accepted the mail just
//! before the crash; the Message-ID stays the same so that a duplicate is recognisable).
//! Message texts and attachments are never logged.

pub mod maildir;
pub mod message;
pub mod outbox;
pub mod sender;
pub mod smtp;
pub mod template;

pub use message::{Attachment, Message, StatusChange};
pub use outbox::{enqueue, MailStatus};
pub use smtp::Mailer;
pub use template::Locale;

use crate::db::DbError;

/// Why a message could not be queued or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("no subscriber {0} to send the message to")]
    NoRecipient(String),
    #[error("template {kind}/{locale}: {reason}")]
    Template {
        kind: &'static str,
        locale: &'static str,
        reason: String,
    },
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("SMTP configuration: {0}")]
    Config(String),
}
