//! Request guards as extractors, so that a handler cannot forget them: `Subscriber` (a valid
//! access token), `Admin` (the operator token, compared in constant time), `BasicAuth`, and
//! `ClientOrigin` (where the request came from, for the audit log and per-address limits).

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::future::LocalBoxFuture;

use crate::auth::{session, Claims};
use crate::error::ApiError;
use crate::model::Origin;
use crate::secrets::ct_eq;
use crate::services::Services;
use crate::text;

fn services(req: &HttpRequest) -> Result<&Services, ApiError> {
    req.app_data::<web::Data<Services>>()
        .map(|data| data.get_ref())
        .ok_or_else(|| ApiError::invalid_request("service not configured"))
}

/// The credentials after `scheme ` in the Authorization header.
fn authorization<'a>(req: &'a HttpRequest, scheme: &str) -> Option<&'a str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// A bearer access token whose signature and expiry were checked locally — but not yet its
/// revocation nor its session epoch: only for signHash, whose SAD script checks both in the
/// same round trip.
#[derive(Debug, Clone)]
pub struct Bearer(pub Claims);

impl FromRequest for Bearer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let services = services(req)?;
            let token = authorization(req, "Bearer")
                .ok_or_else(|| ApiError::invalid_token("a bearer access token is required"))?;
            Ok(Bearer(services.tokens.verify(token)?))
        })())
    }
}

/// A subscriber authenticated by a valid, unrevoked bearer access token of the current session
/// epoch (a password or OTP device change ends older ones).
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub user_id: String,
    pub claims: Claims,
}

impl FromRequest for Subscriber {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bearer = Bearer::from_request(req, payload).into_inner();
        let data = req.app_data::<web::Data<Services>>().cloned();
        Box::pin(async move {
            let Bearer(claims) = bearer?;
            // A credential token authorises exactly one signHash authorisation, nothing else.
            if claims.scope.as_deref() == Some(crate::oauth2::SCOPE_CREDENTIAL) {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::FORBIDDEN,
                    "access_denied",
                    "a credential-scoped token works only for signatures/signHash",
                ));
            }
            let services =
                data.ok_or_else(|| ApiError::invalid_request("service not configured"))?;
            // Revocation and the session epoch: one Redis round trip.
            session::check_access(&services.kv, &claims).await?;
            Ok(Subscriber {
                user_id: claims.sub.clone(),
                claims,
            })
        })
    }
}

/// The operator, authenticated by the admin bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let services = services(req)?;
            let expected = services.config.security.admin_token.expose().as_bytes();
            match authorization(req, "Bearer") {
                Some(token) if ct_eq(token.as_bytes(), expected) => Ok(Admin),
                _ => Err(ApiError::invalid_token(
                    "the admin token is missing or wrong",
                )),
            }
        })())
    }
}

/// HTTP Basic user id and password (CSC `auth/login`).
pub struct BasicAuth {
    pub user_id: String,
    pub password: String,
}

impl BasicAuth {
    /// The Basic credentials of `req`: `None` when none (or none well-formed) were sent; a
    /// CSC `invalid_request` when the user id or password holds a control character or is
    /// longer than its bound (checked here, before the login budget or PostgreSQL sees them).
    pub fn parse(req: &HttpRequest) -> Result<Option<BasicAuth>, ApiError> {
        let pair = authorization(req, "Basic")
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some((user_id, password)) = pair.as_deref().and_then(|p| p.split_once(':')) else {
            return Ok(None);
        };
        text::param("user id", user_id, text::ID)?;
        text::param("password", password, text::SECRET)?;
        Ok(Some(BasicAuth {
            user_id: user_id.to_owned(),
            password: password.to_owned(),
        }))
    }

    /// The refusal when no usable credentials were sent.
    pub fn required() -> ApiError {
        ApiError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "access_denied",
            "HTTP Basic credentials (user id and password) or a refresh_token are required",
        )
    }
}

/// Where the request came from: the connection's peer address and its User-Agent, bounded.
#[derive(Debug, Clone)]
pub struct ClientOrigin(pub Origin);

impl FromRequest for ClientOrigin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        ready(Ok(ClientOrigin(Origin::new(
            req.peer_addr().map(|a| a.ip()),
            user_agent,
        ))))
    }
}

/// Parses a credential id from the path or body; anything else is the CSC "Invalid parameter".
pub fn credential_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    text::param("credentialID", raw, text::ID)?;
    uuid::Uuid::parse_str(raw)
        .map_err(|_| ApiError::invalid_request("Invalid parameter credentialID"))
}
