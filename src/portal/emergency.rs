//! `POST /api/v1/emergency-suspension`: the subscriber suspends every signing credential with
//! user id + emergency code, without signing in.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::activation::emergency;
use crate::error::ApiError;
use crate::extract::ClientOrigin;
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
