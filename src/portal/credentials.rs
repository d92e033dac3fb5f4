//! `/api/v1/credentials/{id}/…`.

use actix_web::{web, HttpResponse};

use super::wire::{ActivateRequest, CredentialStatusResponse};
use crate::activation::{self, ActivateCommand};
use crate::error::ApiError;
use crate::extract::{credential_id, Subscriber};
use crate::services::Services;

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
