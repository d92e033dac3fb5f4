//! `POST /api/v1/setup {token, password, passphrase}`: the subscriber completes the setup
//! through the e-mailed link — chooses the password and the envelope passphrase — and every
//! credential waiting for its envelope gets it.
//!
//! Invariants: the link works once, also under parallel requests (the link row is deleted in
//! the transaction that stores the password, and only the request that deleted it commits);
//! an unknown, expired or spent link is one refusal that never says which; a refused password
//! or passphrase does not spend the link. The passphrase is never stored, not even hashed:
//! only the lock made from it (the PDF encryption entries, and the file key sealed in the HSM).

use super::envelope::{key_context, make_waiting, sent};
use super::setup_link::token_digest;
use super::EnrolError;
use crate::auth::{check_policy, hash_password_async, session};
use crate::db::DbError;
use crate::envelope::Lock;
use crate::model::Origin;
use crate::services::Services;

/// Passphrase length, in characters.
pub const PASSPHRASE_CHARS: std::ops::RangeInclusive<usize> = 12..=128;

/// Checks the passphrase rules: 12 to 128 characters, not the password.
pub fn check_passphrase(passphrase: &str, password: &str) -> Result<(), EnrolError> {
    if !PASSPHRASE_CHARS.contains(&passphrase.chars().count()) {
        return Err(EnrolError::Passphrase("12 to 128 characters"));
    }
    if passphrase == password {
        return Err(EnrolError::Passphrase("must differ from the password"));
    }
    Ok(())
}

/// Completes the setup of the subscriber `token` was issued to; audited with `origin`.
pub async fn complete_setup(
    services: &Services,
    token: &str,
    password: &str,
    passphrase: &str,
    origin: &Origin,
) -> Result<(), EnrolError> {
    let result = complete(services, token, password, passphrase).await;
    let (actor, outcome, reason) = match &result {
        Ok(user_id) => (user_id.clone(), "ok", None),
        Err(EnrolError::InvalidSetupLink) => ("unknown".to_owned(), "invalid_link", None),
        Err(e) => ("unknown".to_owned(), "refused", Some(e.to_string())),
    };
    let mut detail = origin.audit_fields();
    if let Some(reason) = reason {
        detail.insert("error".into(), reason.into());
    }
    services
        .audit
        .record(&actor, "user.setup", None, outcome, detail.into())
        .await?;
    result.map(|_| ())
}

/// True if `token` is a setup link that still works (for the page, before the form is filled
/// in; the setup itself checks again).
pub async fn setup_link_is_valid(services: &Services, token: &str) -> Result<bool, EnrolError> {
    match user_of_link(services, &token_digest(token)).await {
        Ok(_) => Ok(true),
        Err(EnrolError::InvalidSetupLink) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn user_of_link(services: &Services, digest: &[u8]) -> Result<String, EnrolError> {
    let client = services.db.get().await.map_err(DbError::from)?;
    let row = client
        .query_opt(
            "SELECT user_id FROM setup_links WHERE token_sha256 = $1 AND expires_at > now()",
            &[&digest],
        )
        .await
        .map_err(DbError::from)?
        .ok_or(EnrolError::InvalidSetupLink)?;
    Ok(row.try_get(0).map_err(DbError::from)?)
}

async fn complete(
    services: &Services,
    token: &str,
    password: &str,
    passphrase: &str,
) -> Result<String, EnrolError> {
    // The rules first: a refused choice does not spend the link.
    check_policy(password)?;
    check_passphrase(passphrase, password)?;
    let digest = token_digest(token);
    let user_id = user_of_link(services, &digest).await?;

    // The slow parts before the transaction: Argon2, the lock, the HSM seal.
    let hash = hash_password_async(password.to_owned()).await?;
    let phrase = passphrase.to_owned();
    let lock = tokio::task::spawn_blocking(move || Lock::from_passphrase(&phrase))
        .await
        .map_err(|_| EnrolError::Interrupted)??;
    let sealed_key = services
        .secrets
        .seal(&key_context(&user_id), lock.file_key())
        .await?;
    let public =
        serde_json::to_value(lock.public()).map_err(|_| DbError::Corrupt("envelope lock"))?;

    let mut client = services.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    // Spending the link: of parallel requests with one token, only one deletes the row.
    let spent = tx
        .query_opt(
            "DELETE FROM setup_links WHERE token_sha256 = $1 AND expires_at > now() \
             RETURNING user_id",
            &[&digest],
        )
        .await
        .map_err(DbError::from)?;
    let owner: Option<String> = spent
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(DbError::from)?;
    if owner.as_deref() != Some(user_id.as_str()) {
        return Err(EnrolError::InvalidSetupLink);
    }
    // Only a subscriber from before the setup existed can have a password, and sessions.
    let had_password: bool = tx
        .query_one(
            "SELECT password_hash IS NOT NULL FROM users WHERE user_id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await
        .map_err(DbError::from)?
        .try_get(0)
        .map_err(DbError::from)?;
    tx.execute(
        "UPDATE users SET password_hash = $2, password_by_subscriber = true, \
         envelope_lock = $3, envelope_key = $4 WHERE user_id = $1",
        &[&user_id, &hash, &public, &sealed_key],
    )
    .await
    .map_err(DbError::from)?;
    tx.execute("DELETE FROM setup_links WHERE user_id = $1", &[&user_id])
        .await
        .map_err(DbError::from)?;
    let made = make_waiting(services, &tx, &user_id).await?;
    tx.commit().await.map_err(DbError::from)?;
    if had_password {
        session::end_sessions(&services.kv, &user_id).await?;
    }
    sent(services, &user_id, &user_id, &made, |d| d).await?;
    Ok(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_rules() {
        assert!(check_passphrase("short", "Sigillo-2026!").is_err());
        assert!(check_passphrase(&"x".repeat(129), "Sigillo-2026!").is_err());
        assert!(check_passphrase("Sigillo-2026!", "Sigillo-2026!").is_err());
        assert!(check_passphrase("a long enough phrase", "Sigillo-2026!").is_ok());
        // Characters, not bytes.
        assert!(check_passphrase("èèèèèèèèèèè", "Sigillo-2026!").is_err());
        assert!(check_passphrase("èèèèèèèèèèèè", "Sigillo-2026!").is_ok());
    }
}
