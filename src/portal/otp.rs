//! `/api/v1/otp/*`: changing the OTP device; `/api/v1/credentials/{id}/otp`: an SMS code for
//! one operation on a credential.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::wire::{ConfirmDeviceRequest, PasswordOnly, SmsDeviceRequest, TotpStartResponse};
use crate::activation::{self, OtpOperation};
use crate::devices;
use crate::error::ApiError;
use crate::extract::{credential_id, ClientOrigin, Subscriber};
use crate::services::Services;

/// `POST /api/v1/otp/totp {password}` → `{otpauth_uri, qr_svg}`.
pub async fn start_totp(
    services: web::Data<Services>,
    subscriber: Subscriber,
    origin: ClientOrigin,
    body: web::Json<PasswordOnly>,
) -> Result<HttpResponse, ApiError> {
    let started =
        devices::start_totp_from(&services, &subscriber.user_id, &body.password, &origin.0).await?;
    Ok(HttpResponse::Ok().json(TotpStartResponse {
        otpauth_uri: started.otpauth_uri,
        qr_svg: started.qr_svg,
    }))
}

/// `POST /api/v1/otp/totp/confirm {code, otp}` → 204.
pub async fn confirm_totp(
    services: web::Data<Services>,
    subscriber: Subscriber,
    origin: ClientOrigin,
    body: web::Json<ConfirmDeviceRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = &subscriber.user_id;
    devices::confirm_totp_from(&services, user_id, &body.code, &body.otp, &origin.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/otp/sms {phone, password}` → 202 (a code is on its way to the new phone).
pub async fn start_sms(
    services: web::Data<Services>,
    subscriber: Subscriber,
    origin: ClientOrigin,
    body: web::Json<SmsDeviceRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = &subscriber.user_id;
    devices::start_sms_from(&services, user_id, &body.phone, &body.password, &origin.0).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /api/v1/otp/sms/confirm {code, otp}` → 204.
pub async fn confirm_sms(
    services: web::Data<Services>,
    subscriber: Subscriber,
    origin: ClientOrigin,
    body: web::Json<ConfirmDeviceRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = &subscriber.user_id;
    devices::confirm_sms_from(&services, user_id, &body.code, &body.otp, &origin.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{operation}` of `POST /api/v1/credentials/{id}/otp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationOtpRequest {
    pub operation: OperationName,
}

/// The operations a code can be asked for, as the wire names them.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationName {
    Sign,
    Activate,
    PinChange,
    Unblock,
    Renew,
}

impl From<OperationName> for OtpOperation {
    fn from(name: OperationName) -> Self {
        match name {
            OperationName::Sign => OtpOperation::Sign,
            OperationName::Activate => OtpOperation::Activate,
            OperationName::PinChange => OtpOperation::PinChange,
            OperationName::Unblock => OtpOperation::Unblock,
            OperationName::Renew => OtpOperation::Renew,
        }
    }
}

/// `POST /api/v1/credentials/{id}/otp {operation}` → 204: texts a code good only for that
/// operation on that credential.
pub async fn send_operation_otp(
    services: web::Data<Services>,
    subscriber: Subscriber,
    path: web::Path<String>,
    body: web::Json<OperationOtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&path)?;
    activation::send_operation_otp(&services, &subscriber.user_id, id, body.operation.into())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
