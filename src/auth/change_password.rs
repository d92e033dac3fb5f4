//! `POST /api/v1/password`: a subscriber changes their password.
//!
//! The current password is checked within the login budget (`budget`), and a change ends every
//! session of the user (the caller's too): tokens issued before it are refused.

use serde_json::json;

use super::{budget, check_policy, hash_password_async, session, AuthError};
use crate::db::repo;
use crate::services::Services;

/// Checks the current password, the policy, and that the new one differs; then stores it and
/// ends every session.
pub async fn change_password(
    services: &Services,
    user_id: &str,
    password: &str,
    new_password: &str,
) -> Result<(), AuthError> {
    check_policy(new_password)?;
    if password == new_password {
        return Err(AuthError::SamePassword);
    }
    let user = repo::users::find(&services.db, user_id)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    let ok = budget::check_user_password(
        services,
        user_id,
        user.password_hash.as_deref().unwrap_or_default(),
        password,
    )
    .await?;
    let outcome = if ok { "ok" } else { "wrong_password" };
    if ok {
        let hash = hash_password_async(new_password.to_owned()).await?;
        repo::users::set_password(&services.db, user_id, &hash).await?;
        // After the new hash is stored: a login racing the change gets the old epoch.
        session::end_sessions(&services.kv, user_id).await?;
    }
    services
        .audit
        .record(user_id, "user.password_change", None, outcome, json!({}))
        .await?;
    if ok {
        Ok(())
    } else {
        Err(AuthError::WrongPassword)
    }
}

/// True if the portal must ask `user_id` to change the password before anything else: it was
/// not chosen by the subscriber (the operator's command line set it, or it is from before).
pub async fn password_change_required(
    services: &Services,
    user_id: &str,
) -> Result<bool, AuthError> {
    let user = repo::users::find(&services.db, user_id)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    Ok(!user.password_by_subscriber)
}
