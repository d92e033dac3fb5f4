//! `POST /api/v1/emergency-suspension`: the subscriber suspends every signing credential with
//! user id + emergency code, without signing in; `POST /api/v1/credentials/{id}/resume`: the
//! subscriber, signed in, lifts it with that credential's PUK and a new OTP device.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::activation::emergency;
use crate::error::ApiError;
use crate::extract::{credential_id, ClientOrigin, Subscriber};
use crate::services::Services;
use crate::text::{text, ID, SECRET};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub user_id: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub emergency_code: String,
}

#[derive(Serialize)]
pub struct EmergencyResponse {
    /// How many credentials this call suspended (those already suspended or revoked are not
    /// counted).
    pub suspended: usize,
}

/// → 200 `{suspended}`; an unknown user id and a wrong code are the same 401.
pub async fn suspend(
    services: web::Data<Services>,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<EmergencyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let suspended =
        emergency::emergency_suspend(&services, &body.user_id, &body.emergency_code, &origin)
            .await?;
    Ok(HttpResponse::Ok().json(EmergencyResponse { suspended }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub puk: String,
    /// A code from the new device staged by `POST /api/v1/otp/totp` or `/api/v1/otp/sms`.
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
}

#[derive(Serialize)]
pub struct ResumeResponse {
    /// How many credentials resumed (every one the subscriber had suspended).
    pub resumed: usize,
}

/// → 200 `{resumed}`; the new device is the subscriber's OTP device and every session ended.
pub async fn resume(
    services: web::Data<Services>,
    subscriber: Subscriber,
    ClientOrigin(origin): ClientOrigin,
    path: web::Path<String>,
    body: web::Json<ResumeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&path)?;
    let body = body.into_inner();
    let resumed = emergency::emergency_resume(
        &services,
        &subscriber.user_id,
        id,
        &body.puk,
        &body.otp,
        &origin,
    )
    .await?;
    Ok(HttpResponse::Ok().json(ResumeResponse { resumed }))
}
