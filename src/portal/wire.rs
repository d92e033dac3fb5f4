//! Portal request and response shapes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub puk: String,
    pub new_pin: String,
    pub otp: String,
}

#[derive(Serialize)]
pub struct CredentialStatusResponse {
    pub credential_id: Uuid,
    pub status: &'static str,
}
