//! `auth/revoke`: a subscriber ends one of their tokens (logout); audited with the client.

use serde_json::json;

use super::{session, AuthError};
use crate::model::Origin;
use crate::services::Services;

/// Revokes `token` (an access or refresh token of `user_id`) and records `auth.revoke`.
pub async fn logout(
    services: &Services,
    user_id: &str,
    token: &str,
    origin: &Origin,
) -> Result<(), AuthError> {
    let kind = session::revoke(&services.kv, &services.tokens, user_id, token).await?;
    let mut detail = origin.audit_fields();
    detail.insert("token_type".into(), json!(kind));
    services
        .audit
        .record(user_id, "auth.revoke", None, "ok", detail.into())
        .await?;
    Ok(())
}
