//! The token endpoint's grant (authorization code with PKCE S256) and revocation (RFC 7009).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::sha::sha256;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::clients::Client;
use super::{codes, OAuth2Error, SCOPE_CREDENTIAL};
use crate::auth::{self, session, Grant};
use crate::model::Origin;
use crate::secrets::ct_eq;
use crate::services::Services;

/// A token request, as sent (after client authentication).
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// An issued access token.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub credential_id: Option<Uuid>,
    pub authorization_details: Option<Value>,
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn verifier_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Exchanges a code for an access token: the code once, for its client and redirect URI, with
/// the verifier of its challenge, while the user's session lasts.
pub async fn exchange(
    services: &Services,
    client: &Client,
    req: TokenRequest,
    origin: &Origin,
) -> Result<Issued, OAuth2Error> {
    if req.grant_type.as_deref() != Some("authorization_code") {
        return Err(OAuth2Error::UnsupportedGrantType);
    }
    let code = req
        .code
        .as_deref()
        .ok_or_else(|| OAuth2Error::InvalidRequest("code is required".into()))?;
    let verifier = req
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuth2Error::InvalidRequest("code_verifier is required (PKCE)".into()))?;
    // Taken before any other check: a code presented with a wrong verifier or redirect URI
    // is spent too, so an attacker holding a stolen code gets one guess, not many.
    let (grant, sad) =
        codes::redeem(&services.kv, code)
            .await?
            .ok_or(OAuth2Error::InvalidGrant(
                "the code is unknown, expired or already used",
            ))?;
    if grant.client_id != client.client_id {
        return Err(OAuth2Error::InvalidGrant(
            "the code was issued to another client",
        ));
    }
    let redirect_ok = match &req.redirect_uri {
        Some(uri) => *uri == grant.redirect_uri,
        None => !grant.redirect_uri_given,
    };
    if !redirect_ok {
        return Err(OAuth2Error::InvalidGrant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    if !verifier_ok(verifier) || !ct_eq(computed.as_bytes(), grant.code_challenge.as_bytes()) {
        return Err(OAuth2Error::InvalidGrant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if session::current_epoch(&services.kv, &grant.user_id).await? != grant.epoch {
        return Err(OAuth2Error::InvalidGrant(
            "the subscriber's session ended (password or OTP device changed)",
        ));
    }
    let credential = grant.scope == SCOPE_CREDENTIAL;
    let ttl = grant
        .sad_expires_at
        .map(|at| u64::try_from(at - OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0));
    if credential && (sad.is_none() || ttl == Some(0)) {
        return Err(OAuth2Error::InvalidGrant("the authorisation has expired"));
    }
    let access = services.tokens.issue_grant(
        &grant.user_id,
        grant.epoch,
        &Grant {
            scope: &grant.scope,
            client_id: &client.client_id,
            sad: sad.as_deref(),
            ttl_secs: ttl,
        },
    )?;
    let mut detail = origin.audit_fields();
    detail.insert("client_id".into(), json!(client.client_id));
    detail.insert("scope".into(), json!(grant.scope));
    services
        .audit
        .record(
            &grant.user_id,
            "oauth2.token",
            grant.credential_id,
            "ok",
            detail.into(),
        )
        .await?;
    Ok(Issued {
        access_token: access.token,
        expires_in: access.expires_in,
        scope: grant.scope,
        credential_id: grant.credential_id,
        authorization_details: grant.authorization_details,
    })
}

/// RFC 7009: revokes `token` if it is an access token issued to `client` (audited as
/// `auth.revoke`); anything else is ignored, as the RFC asks.
pub async fn revoke(
    services: &Services,
    client: &Client,
    token: &str,
    origin: &Origin,
) -> Result<(), OAuth2Error> {
    let Ok(claims) = services.tokens.verify(token) else {
        return Ok(());
    };
    if claims.cid.as_deref() != Some(client.client_id.as_str()) {
        return Ok(());
    }
    auth::logout(services, &claims.sub, token, origin).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        assert!(verifier_ok(&"a".repeat(43)));
        assert!(verifier_ok(&"-._~9".repeat(20)));
        assert!(!verifier_ok(&"a".repeat(42)));
        assert!(!verifier_ok(&"a".repeat(129)));
        assert!(!verifier_ok(&format!("{}+", "a".repeat(43))));
    }
}
