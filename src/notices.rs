//! Expiry notices: 6, 5, 4, 3, 2 and 1 month(s) before a certificate expires, then weekly
//! (3, 2 and 1 week(s) before), by e-mail (the mail outbox, in the subscriber's language) and
//! SMS, with the expiry date and the renewal link.
//!
//! Invariants: a notice is recorded once (the database key makes several nodes running the
//! scheduler at once send it once), and its e-mail is queued in the same transaction, so a
//! recorded notice always has its e-mail on the way (the outbox retries it until the SMTP
//! server takes it); only the latest notice due is sent (a credential enrolled 40 days before
//! expiry gets the 1-month notice, not six at once). The SMS goes once, after the commit; a
//! failed SMS is logged, not retried (the e-mail carries the notice). `run_once` takes the
//! date as a parameter: the scheduler passes today, tests a simulated calendar.

use std::time::Duration;

use time::{Date, Month, OffsetDateTime, Time};

use crate::db::repo::notices::{self, Expiring};
use crate::db::DbError;
use crate::mail::{self, MailError, Message};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// `d` minus `n` calendar months (the day clamped to the month's length).
fn months_before(d: Date, n: u8) -> Date {
    let total = i32::from(u8::from(d.month())) - 1 - i32::from(n) + 12 * d.year();
    let year = total.div_euclid(12);
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1))
        .unwrap_or(Month::January);
    let day = d.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day).unwrap_or(d)
}

/// Every notice date of a certificate expiring on `expiry`, oldest first.
pub fn schedule(expiry: Date) -> Vec<Date> {
    let mut dates: Vec<Date> = (1..=6).rev().map(|n| months_before(expiry, n)).collect();
    dates.extend((1..=3).rev().map(|w| expiry - time::Duration::weeks(w)));
    dates
}

/// The notice due on `today`, if any: the latest scheduled date not after today, while the
/// certificate has not expired.
pub fn due(expiry: Date, today: Date) -> Option<Date> {
    if today >= expiry {
        return None;
    }
    schedule(expiry).into_iter().filter(|d| *d <= today).max()
}

fn renewal_link(services: &Services, e: &Expiring) -> String {
    services
        .config
        .lifecycle
        .renewal_link
        .replace("{credential_id}", &e.credential_id.to_string())
}

/// The SMS text (also the notice's text in `/api/v1/notifications`).
fn text(services: &Services, e: &Expiring) -> String {
    format!(
        "Your sigillo signing certificate {} expires on {}. Renew it at {}",
        e.serial_number,
        e.valid_to.date(),
        renewal_link(services, e)
    )
}

/// Sends the notices due on `today`; returns how many this call sent.
pub async fn run_once(services: &Services, today: Date) -> Result<usize, NoticeError> {
    let start = today.with_time(Time::MIDNIGHT).assume_utc();
    // Further out than the first notice (6 months) can be.
    let horizon = start + time::Duration::days(7 * 31);
    let expiring = notices::expiring(&services.db, start, horizon).await?;
    let mut sent = 0;
    for e in expiring {
        let Some(due_date) = due(e.valid_to.date(), today) else {
            continue;
        };
        let body = text(services, &e);
        let mut client = services.db.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        if !notices::claim(&tx, &e, due_date, "email+sms", &body).await? {
            continue; // sent already, by this node or another (the transaction rolls back)
        }
        let message = Message::ExpiryNotice {
            serial_number: e.serial_number.clone(),
            expires_on: e.valid_to.date(),
            renewal_link: renewal_link(services, &e),
        };
        mail::enqueue(&tx, &e.user_id, &message).await?;
        tx.commit().await.map_err(DbError::from)?;
        services.mail.wake();
        sent += 1;
        if let Err(err) = services.otp.send_text(&e.phone, &body).await {
            tracing::warn!(credential_id = %e.credential_id, error = %err,
                "expiry notice SMS not sent (the e-mail is queued)");
        }
    }
    Ok(sent)
}

/// Runs `run_once` every `interval` until the process ends.
pub async fn scheduler(services: actix_web::web::Data<Services>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let today = OffsetDateTime::now_utc().date();
        match run_once(&services, today).await {
            Ok(n) if n > 0 => tracing::info!(sent = n, "expiry notices sent"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "expiry notice run failed"),
        }
        // Housekeeping on the same tick: the durable records of SADs a day past their
        // deadline can never sign again (they stay in the audit log's detail by id).
        let horizon = OffsetDateTime::now_utc() - time::Duration::days(1);
        if let Err(e) = crate::db::repo::sads::purge_expired(&services.db, horizon).await {
            tracing::error!(error = %e, "purging expired SAD records failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_schedule_is_monthly_then_weekly() {
        assert_eq!(
            schedule(date!(2027 - 03 - 31)),
            vec![
                date!(2026 - 09 - 30),
                date!(2026 - 10 - 31),
                date!(2026 - 11 - 30),
                date!(2026 - 12 - 31),
                date!(2027 - 01 - 31),
                date!(2027 - 02 - 28),
                date!(2027 - 03 - 10),
                date!(2027 - 03 - 17),
                date!(2027 - 03 - 24),
            ]
        );
    }

    #[test]
    fn only_the_latest_due_notice_is_sent() {
        let expiry = date!(2027 - 03 - 31);
        assert_eq!(due(expiry, date!(2026 - 09 - 29)), None);
        assert_eq!(
            due(expiry, date!(2026 - 09 - 30)),
            Some(date!(2026 - 09 - 30))
        );
        assert_eq!(
            due(expiry, date!(2027 - 03 - 20)),
            Some(date!(2027 - 03 - 17))
        );
        assert_eq!(due(expiry, date!(2027 - 03 - 31)), None, "expired");
    }
}
