//! CSC v2 request and response shapes (serde), exactly as the spec names the fields.

use serde::{Deserialize, Serialize};

/// `auth/login` response.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub access_token: String,
    pub expires_in: u64,
}

/// `credentials/sendOTP` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendOtpRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    #[allow(dead_code)]
    pub client_data: Option<String>,
}
