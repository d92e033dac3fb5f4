//! `/api/v1/credentials/{id}/…`.

use actix_web::{web, HttpResponse};

use time::OffsetDateTime;

use super::wire::{
    ActivateRequest, ChangePasswordRequest, ChangePinRequest, CredentialList,
    CredentialStatusResponse, CredentialView, NotificationList, RenewRequest, UnblockRequest,
};
use crate::activation::{self, ActivateCommand, PinChange, PinChangeCommand};
use crate::error::ApiError;
use crate::extract::{credential_id, Subscriber};
use crate::renewal::{self, RenewCommand};
use crate::services::Services;
use crate::{auth, credentials};

/// `POST /api/v1/credentials/{id}/activate` `{puk, new_pin, otp}`.
pub async fn activate(
    services: web::Data<Services>,
    subscriber: Subscriber,
    path: web::Path<String>,
    body: web::Json<ActivateRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&path)?;
    let body = body.into_inner();
    let status = activation::activate(
        &services,
        ActivateCommand {
            user_id: subscriber.user_id,
            credential_id: id,
            puk: body.puk,
            new_pin: body.new_pin,
            otp: body.otp,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(CredentialStatusResponse {
        credential_id: id,
        status: status.as_str(),
    }))
}

/// `GET /api/v1/credentials`: the caller's credentials with validity and renewal facts.
pub async fn list(
    services: web::Data<Services>,
    subscriber: Subscriber,
) -> Result<HttpResponse, ApiError> {
    let all = credentials::list_for_portal(&services, &subscriber.user_id).await?;
    let now = OffsetDateTime::now_utc();
    let window = services.config.lifecycle.renewal_window_days;
    Ok(HttpResponse::Ok().json(CredentialList {
        credentials: all
            .iter()
            .map(|c| CredentialView::of(c, now, window))
            .collect(),
    }))
}

async fn pin_change(
    services: &Services,
    subscriber: Subscriber,
    path: &str,
    change: PinChange,
    new_pin: String,
    otp: String,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(path)?;
    let status = activation::change_pin(
        services,
        PinChangeCommand {
            user_id: subscriber.user_id,
            credential_id: id,
            change,
            new_pin,
            otp,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(CredentialStatusResponse {
        credential_id: id,
        status: status.as_str(),
    }))
}

/// `POST /api/v1/credentials/{id}/pin` `{pin, new_pin, otp}`.
pub async fn change_pin(
    services: web::Data<Services>,
    subscriber: Subscriber,
    path: web::Path<String>,
    body: web::Json<ChangePinRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    pin_change(
        &services,
        subscriber,
        &path,
        PinChange::WithPin { pin: b.pin },
        b.new_pin,
        b.otp,
    )
    .await
}

/// `POST /api/v1/credentials/{id}/unblock` `{puk, new_pin, otp}`.
pub async fn unblock(
    services: web::Data<Services>,
    subscriber: Subscriber,
    path: web::Path<String>,
    body: web::Json<UnblockRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    pin_change(
        &services,
        subscriber,
        &path,
        PinChange::WithPuk { puk: b.puk },
        b.new_pin,
        b.otp,
    )
    .await
}

/// `POST /api/v1/password` `{password, new_password}` → 204.
pub async fn change_password(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    auth::change_password(
        &services,
        &subscriber.user_id,
        &body.password,
        &body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/credentials/{id}/renew` `{confirm_identity, pin, otp, coupon}` → the renewed
/// credential, as in the list.
pub async fn renew(
    services: web::Data<Services>,
    subscriber: Subscriber,
    path: web::Path<String>,
    body: web::Json<RenewRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&path)?;
    let b = body.into_inner();
    let renewed = renewal::renew(
        &services,
        RenewCommand {
            user_id: subscriber.user_id,
            credential_id: id,
            confirm_identity: b.confirm_identity,
            pin: b.pin,
            otp: b.otp,
            coupon: b.coupon,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(CredentialView::of(
        &renewed,
        OffsetDateTime::now_utc(),
        services.config.lifecycle.renewal_window_days,
    )))
}

/// `GET /api/v1/notifications`: the expiry notices sent to the caller.
pub async fn notifications(
    services: web::Data<Services>,
    subscriber: Subscriber,
) -> Result<HttpResponse, ApiError> {
    let sent = credentials::notifications(&services, &subscriber.user_id).await?;
    Ok(HttpResponse::Ok().json(NotificationList {
        notifications: sent.into_iter().map(Into::into).collect(),
    }))
}
