//! The `mail_outbox` and `mail_attachments` tables: queueing a message, claiming due ones
//! under a lease, and recording how a send went.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use uuid::Uuid;

use super::message::{Attachment, Message};
use super::template::{render, Locale};
use super::MailError;
use crate::db::{Db, DbError};

/// Renders `message` for subscriber `user_id` (address, name and language from the `users`
/// row) and queues it. Pass the transaction of the change the message reports, so that both
/// commit or neither does; the sender picks the message up within `mail.poll_interval_ms`
/// (sooner if the caller then calls [`super::Mailer::wake`]). Returns the outbox row's id.
pub async fn enqueue(
    client: &impl GenericClient,
    user_id: &str,
    message: &Message,
) -> Result<i64, MailError> {
    let user = client
        .query_opt(
            "SELECT email, locale, given_name, surname FROM users WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .map_err(DbError::from)?
        .ok_or_else(|| MailError::NoRecipient(user_id.to_owned()))?;
    let get = |i: usize| user.try_get::<_, String>(i).map_err(DbError::from);
    let (recipient, locale) = (get(0)?, Locale::from_db(&get(1)?));
    let mut values = message.values(OffsetDateTime::now_utc());
    values.push(("given_name", get(2)?));
    values.push(("surname", get(3)?));
    let rendered = render(message.kind(), locale, &values)?;
    let row = client
        .query_one(
            "INSERT INTO mail_outbox (message_id, kind, user_id, recipient, locale, subject, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING mail_id",
            &[
                &Uuid::new_v4(),
                &message.kind(),
                &user_id,
                &recipient,
                &locale.as_str(),
                &rendered.subject,
                &rendered.body,
            ],
        )
        .await
        .map_err(DbError::from)?;
    let mail_id: i64 = row.try_get(0).map_err(DbError::from)?;
    for (position, file) in (0i32..).zip(message.attachments()) {
        client
            .execute(
                "INSERT INTO mail_attachments (mail_id, position, filename, content_type, content) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &mail_id,
                    &position,
                    &file.filename,
                    &file.content_type,
                    &file.content,
                ],
            )
            .await
            .map_err(DbError::from)?;
    }
    Ok(mail_id)
}

/// A message this node holds until its lease ends.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub mail_id: i64,
    pub message_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub claim_token: Uuid,
    pub attachments: Vec<Attachment>,
}

/// Claims up to `batch` due messages for `node`: each is locked for the claim only (other
/// nodes skip it), then held by the claim token until `lease` has passed. A message whose
/// holder died is due again when its lease ends.
pub async fn claim(
    db: &Db,
    node: &str,
    lease: Duration,
    batch: u32,
) -> Result<Vec<Claimed>, DbError> {
    let client = db.get().await?;
    let token = Uuid::new_v4();
    let rows = client
        .query(
            "WITH due AS ( \
                 SELECT mail_id FROM mail_outbox \
                 WHERE status = 'pending' AND next_attempt_at <= now() \
                 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE mail_outbox m SET attempts = m.attempts + 1, claim_token = $4, claimed_by = $1, \
                 next_attempt_at = now() + make_interval(secs => $2) \
             FROM due WHERE m.mail_id = due.mail_id \
             RETURNING m.mail_id, m.message_id, m.recipient, m.subject, m.body, m.attempts",
            &[&node, &lease.as_secs_f64(), &i64::from(batch), &token],
        )
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for r in &rows {
        claimed.push(Claimed {
            mail_id: r.try_get(0)?,
            message_id: r.try_get(1)?,
            recipient: r.try_get(2)?,
            subject: r.try_get(3)?,
            body: r.try_get(4)?,
            attempts: r.try_get(5)?,
            claim_token: token,
            attachments: Vec::new(),
        });
    }
    if claimed.is_empty() {
        return Ok(claimed);
    }
    let ids: Vec<i64> = claimed.iter().map(|c| c.mail_id).collect();
    let files = client
        .query(
            "SELECT mail_id, filename, content_type, content FROM mail_attachments \
             WHERE mail_id = ANY($1) ORDER BY mail_id, position",
            &[&ids],
        )
        .await?;
    for f in &files {
        let id: i64 = f.try_get(0)?;
        if let Some(c) = claimed.iter_mut().find(|c| c.mail_id == id) {
            c.attachments.push(Attachment {
                filename: f.try_get(1)?,
                content_type: f.try_get(2)?,
                content: f.try_get(3)?,
            });
        }
    }
    Ok(claimed)
}

