//! CSC v1.0.4.0 request and response shapes: the same operations as v2 with v1 names
//! (`hash`, `hashAlgo`, `PIN`, `OTP`, `authMode`, PIN/OTP descriptors, paging).

use serde::{Deserialize, Serialize};

use super::common::{CertInfo, KeyInfo};
use crate::text::{opt_text, present, text, ID, SECRET, TOKEN};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    #[serde(rename = "userID", default, deserialize_with = "opt_text::<ID, _>")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "opt_text::<TOKEN, _>")]
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    #[serde(rename = "credentialIDs")]
    pub credential_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub certificates: Option<String>,
    #[serde(default)]
    pub cert_info: bool,
    #[serde(default)]
    pub auth_info: bool,
}

#[derive(Debug, Serialize)]
pub struct PinDescriptor {
    pub presence: &'static str,
    pub format: &'static str,
    pub label: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Serialize)]
pub struct OtpDescriptor {
    pub presence: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub format: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    #[serde(rename = "ID")]
    pub id: &'static str,
    pub provider: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoResponse {
    pub description: String,
    pub key: KeyInfo,
    pub cert: CertInfo,
    pub auth_mode: &'static str,
    #[serde(rename = "PIN", skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinDescriptor>,
    #[serde(rename = "OTP", skip_serializing_if = "Option::is_none")]
    pub otp: Option<OtpDescriptor>,
    #[serde(rename = "SCAL")]
    pub scal: String,
    pub multisign: usize,
    pub lang: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    pub num_signatures: i64,
    #[serde(default, deserialize_with = "present")]
    pub hash: Option<Vec<String>>,
    #[serde(rename = "PIN", default, deserialize_with = "opt_text::<SECRET, _>")]
    pub pin: Option<String>,
    #[serde(rename = "OTP", default, deserialize_with = "opt_text::<SECRET, _>")]
    pub otp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ExtendRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    #[serde(rename = "SAD", deserialize_with = "text::<TOKEN, _>")]
    pub sad: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignHashRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    #[serde(rename = "SAD", deserialize_with = "text::<TOKEN, _>")]
    pub sad: String,
    pub hash: Vec<String>,
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub hash_algo: Option<String>,
    #[serde(deserialize_with = "text::<ID, _>")]
    pub sign_algo: String,
    #[serde(default, deserialize_with = "opt_text::<TOKEN, _>")]
    pub sign_algo_params: Option<String>,
}

/// `signatures/timestamp` request (v1 names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub hash: String,
    #[serde(deserialize_with = "text::<ID, _>")]
    pub hash_algo: String,
    /// Hex-encoded; repeated in the token.
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub nonce: Option<String>,
    #[serde(default, deserialize_with = "opt_text::<TOKEN, _>")]
    pub client_data: Option<String>,
}
