//! `auth/login` with user id and password.

use std::sync::OnceLock;

use super::{hash_password, verify_password, AccessToken, AuthError, Tokens};
use crate::db::{repo, Db};

/// A hash to verify against when the user does not exist, so both paths cost one Argon2 run.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-Password-1").unwrap_or_default())
}

/// Checks the password of `user_id` and issues an access token.
pub async fn login(
    db: &Db,
    tokens: &Tokens,
    user_id: &str,
    password: &str,
) -> Result<AccessToken, AuthError> {
    let user = repo::users::find(db, user_id).await?;
    let phc = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))?;
    match user {
        Some(user) if matches => tokens.issue(&user.user_id),
        _ => Err(AuthError::InvalidCredentials),
    }
}
