//! Where SMS messages go: an `outbox` file of JSON lines (development and tests) or an HTTP
//! provider webhook. The message text is never logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::config::{OtpConfig, SmsSenderKind};

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("SMS outbox {path}: {source}")]
    Outbox {
        path: String,
        source: std::io::Error,
    },
    #[error("SMS provider: {0}")]
    Provider(String),
}

/// Sends one text message.
pub trait SmsSender: Send + Sync {
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), SmsError>>;
}

#[derive(Serialize)]
struct Message<'a> {
    to: &'a str,
    text: &'a str,
    sent_at: String,
}

fn message<'a>(to: &'a str, text: &'a str) -> Message<'a> {
    Message {
        to,
        text,
        sent_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
    }
}

/// Appends `{"to", "text", "sent_at"}` lines to a file; one writer at a time.
pub struct OutboxSender {
    path: PathBuf,
    lock: Mutex<()>,
}

impl OutboxSender {
    pub fn new(path: PathBuf) -> Self {
        OutboxSender {
            path,
            lock: Mutex::new(()),
        }
    }
}

impl SmsSender for OutboxSender {
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            let err = |source| SmsError::Outbox {
                path: self.path.display().to_string(),
                source,
            };
            let mut line = serde_json::to_vec(&message(to, text))
                .map_err(|e| err(std::io::Error::other(e)))?;
            line.push(b'\n');
            let _guard = self.lock.lock().await;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .await
                .map_err(err)?;
            file.write_all(&line).await.map_err(err)?;
            file.flush().await.map_err(err)
        })
    }
}

/// POSTs the same JSON object to a provider URL; any non-2xx is a failure.
pub struct HttpSender {
    url: String,
    client: reqwest::Client,
}

impl HttpSender {
    pub fn new(url: String) -> Result<Self, SmsError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SmsError::Provider(e.to_string()))?;
        Ok(HttpSender { url, client })
    }
}

impl SmsSender for HttpSender {
    fn send<'a>(&'a self, to: &'a str, text: &'a str) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            let response = self
                .client
                .post(&self.url)
                .json(&message(to, text))
                .send()
                .await
                .map_err(|e| SmsError::Provider(e.without_url().to_string()))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(SmsError::Provider(format!("HTTP {}", response.status())))
            }
        })
    }
}

/// The sender the configuration asks for.
pub fn build_sender(config: &OtpConfig) -> Result<Arc<dyn SmsSender>, SmsError> {
    sender_of(config.sender, &config.outbox_path, &config.http_url)
}

/// A message sender of `kind` (also used for e-mail notices: the same outbox/webhook shapes,
/// `to` being the address).
pub fn sender_of(
    kind: SmsSenderKind,
    outbox: &std::path::Path,
    url: &str,
) -> Result<Arc<dyn SmsSender>, SmsError> {
    Ok(match kind {
        SmsSenderKind::Outbox => Arc::new(OutboxSender::new(outbox.to_path_buf())),
        SmsSenderKind::Http => Arc::new(HttpSender::new(url.to_owned())?),
    })
}
