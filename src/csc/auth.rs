//! `auth/login`.

use actix_web::{web, HttpResponse};

use super::v2_wire::LoginResponse;
use crate::auth;
use crate::error::ApiError;
use crate::extract::BasicAuth;
use crate::services::Services;

/// `POST /csc/v2/auth/login` with HTTP Basic user id and password.
pub async fn login(
    services: web::Data<Services>,
    basic: BasicAuth,
) -> Result<HttpResponse, ApiError> {
    let token = auth::login(
        &services.db,
        &services.tokens,
        &basic.user_id,
        &basic.password,
    )
    .await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        access_token: token.token,
        expires_in: token.expires_in,
    }))
}
