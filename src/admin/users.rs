//! `/admin/v1/users` and their credentials.

use actix_web::{web, HttpResponse};

use super::credentials::operator;
use super::wire::{
    CreateCredentialRequest, CreateCredentialResponse, CreateUserRequest, CreateUserResponse,
    EnvelopeResponse, SetupLinkResponse,
};
use crate::enrolment;
use crate::error::ApiError;
use crate::extract::{credential_id, Admin, ClientOrigin};
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

/// `POST /admin/v1/users/{user_id}/setup-link` → 201: a new setup link e-mailed (the earlier
/// ones stop working), while the setup is not done.
pub async fn send_setup_link(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let operator = operator(&services, origin);
    let user_id = text::path_param("user_id", path.into_inner())?;
    let expires_at = enrolment::resend_setup_link(&services, &user_id, &operator).await?;
    Ok(HttpResponse::Created().json(SetupLinkResponse::new(user_id, expires_at)))
}

/// `POST /admin/v1/credentials/{credential_id}/envelope` → 200: a lost envelope replaced
/// before activation (new PUK, new emergency code; the old ones stop working).
pub async fn replace_envelope(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let operator = operator(&services, origin);
    let id = credential_id(&path)?;
    let state = enrolment::replace_envelope(&services, id, &operator).await?;
    Ok(HttpResponse::Ok().json(EnvelopeResponse::new(id, state)))
}

/// `POST /admin/v1/users/{user_id}/credentials` → 201; the PUK goes in the sealed envelope.
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
