//! The sender task every node runs: claim what is due, send it, record how it went.

use std::time::Duration;

use super::outbox::{self, Claimed};
use super::MailError;
use crate::services::Services;

/// The delay before attempt `attempts + 1`: `base`, doubled per failure, capped at `max`.
pub fn backoff(attempts: i32, base: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
    base.saturating_mul(1u32 << doublings).min(max)
}

/// Claims and sends the messages due now (one batch); returns how many were sent.
pub async fn run_once(services: &Services) -> Result<usize, MailError> {
    let mailer = &services.mail;
    let config = &mailer.config;
    let claimed = outbox::claim(
        &services.db,
        &mailer.node,
        Duration::from_secs(config.lease_secs),
        config.batch,
    )
    .await?;
    let mut sent = 0;
    for m in &claimed {
        if deliver(services, m).await? {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Sends one held message and records the result; true if it was sent.
async fn deliver(services: &Services, m: &Claimed) -> Result<bool, MailError> {
    let mailer = &services.mail;
    let config = &mailer.config;
    let metrics = &services.metrics;
    let error = match mailer.send(m).await {
        Ok(()) => {
            metrics.mail_sent.inc();
            if !outbox::mark_sent(&services.db, m.mail_id, m.claim_token).await? {
                tracing::warn!(
                    mail_id = m.mail_id,
                    "mail sent after this node's lease ended"
                );
            }
            return Ok(true);
        }
        Err(e) => e,
    };
    metrics.mail_send_errors.inc();
    let permanent = matches!(error, MailError::Build(_));
    let retry_in = (!permanent
        && m.attempts < i32::try_from(config.max_attempts).unwrap_or(i32::MAX))
    .then(|| {
        backoff(
            m.attempts,
            Duration::from_millis(config.retry_base_ms),
            Duration::from_millis(config.retry_max_ms),
        )
    });
    let text = error.to_string();
    let recorded =
        outbox::mark_failed(&services.db, m.mail_id, m.claim_token, &text, retry_in).await?;
    match retry_in {
        Some(delay) => tracing::warn!(mail_id = m.mail_id, attempts = m.attempts,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), error = %text,
            "mail not sent; retried later"),
        None if recorded => {
            metrics.mail_failed.inc();
            tracing::error!(mail_id = m.mail_id, attempts = m.attempts, error = %text,
                "mail given up: marked failed");
        }
        None => {}
    }
    Ok(false)
}

/// Sends due messages until the process ends: a batch, then again at once while batches
/// come back full, else after `mail.poll_interval_ms` or a [`super::Mailer::wake`].
pub async fn run(services: actix_web::web::Data<Services>) {
    let poll = Duration::from_millis(services.mail.config.poll_interval_ms);
    let batch = usize::try_from(services.mail.config.batch).unwrap_or(usize::MAX);
    loop {
        let more = match run_once(&services).await {
            Ok(n) => n >= batch,
            Err(e) => {
                tracing::error!(error = %e, "mail outbox run failed");
                false
            }
        };
        if !more {
            services.mail.wait(poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        let delays: Vec<u64> = (1..=9).map(|a| backoff(a, base, max).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(0, base, max).as_secs(), 30);
        assert_eq!(backoff(i32::MAX, base, max).as_secs(), 3600);
    }
}
