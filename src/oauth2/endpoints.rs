//! The authorization server's JSON endpoints: metadata (RFC 8414), pushed authorization
//! requests (RFC 9126), token (RFC 6749 §4.1.3) and revocation (RFC 7009). Thin handlers:
//! forms in, one domain call, JSON out; errors are RFC 6749 §5.2 bodies (`error.rs`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::clients::{self, ClientCredentials};
use super::request::{self, RawRequest, DETAIL_TYPES};
use super::token::{self, TokenRequest};
use super::{OAuth2Error, SCOPE_CREDENTIAL, SCOPE_SERVICE};
use crate::error::ApiError;
use crate::extract::ClientOrigin;
use crate::services::Services;
use crate::text;

/// The issuer: `oauth2.issuer` (set at start-up from the public listener when empty).
pub fn issuer(services: &Services) -> &str {
    &services.config.oauth2.issuer
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn metadata(services: web::Data<Services>) -> HttpResponse {
    let issuer = issuer(&services);
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth2/pushed_authorize"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": [SCOPE_SERVICE, SCOPE_CREDENTIAL],
        "authorization_details_types_supported": DETAIL_TYPES,
        "require_pushed_authorization_requests": false,
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["it", "en"],
    }))
}

/// The client's credentials of a request: HTTP Basic and/or the form's fields.
fn credentials(
    req: &HttpRequest,
    client_id: Option<&String>,
    client_secret: Option<&String>,
) -> Result<ClientCredentials, ApiError> {
    for (field, value) in [("client_id", client_id), ("client_secret", client_secret)] {
        if let Some(v) = value {
            text::param(field, v, text::ID * 2)?;
        }
    }
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Basic"))
        .and_then(|(_, encoded)| ClientCredentials::parse_basic(encoded));
    Ok(ClientCredentials {
        basic,
        client_id: client_id.cloned(),
        client_secret: client_secret.cloned(),
    })
}

#[derive(Serialize)]
struct PushedResponse {
    request_uri: String,
    expires_in: u64,
}

/// `POST /oauth2/pushed_authorize` → 201 `{request_uri, expires_in}`.
pub async fn pushed_authorize(
    services: web::Data<Services>,
    req: HttpRequest,
    form: web::Form<RawRequest>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let creds = credentials(&req, form.client_id.as_ref(), form.client_secret.as_ref())?;
    let client = clients::authenticate(&services, &creds).await?;
    if form.request_uri.is_some() {
        return Err(OAuth2Error::InvalidRequest("request_uri is not allowed here".into()).into());
    }
    let checked = request::validate(&form, &client, &services.config.csc)?;
    let ttl = services.config.oauth2.request_uri_ttl_secs;
    let request_uri = request::push(&services.kv, &checked, ttl).await?;
    Ok(HttpResponse::Created().json(PushedResponse {
        request_uri,
        expires_in: ttl,
    }))
}

/// The form of `POST /oauth2/token`.
#[derive(Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(rename = "credentialID", skip_serializing_if = "Option::is_none")]
    credential_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_details: Option<Value>,
}

/// `POST /oauth2/token` (grant_type=authorization_code).
pub async fn token(
    services: web::Data<Services>,
    req: HttpRequest,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    for (field, value) in [
        ("grant_type", &form.grant_type),
        ("code", &form.code),
        ("redirect_uri", &form.redirect_uri),
        ("code_verifier", &form.code_verifier),
    ] {
        if let Some(v) = value {
            text::param(field, v, 2000)?;
        }
    }
    let creds = credentials(&req, form.client_id.as_ref(), form.client_secret.as_ref())?;
    let client = clients::authenticate(&services, &creds).await?;
    let issued = token::exchange(
        &services,
        &client,
        TokenRequest {
            grant_type: form.grant_type,
            code: form.code,
            redirect_uri: form.redirect_uri,
            code_verifier: form.code_verifier,
        },
        &origin,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: issued.scope,
            credential_id: issued.credential_id,
            authorization_details: issued.authorization_details,
        }))
}

/// The form of `POST /oauth2/revoke`.
#[derive(Deserialize)]
pub struct RevokeForm {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /oauth2/revoke` → 200, whether or not the token was known (RFC 7009 §2.2).
pub async fn revoke(
    services: web::Data<Services>,
    req: HttpRequest,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let creds = credentials(&req, form.client_id.as_ref(), form.client_secret.as_ref())?;
    let client = clients::authenticate(&services, &creds).await?;
    let token = form
        .token
        .ok_or_else(|| OAuth2Error::InvalidRequest("token is required".into()))?;
    text::param("token", &token, text::TOKEN)?;
    token::revoke(&services, &client, &token, &origin).await?;
    Ok(HttpResponse::Ok().finish())
}
