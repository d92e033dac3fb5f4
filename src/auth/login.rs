//! `auth/login`: with user id and password, or with a refresh token (which rotates it).

use std::sync::OnceLock;

use super::{hash_password, session, verify_password_async, AccessToken, AuthError};
use crate::db::repo;
use crate::services::Services;

/// A hash to verify against when the user does not exist, so both paths cost one Argon2 run.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-Password-1").unwrap_or_default())
}

/// How the subscriber proves who they are.
pub enum LoginMethod {
    Password { user_id: String, password: String },
    RefreshToken(String),
}

/// An access token, and a refresh token when asked for (or when one was redeemed).
pub struct LoginResult {
    pub access: AccessToken,
    pub refresh_token: Option<String>,
}

/// Checks the password of `user_id`.
async fn check_password(
    services: &Services,
    user_id: &str,
    password: &str,
) -> Result<String, AuthError> {
    let user = repo::users::find(&services.db, user_id).await?;
    let phc = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let matches = verify_password_async(password.to_owned(), phc).await?;
    match user {
        Some(user) if matches => Ok(user.user_id),
        _ => Err(AuthError::InvalidCredentials),
    }
}

/// Logs in; `remember_me` adds a refresh token. A redeemed refresh token is always replaced.
pub async fn login(
    services: &Services,
    method: LoginMethod,
    remember_me: bool,
) -> Result<LoginResult, AuthError> {
    let (user_id, rotate) = match method {
        LoginMethod::Password { user_id, password } => {
            (check_password(services, &user_id, &password).await?, false)
        }
        LoginMethod::RefreshToken(token) => (
            session::redeem_refresh(&services.kv, &token)
                .await
                .map_err(|e| match e {
                    AuthError::InvalidToken => AuthError::InvalidCredentials,
                    other => other,
                })?,
            true,
        ),
    };
    let access = services.tokens.issue(&user_id)?;
    let refresh_token = if remember_me || rotate {
        Some(
            session::issue_refresh(
                &services.kv,
                &user_id,
                services.config.csc.refresh_token_ttl_secs,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(LoginResult {
        access,
        refresh_token,
    })
}
