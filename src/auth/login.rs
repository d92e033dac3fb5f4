//! `auth/login`: with user id and password, or with a refresh token (which rotates it).

use std::sync::OnceLock;

use super::{hash_password, session, verify_password_async, AccessToken, AuthError};
use crate::db::repo;
use crate::kv::KvError;
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

/// Wrong passwords of `user_id` in the current window; refuses once the limit is reached.
async fn failures_so_far(services: &Services, user_id: &str) -> Result<(), AuthError> {
    let key = services.kv.key(&format!("login-fail:{user_id}"));
    let mut conn = services.kv.conn();
    let (count, ttl): (Option<u32>, i64) = redis::pipe()
        .get(&key)
        .ttl(&key)
        .query_async(&mut conn)
        .await
        .map_err(KvError)?;
    if count.unwrap_or(0) >= services.config.security.login_max_failures {
        return Err(AuthError::TooManyAttempts {
            retry_after_secs: u64::try_from(ttl).unwrap_or(1).max(1),
        });
    }
    Ok(())
}

/// Counts a wrong password (the window starts at the first one).
async fn count_failure(services: &Services, user_id: &str) -> Result<(), AuthError> {
    let key = services.kv.key(&format!("login-fail:{user_id}"));
    let mut conn = services.kv.conn();
    let () = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(services.config.security.login_window_secs)
        .arg("NX")
        .ignore()
        .query_async(&mut conn)
        .await
        .map_err(KvError)?;
    Ok(())
}

/// Checks the password of `user_id`. Wrong passwords are counted per user id (known or not):
/// past the limit, logins are refused until the window ends, so passwords cannot be guessed
/// faster than `login_max_failures` per window.
async fn check_password(
    services: &Services,
    user_id: &str,
    password: &str,
) -> Result<String, AuthError> {
    if !crate::enrolment::valid_user_id(user_id) {
        // No such user can exist: refused (after the same Argon2 cost), nothing stored.
        return check_password_once(services, user_id, password).await;
    }
    failures_so_far(services, user_id).await?;
    let result = check_password_once(services, user_id, password).await;
    if let Err(AuthError::InvalidCredentials) = result {
        count_failure(services, user_id).await?;
    }
    result
}

async fn check_password_once(
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
