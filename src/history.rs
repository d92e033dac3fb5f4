//! A credential's signing history, read from the audit log: each signHash that signed (its
//! row's outcome is `ok`, so the SAD's durable record granted it), newest first — when, how
//! many signatures, and which client (the OAuth2 client id when the token had one, the
//! client's address and User-Agent as recorded).
//!
//! Invariants: a subscriber reads only their own credential's history (someone else's
//! credential is "not found", exactly like a missing one); a page holds at most
//! [`MAX_PAGE`] entries, and the next page starts below the last entry's cursor.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::credentials::CredentialError;
use crate::db::repo;
use crate::services::Services;

/// Entries of a page when the caller names no limit.
pub const DEFAULT_PAGE: u32 = 20;
/// Most entries of a page.
pub const MAX_PAGE: u32 = 100;

/// One signHash that signed.
#[derive(Debug, Clone)]
pub struct SigningEvent {
    /// The page cursor of this entry (pass it as `before` for the entries after it).
    pub cursor: i64,
    pub at: OffsetDateTime,
    /// Signatures made.
    pub count: u64,
    /// The OAuth2 client the access token was issued to, if any.
    pub client_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// The certificate the SAD was issued under.
    pub serial_number: Option<String>,
}

/// A page of the history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub events: Vec<SigningEvent>,
    /// Signatures the credential made in all (every page).
    pub total_signatures: u64,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<i64>,
}

fn text(detail: &Value, key: &str) -> Option<String> {
    detail.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl SigningEvent {
    fn of(row: repo::audit::SignatureRow) -> SigningEvent {
        let d = &row.detail;
        SigningEvent {
            cursor: row.id,
            at: row.at,
            count: d.get("count").and_then(Value::as_u64).unwrap_or(0),
            client_id: text(d, "client_id"),
            client_addr: text(d, "client_addr"),
            user_agent: text(d, "user_agent"),
            serial_number: text(d, "serial_number"),
        }
    }
}

/// The signing history of `user_id`'s credential `credential_id`: at most `limit` entries
/// (clamped to 1..=[`MAX_PAGE`]) older than the cursor `before`, newest first.
pub async fn signing_history(
    services: &Services,
    user_id: &str,
    credential_id: Uuid,
    before: Option<i64>,
    limit: u32,
) -> Result<HistoryPage, CredentialError> {
    // Ownership first: another subscriber's credential is answered like a missing one.
    let credential = repo::credentials::find_owned(&services.db, credential_id, user_id)
        .await?
        .ok_or(CredentialError::NotFound)?;
    let limit = limit.clamp(1, MAX_PAGE);
    // One more than asked: whether a next page exists, without counting.
    let mut rows = repo::audit::signatures(
        &services.db,
        credential.credential_id,
        before,
        i64::from(limit) + 1,
    )
    .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let events: Vec<SigningEvent> = rows.into_iter().map(SigningEvent::of).collect();
    let next = if more {
        events.last().map(|e| e.cursor)
    } else {
        None
    };
    let total = repo::audit::signature_total(&services.db, credential.credential_id).await?;
    Ok(HistoryPage {
        events,
        total_signatures: u64::try_from(total).unwrap_or(0),
        next,
    })
}
