//! `signatures/signHash` for both CSC versions.

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::common::{decode_hashes, hash_alg, sign_algo_params};
use super::{v1_wire as v1, v2_wire as v2};
use crate::error::ApiError;
use crate::extract::{credential_id, Bearer, ClientOrigin};
use crate::hsm::SignAlgo;
use crate::services::Services;
use crate::signing::{self, SignHashCommand};

/// Validates the common parts and signs.
#[allow(clippy::too_many_arguments)]
async fn sign(
    services: &Services,
    Bearer(claims): Bearer,
    ClientOrigin(origin): ClientOrigin,
    credential: &str,
    sad: String,
    (field, hash_field): (&str, &str),
    hashes: &[String],
    hash_oid: Option<&str>,
    sign_algo: &str,
    params: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let credential_id = credential_id(credential)?;
    // A credential access token (OAuth2) carries its SAD: the request may omit it, and may
    // not name another.
    let sad = match &claims.sad {
        Some(bound) if sad.is_empty() || sad == *bound => bound.clone(),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "Invalid parameter SAD: the credential access token carries its own",
            ))
        }
        None => sad,
    };
    if sad.is_empty() || sad.len() > 256 {
        return Err(ApiError::invalid_request("Invalid parameter SAD"));
    }
    hash_alg(hash_field, hash_oid)?;
    let params = sign_algo_params(params)?;
    let algo = SignAlgo::resolve(sign_algo, hash_oid, params.as_deref())?;
    let (hashes, _) = decode_hashes(
        field,
        hashes,
        Some(algo.hash()),
        services.config.csc.max_hashes,
    )?;
    let signatures = signing::sign_hash(
        services,
        SignHashCommand {
            claims,
            credential_id,
            sad,
            hashes,
            algo,
            origin,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(v2::SignHashResponse {
        signatures: signatures.iter().map(|s| STANDARD.encode(s)).collect(),
    }))
}

/// `POST /csc/v2/signatures/signHash`.
pub async fn sign_hash_v2(
    services: web::Data<Services>,
    bearer: Bearer,
    origin: ClientOrigin,
    body: web::Json<v2::SignHashRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.operation_mode.as_deref().is_some_and(|m| m != "S") {
        return Err(ApiError::invalid_request(
            "Invalid parameter operationMode: only synchronous (S) is supported",
        ));
    }
    sign(
        &services,
        bearer,
        origin,
        &body.credential_id,
        body.sad,
        ("hashes", "hashAlgorithmOID"),
        &body.hashes,
        body.hash_algorithm_oid.as_deref(),
        &body.sign_algo,
        body.sign_algo_params.as_deref(),
    )
    .await
}

/// `POST /csc/v1/signatures/signHash`.
pub async fn sign_hash_v1(
    services: web::Data<Services>,
    bearer: Bearer,
    origin: ClientOrigin,
    body: web::Json<v1::SignHashRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    sign(
        &services,
        bearer,
        origin,
        &body.credential_id,
        body.sad,
        ("hash", "hashAlgo"),
        &body.hash,
        body.hash_algo.as_deref(),
        &body.sign_algo,
        body.sign_algo_params.as_deref(),
    )
    .await
}
