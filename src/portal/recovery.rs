//! Password recovery ("Non riesco ad accedere"), without signing in:
//! `POST /api/v1/recovery`, `/api/v1/recovery/otp`, `/api/v1/recovery/complete`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::recovery;
use crate::error::ApiError;
use crate::extract::ClientOrigin;
use crate::services::Services;
use crate::text::{text, ID, SECRET};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub user_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryOtpRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCompleteRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub token: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub new_password: String,
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    message: &'static str,
}

/// → 202, the same body whether or not the user id exists.
pub async fn request(
    services: web::Data<Services>,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<RecoveryRequest>,
) -> Result<HttpResponse, ApiError> {
    recovery::request_recovery(&services, &body.user_id, &origin).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        message: "if the user id exists, a recovery link was e-mailed to its address",
    }))
}

/// → 204 once the SMS code is sent.
pub async fn send_otp(
    services: web::Data<Services>,
    body: web::Json<RecoveryOtpRequest>,
) -> Result<HttpResponse, ApiError> {
    recovery::send_recovery_otp(&services, &body.token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// → 204 once the new password is set and every session ended.
pub async fn complete(
    services: web::Data<Services>,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<RecoveryCompleteRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    recovery::complete_recovery(
        &services,
        &body.token,
        &body.otp,
        &body.new_password,
        &origin,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
