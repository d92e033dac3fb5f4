//! `/admin/v1/oauth2/clients`: the operator registers, lists and removes the OAuth2 clients of
//! the authorization server.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::credentials::operator;
use crate::error::ApiError;
use crate::extract::{Admin, ClientOrigin};
use crate::oauth2::clients::{self, Client, NewClient};
use crate::services::Services;
use crate::text::{self, text, ID};

/// `POST /admin/v1/oauth2/clients`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterClientRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub client_id: String,
    /// `confidential` (gets a secret) or `public`.
    #[serde(deserialize_with = "text::<ID, _>")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Serialize)]
pub struct ClientResponse {
    pub client_id: String,
    pub client_type: &'static str,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Shown once, at registration, to confidential clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ClientResponse {
    fn of(c: Client, client_secret: Option<String>) -> ClientResponse {
        ClientResponse {
            client_type: if c.confidential {
                "confidential"
            } else {
                "public"
            },
            client_id: c.client_id,
            redirect_uris: c.redirect_uris,
            scopes: c.scopes,
            created_at: c.created_at,
            client_secret,
        }
    }
}

/// `POST /admin/v1/oauth2/clients` → 201, with the secret of a confidential client shown once.
pub async fn register(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    body: web::Json<RegisterClientRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let confidential = match body.client_type.as_str() {
        "confidential" => true,
        "public" => false,
        _ => {
            return Err(ApiError::invalid_request(
                "client_type: \"confidential\" or \"public\"",
            ))
        }
    };
    for scope in &body.scopes {
        text::param("scopes", scope, ID)?;
    }
    let operator = operator(&services, origin);
    let registered = clients::register(
        &services,
        NewClient {
            client_id: body.client_id,
            confidential,
            redirect_uris: body.redirect_uris,
            scopes: body.scopes,
        },
        &operator,
    )
    .await?;
    Ok(HttpResponse::Created().json(ClientResponse::of(registered.client, registered.secret)))
}

/// `GET /admin/v1/oauth2/clients` → every client (never a secret).
pub async fn list(services: web::Data<Services>, _: Admin) -> Result<HttpResponse, ApiError> {
    let all: Vec<ClientResponse> = clients::list(&services)
        .await?
        .into_iter()
        .map(|c| ClientResponse::of(c, None))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "clients": all })))
}

/// `DELETE /admin/v1/oauth2/clients/{client_id}` → 204.
pub async fn delete(
    services: web::Data<Services>,
    _: Admin,
    origin: ClientOrigin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client_id = text::path_param("client_id", path.into_inner())?;
    let operator = operator(&services, origin);
    clients::delete(&services, &client_id, &operator).await?;
    Ok(HttpResponse::NoContent().finish())
}
