//! The SMTP side: one `lettre` transport per node, built from `[mail]`, and the MIME shape of
//! a message (text/plain in quoted-printable, attachments as multipart/mixed).

use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment as MimeAttachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters, TlsVersion};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::Notify;

use super::outbox::Claimed;
use super::MailError;
use crate::config::{MailConfig, SmtpTls};

/// Sends the outbox's messages; one per node, in `Services`.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// This node's name in `mail_outbox.claimed_by`.
    pub node: String,
    wake: Notify,
    pub config: MailConfig,
}

impl Mailer {
    /// Builds the transport (no connection yet: the first send connects).
    pub fn new(config: &MailConfig) -> Result<Mailer, MailError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| MailError::Config(format!("mail.from: {e}")))?;
        let host = config.smtp_host.as_str();
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(config)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            .tls(tls);
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.expose().to_owned(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            node: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            wake: Notify::new(),
            config: config.clone(),
        })
    }

    /// Wakes this node's sender now (after committing a message it should send at once).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`Mailer::wake`] or `timeout`, whichever comes first.
    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
    }

    /// Sends one claimed message; `Build` errors are permanent, SMTP errors worth a retry.
    pub async fn send(&self, m: &Claimed) -> Result<(), MailError> {
        let email = self.build(m)?;
        self.transport.send(email).await?;
        Ok(())
    }

    fn build(&self, m: &Claimed) -> Result<lettre::Message, MailError> {
        let build = |e: &dyn std::fmt::Display| MailError::Build(e.to_string());
        let to: Mailbox = m.recipient.parse().map_err(|e| build(&e))?;
        let domain = self.from.email.domain().to_owned();
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", m.message_id)))
            .date_now();
        let body =
            Body::new_with_encoding(m.body.clone(), ContentTransferEncoding::QuotedPrintable)
                .map_err(|_| MailError::Build("body not encodable".into()))?;
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let email = if m.attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for file in &m.attachments {
                let content_type = ContentType::parse(&file.content_type).map_err(|e| build(&e))?;
                parts = parts.singlepart(
                    MimeAttachment::new(file.filename.clone())
                        .body(file.content.clone(), content_type),
                );
            }
            builder.multipart(parts)
        };
        email.map_err(|e| build(&e))
    }
}

/// TLS 1.2 or newer, the server's certificate checked for `smtp_host` against the system's
/// roots and `ca_file`'s certificates.
fn tls_parameters(config: &MailConfig) -> Result<TlsParameters, MailError> {
    let mut params =
        TlsParameters::builder(config.smtp_host.clone()).set_min_tls_version(TlsVersion::Tlsv12);
    if !config.ca_file.as_os_str().is_empty() {
        let pem = std::fs::read_to_string(&config.ca_file).map_err(|e| {
            MailError::Config(format!("mail.ca_file {}: {e}", config.ca_file.display()))
        })?;
        const END: &str = "-----END CERTIFICATE-----";
        let mut found = 0;
        for block in pem.split_inclusive(END).filter(|b| b.contains(END)) {
            let cert = Certificate::from_pem(block.trim_start().as_bytes())
                .map_err(|e| MailError::Config(format!("mail.ca_file: {e}")))?;
            params = params.add_root_certificate(cert);
            found += 1;
        }
        if found == 0 {
            return Err(MailError::Config(
                "mail.ca_file holds no certificate".into(),
            ));
        }
    }
    params
        .build_native()
        .map_err(|e| MailError::Config(format!("mail TLS: {e}")))
}
