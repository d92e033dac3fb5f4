//! Setup links: the single-use e-mailed link on which a new subscriber sets the password and
//! the envelope passphrase.
//!
//! Invariants: the token is 256 random bits (43 characters of base64url) and only its SHA-256
//! is stored; a new link deletes the earlier ones of the subscriber; the link is stored and
//! its e-mail queued in the caller's transaction (both or neither). The token appears in the
//! e-mail only: never in a response, a log line or the audit.

use base64::Engine;
use deadpool_postgres::Transaction;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::envelope::lock_user;
use super::EnrolError;
use crate::db::DbError;
use crate::mail::{self, Message};
use crate::model::Operator;
use crate::services::Services;

/// SHA-256 of a token as typed (what `setup_links` stores).
pub(crate) fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Replaces the setup links of `user_id` by a new one and queues its e-mail, in `tx`.
/// Returns when it expires.
pub(crate) async fn issue(
    services: &Services,
    tx: &Transaction<'_>,
    user_id: &str,
) -> Result<OffsetDateTime, EnrolError> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hours = services.config.enrolment.setup_link_hours;
    let expires_at = OffsetDateTime::now_utc() + Duration::hours(i64::from(hours));
    tx.execute("DELETE FROM setup_links WHERE user_id = $1", &[&user_id])
        .await
        .map_err(DbError::from)?;
    tx.execute(
        "INSERT INTO setup_links (token_sha256, user_id, expires_at) VALUES ($1, $2, $3)",
        &[&token_digest(&token), &user_id, &expires_at],
    )
    .await
    .map_err(DbError::from)?;
    let link = services
        .config
        .enrolment
        .setup_link
        .replace("{token}", &token);
    mail::enqueue(
        tx,
        user_id,
        &Message::SetupLink {
            user_id: user_id.to_owned(),
            link,
            hours,
        },
    )
    .await?;
    Ok(expires_at)
}

/// `POST /admin/v1/users/{user_id}/setup-link`: e-mails `user_id` a new setup link (the
/// earlier ones stop working), while the setup is not done. Returns when it expires.
pub async fn resend_setup_link(
    services: &Services,
    user_id: &str,
    operator: &Operator,
) -> Result<OffsetDateTime, EnrolError> {
    let result = resend(services, user_id).await;
    let (outcome, detail) = match &result {
        Ok(_) => ("ok", json!({ "user_id": user_id })),
        Err(e) => (
            "refused",
            json!({ "user_id": user_id, "error": e.to_string() }),
        ),
    };
    services
        .audit
        .record(
            &operator.name,
            "user.setup_link",
            None,
            outcome,
            operator.audit_detail(detail),
        )
        .await?;
    result
}

async fn resend(services: &Services, user_id: &str) -> Result<OffsetDateTime, EnrolError> {
    let mut client = services.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    if lock_user(&tx, user_id).await? {
        return Err(EnrolError::SetupDone);
    }
    let expires_at = issue(services, &tx, user_id).await?;
    tx.commit().await.map_err(DbError::from)?;
    services.mail.wake();
    Ok(expires_at)
}
