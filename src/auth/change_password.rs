//! `POST /api/v1/password`: a subscriber changes their password.

use serde_json::json;

use super::{check_policy, hash_password_async, verify_password_async, AuthError};
use crate::db::repo;
use crate::services::Services;

/// Checks the current password, the policy, and that the new one differs; then stores it.
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
    let ok = verify_password_async(password.to_owned(), user.password_hash).await?;
    let outcome = if ok { "ok" } else { "wrong_password" };
    if ok {
        let hash = hash_password_async(new_password.to_owned()).await?;
        repo::users::set_password(&services.db, user_id, &hash).await?;
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
