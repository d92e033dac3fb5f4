//! `credentials/*` methods.

use actix_web::{web, HttpResponse};

use super::v2_wire::SendOtpRequest;
use crate::activation;
use crate::error::ApiError;
use crate::extract::{credential_id, Subscriber};
use crate::services::Services;

/// `POST /csc/v2/credentials/sendOTP`: texts an OTP to the credential's owner → 204.
pub async fn send_otp(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<SendOtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&body.credential_id)?;
    activation::send_otp(&services, &subscriber.user_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
