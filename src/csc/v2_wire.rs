//! CSC v2 request and response shapes (serde), named exactly as the spec names them.

use serde::{Deserialize, Serialize};

use super::common::{CertInfo, KeyInfo};
use crate::text::{opt_text, present, text, ID, SECRET, TOKEN};

/// `auth/login` request (both versions).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    #[serde(default)]
    pub remember_me: bool,
    /// Snake case in the spec, unlike `rememberMe`.
    #[serde(
        rename = "refresh_token",
        default,
        deserialize_with = "opt_text::<TOKEN, _>"
    )]
    pub refresh_token: Option<String>,
}

/// `auth/login` response (both versions).
#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub expires_in: u64,
}

/// `auth/revoke` request (both versions).
#[derive(Debug, Deserialize)]
pub struct RevokeRequest {
    #[serde(deserialize_with = "text::<TOKEN, _>")]
    pub token: String,
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub token_type_hint: Option<String>,
}

/// `credentials/sendOTP` request (both versions).
#[derive(Debug, Deserialize)]
pub struct SendOtpRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
}

/// `credentials/getChallenge` request (v2): the OTP object's challenge is an SMS.
#[derive(Debug, Deserialize)]
pub struct GetChallengeRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    #[serde(rename = "authObjectID", deserialize_with = "text::<ID, _>")]
    pub auth_object_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    #[serde(rename = "userID", default, deserialize_with = "opt_text::<ID, _>")]
    pub user_id: Option<String>,
    #[serde(default)]
    pub credential_info: bool,
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub certificates: Option<String>,
    #[serde(default)]
    pub cert_info: bool,
    #[serde(default)]
    pub auth_info: bool,
    #[serde(default)]
    pub only_valid: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    #[serde(rename = "credentialIDs")]
    pub credential_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_infos: Option<Vec<InfoResponse>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_valid: Option<bool>,
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

/// One authentication object of `auth/objects`.
#[derive(Debug, Serialize)]
pub struct AuthObject {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'static str,
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<&'static str>,
    pub label: &'static str,
    pub description: &'static str,
}

/// `auth`: always present with its `mode` (required by v2.0.0.2); `expression` and the
/// `objects` a client sends in `authData` describe the `explicit` mode (under `oauth2code`
/// the authorization server collects the factors: no objects).
#[derive(Debug, Serialize)]
pub struct AuthInfo {
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<&'static str>,
    pub objects: Vec<AuthObject>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoResponse {
    #[serde(rename = "credentialID", skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_qualifier: Option<&'static str>,
    pub key: KeyInfo,
    pub cert: CertInfo,
    pub auth: AuthInfo,
    #[serde(rename = "SCAL")]
    pub scal: String,
    pub multisign: usize,
    pub lang: String,
}

#[derive(Debug, Deserialize)]
pub struct AuthData {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub id: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    pub num_signatures: i64,
    #[serde(default, deserialize_with = "present")]
    pub hashes: Option<Vec<String>>,
    #[serde(
        rename = "hashAlgorithmOID",
        default,
        deserialize_with = "opt_text::<ID, _>"
    )]
    pub hash_algorithm_oid: Option<String>,
    #[serde(default)]
    pub auth_data: Vec<AuthData>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SadResponse {
    #[serde(rename = "SAD")]
    pub sad: String,
    pub expires_in: u64,
}

/// `credentials/extendTransaction` request: under SCAL2, `hashes` (with `hashAlgorithmOID`)
/// are what the new SAD signs.
#[derive(Debug, Deserialize)]
pub struct ExtendRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    #[serde(rename = "SAD", deserialize_with = "text::<TOKEN, _>")]
    pub sad: String,
    #[serde(default)]
    pub hashes: Option<Vec<String>>,
    #[serde(
        rename = "hashAlgorithmOID",
        default,
        deserialize_with = "opt_text::<ID, _>"
    )]
    pub hash_algorithm_oid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignHashRequest {
    #[serde(rename = "credentialID", deserialize_with = "text::<ID, _>")]
    pub credential_id: String,
    /// Absent with a credential access token (OAuth2 scope `credential`), which carries it.
    #[serde(rename = "SAD", default, deserialize_with = "text::<TOKEN, _>")]
    pub sad: String,
    pub hashes: Vec<String>,
    #[serde(
        rename = "hashAlgorithmOID",
        default,
        deserialize_with = "opt_text::<ID, _>"
    )]
    pub hash_algorithm_oid: Option<String>,
    #[serde(deserialize_with = "text::<ID, _>")]
    pub sign_algo: String,
    #[serde(default, deserialize_with = "opt_text::<TOKEN, _>")]
    pub sign_algo_params: Option<String>,
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub operation_mode: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SignHashResponse {
    pub signatures: Vec<String>,
}

/// `signatures/timestamp` request: a hash to be time-stamped by the service's TSA.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampRequest {
    #[serde(deserialize_with = "text::<ID, _>")]
    pub hash: String,
    #[serde(rename = "hashAlgorithmOID", deserialize_with = "text::<ID, _>")]
    pub hash_algorithm_oid: String,
    /// Hex-encoded; repeated in the token.
    #[serde(default, deserialize_with = "opt_text::<ID, _>")]
    pub nonce: Option<String>,
    #[serde(default, deserialize_with = "opt_text::<TOKEN, _>")]
    pub client_data: Option<String>,
}

/// `signatures/timestamp` response (both versions).
#[derive(Debug, Serialize)]
pub struct TimestampResponse {
    /// Base64 DER of the RFC 3161 TimeStampToken.
    pub timestamp: String,
}