/// Marks a held message sent (and drops its attachments). False if this node's claim was
/// no longer the message's (its lease ended and another node took it over).
pub async fn mark_sent(db: &Db, mail_id: i64, token: Uuid) -> Result<bool, DbError> {
    let client = db.get().await?;
    let row = client
        .query_one(
            "WITH done AS ( \
                 UPDATE mail_outbox SET status = 'sent', sent_at = now(), claim_token = NULL, \
                     last_error = NULL \
                 WHERE mail_id = $1 AND claim_token = $2 AND status = 'pending' RETURNING mail_id), \
             gone AS (DELETE FROM mail_attachments WHERE mail_id IN (SELECT mail_id FROM done)) \
             SELECT count(*) FROM done",
            &[&mail_id, &token],
        )
        .await?;
    Ok(row.try_get::<_, i64>(0)? == 1)
}

/// Records a failed attempt of a held message: due again after `retry_in`, or, with
/// `retry_in` = `None`, given up (status failed, attachments dropped). False if this node's
/// claim was no longer the message's.
pub async fn mark_failed(
    db: &Db,
    mail_id: i64,
    token: Uuid,
    error: &str,
    retry_in: Option<Duration>,
) -> Result<bool, DbError> {
    let client = db.get().await?;
    let error: String = error.chars().take(500).collect();
    let row = match retry_in {
        Some(delay) => {
            client
                .query_one(
                    "WITH done AS ( \
                         UPDATE mail_outbox SET next_attempt_at = now() + make_interval(secs => $3), \
                             claim_token = NULL, last_error = $4 \
                         WHERE mail_id = $1 AND claim_token = $2 AND status = 'pending' \
                         RETURNING mail_id) \
                     SELECT count(*) FROM done",
                    &[&mail_id, &token, &delay.as_secs_f64(), &error],
                )
                .await?
        }
        None => {
            client
                .query_one(
                    "WITH done AS ( \
                         UPDATE mail_outbox SET status = 'failed', claim_token = NULL, last_error = $3 \
                         WHERE mail_id = $1 AND claim_token = $2 AND status = 'pending' \
                         RETURNING mail_id), \
                     gone AS (DELETE FROM mail_attachments WHERE mail_id IN (SELECT mail_id FROM done)) \
                     SELECT count(*) FROM done",
                    &[&mail_id, &token, &error],
                )
                .await?
        }
    };
    Ok(row.try_get::<_, i64>(0)? == 1)
}

/// Where a queued message stands.
#[derive(Debug, Clone)]
pub struct MailStatus {
    pub kind: String,
    pub recipient: String,
    /// pending, sent or failed.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
}

/// The outbox row `mail_id`, if any.
pub async fn status(db: &Db, mail_id: i64) -> Result<Option<MailStatus>, DbError> {
    let client = db.get().await?;
    let row = client
        .query_opt(
            "SELECT kind, recipient, status, attempts, next_attempt_at, last_error, sent_at \
             FROM mail_outbox WHERE mail_id = $1",
            &[&mail_id],
        )
        .await?;
    row.map(|r| {
        Ok(MailStatus {
            kind: r.try_get(0)?,
            recipient: r.try_get(1)?,
            status: r.try_get(2)?,
            attempts: r.try_get(3)?,
            next_attempt_at: r.try_get(4)?,
            last_error: r.try_get(5)?,
            sent_at: r.try_get(6)?,
        })
    })
    .transpose()
}

/// Sets the language of subscriber `user_id`'s messages; false if there is no such user.
pub async fn set_locale(db: &Db, user_id: &str, locale: Locale) -> Result<bool, DbError> {
    let client = db.get().await?;
    let n = client
        .execute(
            "UPDATE users SET locale = $2 WHERE user_id = $1",
            &[&user_id, &locale.as_str()],
        )
        .await?;
    Ok(n == 1)
}
