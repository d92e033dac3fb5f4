//! `auth/login` and `auth/revoke` (the same wire shapes in v1 and v2).

use actix_web::{web, HttpRequest, HttpResponse};

use super::v2_wire::{LoginRequest, LoginResponse, RevokeRequest};
use crate::auth::{self, AuthError, LoginMethod};
use crate::error::ApiError;
use crate::extract::{BasicAuth, ClientOrigin, Subscriber};
use crate::services::Services;

/// `POST /csc/v2/auth/login`: as v1, with v2's error codes (§11.2): no usable Basic
/// credentials 401 `invalid_request`, a wrong user id or password 400 `authentication_error`, an
/// unusable refresh token 400 `invalid_request`.
pub async fn login_v2(
    services: web::Data<Services>,
    req: HttpRequest,
    origin: ClientOrigin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    login(&services, &req, origin, &body, true).await
}

/// `POST /csc/v1/auth/login`: HTTP Basic user id and password, or a `refresh_token` in the
/// body; `rememberMe` adds a refresh token. Wrong credentials: 401 `access_denied`.
pub async fn login_v1(
    services: web::Data<Services>,
    req: HttpRequest,
    origin: ClientOrigin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    login(&services, &req, origin, &body, false).await
}

async fn login(
    services: &Services,
    req: &HttpRequest,
    ClientOrigin(origin): ClientOrigin,
    body: &[u8],
    v2: bool,
) -> Result<HttpResponse, ApiError> {
    let request: LoginRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LoginRequest::default()
    } else {
        // An object, nothing else: serde would also read a struct from an array, by position.
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::invalid_request("the body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))?
    };
    let basic = BasicAuth::parse(req)?;
    let method = match (basic, request.refresh_token) {
        (Some(b), _) => LoginMethod::Password {
            user_id: b.user_id,
            password: b.password,
        },
        (None, Some(token)) => LoginMethod::RefreshToken(token),
        (None, None) if v2 => return Err(crate::error::csc_v2_login_malformed()),
        (None, None) => return Err(BasicAuth::required()),
    };
    let with_refresh_token = matches!(method, LoginMethod::RefreshToken(_));
    let result = auth::login(services, method, request.remember_me, &origin)
        .await
        .map_err(|e| {
            if v2 {
                crate::error::csc_v2_login(e, with_refresh_token)
            } else {
                e.into()
            }
        })?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        access_token: result.access.token,
        refresh_token: result.refresh_token,
        expires_in: result.access.expires_in,
    }))
}

/// `POST /csc/v*/auth/revoke`: revokes an access or refresh token of the caller → 204.
pub async fn revoke(
    services: web::Data<Services>,
    subscriber: Subscriber,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<RevokeRequest>,
) -> Result<HttpResponse, ApiError> {
    if let Some(hint) = body.token_type_hint.as_deref() {
        if hint != "access_token" && hint != "refresh_token" {
            return Err(ApiError::invalid_request(
                "Invalid parameter token_type_hint: access_token or refresh_token",
            ));
        }
    }
    auth::logout(&services, &subscriber.user_id, &body.token, &origin)
        .await
        .map_err(|e| match e {
            AuthError::InvalidToken => ApiError::invalid_request("Invalid parameter token"),
            other => other.into(),
        })?;
    Ok(HttpResponse::NoContent().finish())
}
