//! `/admin/v1/users` and their credentials.

use actix_web::{web, HttpResponse};

use super::credentials::operator;
use super::wire::{
    CreateCredentialRequest, CreateCredentialResponse, CreateUserRequest, CreateUserResponse,
};
use crate::enrolment;
use crate::error::ApiError;
use crate::extract::{Admin, ClientOrigin};
use crate::services::Services;
use crate::text;

/// `POST /admin/v1/users` → 201.
pub async fn create_user(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let operator = operator(&services, origin);
    let created =
        enrolment::create_user_by(&services, body.into_inner().try_into()?, &operator).await?;
    Ok(HttpResponse::Created().json(CreateUserResponse::from(created)))
}

/// `POST /admin/v1/users/{user_id}/credentials` → 201, with the PUK shown this once.
pub async fn create_credential(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    path: web::Path<String>,
    body: web::Json<CreateCredentialRequest>,
) -> Result<HttpResponse, ApiError> {
    let operator = operator(&services, origin);
    let user_id = text::path_param("user_id", path.into_inner())?;
    let command = body.into_inner().into_command(user_id)?;
    let created = enrolment::create_credential_by(&services, command, &operator).await?;
    Ok(HttpResponse::Created().json(CreateCredentialResponse::from(created)))
}
