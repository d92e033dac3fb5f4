//! `auth/login`: with user id and password, or with a refresh token (which rotates it).
//!
//! Every outcome but a refusal before any check (429) is audited with the client's address and
//! User-Agent: `auth.login` ok / wrong_password (actor: the user id given, bounded),
//! `auth.refresh` ok / replayed (a rotated refresh token came back: every session ended).

use std::sync::OnceLock;

use serde_json::{json, Value};

use super::budget::{self, argon2_queue};
use super::session::{self, Redeemed};
use super::{hash_password, verify_password_bounded, AccessToken, AuthError};
use crate::db::repo;
use crate::model::Origin;
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

/// The audit actor for a user id given by an unauthenticated client: at most 64 characters,
/// no control characters.
fn bounded_actor(user_id: &str) -> String {
    let actor: String = user_id
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if actor.is_empty() {
        "-".to_owned()
    } else {
        actor
    }
}

/// The audit detail: `fields` and where the request came from.
fn detail(origin: &Origin, fields: Value) -> Value {
    let mut detail = origin.audit_fields();
    if let Value::Object(fields) = fields {
        detail.extend(fields);
    }
    Value::Object(detail)
}

/// Checks the password of `user_id` within the user's and the address's budgets (reserved
/// before Argon2 runs, given back when right). Unknown users cost the same Argon2 run.
async fn check_password(
    services: &Services,
    user_id: &str,
    password: &str,
    origin: &Origin,
) -> Result<String, AuthError> {
    let reservation = budget::reserve(services, Some(user_id), origin.addr).await?;
    let user = match repo::users::find(&services.db, user_id).await {
        Ok(user) => user,
        Err(e) => {
            reservation.give_back(services).await?;
            return Err(e.into());
        }
    };
    // No user, or no password yet (setup not done): the same Argon2 run, on the decoy.
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let has_password = stored.is_some();
    let phc = stored.unwrap_or_else(|| decoy_hash().to_owned());
    let checked = verify_password_bounded(password.to_owned(), phc, argon2_queue(services)).await;
    let checked = checked.map(|matches| matches && has_password);
    reservation.settle(services, &checked).await?;
    let ok = checked?;
    services
        .audit
        .record(
            &bounded_actor(user_id),
            "auth.login",
            None,
            if ok { "ok" } else { "wrong_password" },
            detail(origin, json!({ "method": "password" })),
        )
        .await?;
    match user {
        Some(user) if ok => Ok(user.user_id),
        _ => Err(AuthError::InvalidCredentials),
    }
}

/// Redeems a refresh token: its user, family and epoch. A replay is audited and refused.
async fn redeem(
    services: &Services,
    token: &str,
    origin: &Origin,
) -> Result<(String, String, u64), AuthError> {
    let redeemed = session::redeem_refresh(
        &services.kv,
        token,
        services.config.csc.refresh_token_ttl_secs,
    )
    .await
    .map_err(|e| match e {
        AuthError::InvalidToken => AuthError::InvalidCredentials,
        other => other,
    })?;
    match redeemed {
        Redeemed::Granted {
            user_id,
            family,
            epoch,
        } => {
            services
                .audit
                .record(
                    &user_id,
                    "auth.refresh",
                    None,
                    "ok",
                    detail(origin, json!({ "family": family })),
                )
                .await?;
            Ok((user_id, family, epoch))
        }
        Redeemed::Replayed { user_id, family } => {
            tracing::warn!(
                user_id,
                family,
                "rotated refresh token replayed: sessions ended"
            );
            services
                .audit
                .record(
                    &user_id,
                    "auth.refresh",
                    None,
                    "replayed",
                    detail(
                        origin,
                        json!({ "family": family, "revoked": "every session of the user" }),
                    ),
                )
                .await?;
            Err(AuthError::InvalidCredentials)
        }
    }
}

/// Logs in; `remember_me` adds a refresh token. A redeemed refresh token is always replaced,
/// by one of the same family and epoch.
pub async fn login(
    services: &Services,
    method: LoginMethod,
    remember_me: bool,
    origin: &Origin,
) -> Result<LoginResult, AuthError> {
    let (user_id, family, epoch) = match method {
        LoginMethod::Password { user_id, password } => {
            let user_id = check_password(services, &user_id, &password, origin).await?;
            let epoch = session::current_epoch(&services.kv, &user_id).await?;
            let family = remember_me.then(session::new_family);
            (user_id, family, epoch)
        }
        LoginMethod::RefreshToken(token) => {
            let (user_id, family, epoch) = redeem(services, &token, origin).await?;
            (user_id, Some(family), epoch)
        }
    };
    let access = services.tokens.issue(&user_id, epoch)?;
    let refresh_token = match family {
        Some(family) => Some(
            session::issue_refresh(
                &services.kv,
                &user_id,
                &family,
                epoch,
                services.config.csc.refresh_token_ttl_secs,
            )
            .await?,
        ),
        None => None,
    };
    Ok(LoginResult {
        access,
        refresh_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_from_clients_are_bounded() {
        assert_eq!(bounded_actor("alice"), "alice");
        assert_eq!(bounded_actor(&"x".repeat(300)).len(), 64);
        assert_eq!(bounded_actor("a\nb\u{0}"), "ab");
        assert_eq!(bounded_actor(""), "-");
    }

    #[test]
    fn details_carry_the_origin() {
        let origin = Origin::new("127.0.0.1".parse().ok(), Some("k6"));
        let d = detail(&origin, json!({ "method": "password" }));
        assert_eq!(d["client_addr"], "127.0.0.1");
        assert_eq!(d["user_agent"], "k6");
        assert_eq!(d["method"], "password");
    }
}
