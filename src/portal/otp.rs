//! `/api/v1/otp/*`: changing the OTP device.

use actix_web::{web, HttpResponse};

use super::wire::{ConfirmDeviceRequest, PasswordOnly, SmsDeviceRequest, TotpStartResponse};
use crate::devices;
use crate::error::ApiError;
use crate::extract::Subscriber;
use crate::services::Services;

/// `POST /api/v1/otp/totp {password}` → `{otpauth_uri, qr_svg}`.
pub async fn start_totp(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<PasswordOnly>,
) -> Result<HttpResponse, ApiError> {
    let started = devices::start_totp(&services, &subscriber.user_id, &body.password).await?;
    Ok(HttpResponse::Ok().json(TotpStartResponse {
        otpauth_uri: started.otpauth_uri,
        qr_svg: started.qr_svg,
    }))
}

/// `POST /api/v1/otp/totp/confirm {code, otp}` → 204.
pub async fn confirm_totp(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<ConfirmDeviceRequest>,
) -> Result<HttpResponse, ApiError> {
    devices::confirm_totp(&services, &subscriber.user_id, &body.code, &body.otp).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/otp/sms {phone, password}` → 202 (a code is on its way to the new phone).
pub async fn start_sms(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<SmsDeviceRequest>,
) -> Result<HttpResponse, ApiError> {
    devices::start_sms(&services, &subscriber.user_id, &body.phone, &body.password).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /api/v1/otp/sms/confirm {code, otp}` → 204.
pub async fn confirm_sms(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<ConfirmDeviceRequest>,
) -> Result<HttpResponse, ApiError> {
    devices::confirm_sms(&services, &subscriber.user_id, &body.code, &body.otp).await?;
    Ok(HttpResponse::NoContent().finish())
}
