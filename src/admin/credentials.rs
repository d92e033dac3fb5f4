//! `/admin/v1/credentials/{credential_id}/suspend|resume|revoke`.

use actix_web::{web, HttpResponse};

use super::wire::{CouponsResponse, CreateCouponsRequest, StatusChangeRequest, StatusResponse};
use crate::db::repo::credentials::OperatorChange;
use crate::error::ApiError;
use crate::extract::{credential_id, Admin, ClientOrigin};
use crate::model::Operator;
use crate::services::Services;
use crate::{lifecycle, renewal};

/// The operator behind the admin token, as the audit names it.
pub(super) fn operator(services: &Services, ClientOrigin(origin): ClientOrigin) -> Operator {
    Operator {
        name: services.config.security.admin_name.clone(),
        origin,
    }
}

async fn change(
    services: web::Data<Services>,
    origin: ClientOrigin,
    path: web::Path<String>,
    body: web::Json<StatusChangeRequest>,
    change: OperatorChange,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&path)?;
    if body.reason_code.is_some() && change != OperatorChange::Revoke {
        return Err(ApiError::invalid_request(
            "reason_code: only a revocation takes one (a suspension is certificateHold)",
        ));
    }
    let operator = operator(&services, origin);
    let status = lifecycle::change_status(
        &services,
        id,
        change,
        &body.reason,
        body.reason_code,
        &operator,
    )
    .await?;
    Ok(HttpResponse::Ok().json(StatusResponse {
        credential_id: id,
        status: status.as_str(),
    }))
}

/// `POST /admin/v1/credentials/{credential_id}/suspend` `{reason}`.
pub async fn suspend(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    path: web::Path<String>,
    body: web::Json<StatusChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    change(services, origin, path, body, OperatorChange::Suspend).await
}

/// `POST /admin/v1/credentials/{credential_id}/resume` `{reason}`.
pub async fn resume(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    path: web::Path<String>,
    body: web::Json<StatusChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    change(services, origin, path, body, OperatorChange::Resume).await
}

/// `POST /admin/v1/credentials/{credential_id}/revoke` `{reason}`.
pub async fn revoke(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    path: web::Path<String>,
    body: web::Json<StatusChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    change(services, origin, path, body, OperatorChange::Revoke).await
}

/// `POST /admin/v1/coupons` `{count}` → 201 `{coupons}`: single-use renewal coupons.
pub async fn create_coupons(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    body: web::Json<CreateCouponsRequest>,
) -> Result<HttpResponse, ApiError> {
    let operator = operator(&services, origin);
    let coupons = renewal::create_coupons(&services, body.count, &operator).await?;
    Ok(HttpResponse::Created().json(CouponsResponse { coupons }))
}
