//! The two doors to the time-stamping authority: CSC `signatures/timestamp` (JSON, for a
//! signed-in subscriber) and RFC 3161 over HTTP (`POST /tsa`, open to any relying party).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::common::{decode_hashes, hash_alg};
use super::{v1_wire as v1, v2_wire as v2};
use crate::error::ApiError;
use crate::extract::Subscriber;
use crate::pki::tsa::{self, StampRequest, Tsa};
use crate::services::Services;

const QUERY: &str = "application/timestamp-query";
const REPLY: &str = "application/timestamp-reply";

/// Largest query read: a v1 query without extensions is under 200 bytes.
const MAX_QUERY: usize = 4096;

fn enabled(services: &Services) -> Result<&Tsa, ApiError> {
    services.tsa.as_ref().ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "invalid_request",
            "the time-stamping authority is not enabled",
        )
    })
}

fn reply(status: actix_web::http::StatusCode, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, REPLY))
        .body(body)
}

/// `POST /tsa`: a DER TimeStampReq in, a DER TimeStampResp out. Every query that reaches the
/// TSA gets a TimeStampResp (a refusal is a rejection with its PKIFailureInfo, HTTP 200); when
/// the HSM cannot sign, a systemFailure rejection with 503 (and Retry-After).
pub async fn rfc3161(
    services: web::Data<Services>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let tsa = enabled(&services)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim());
    if !content_type.is_some_and(|t| t.eq_ignore_ascii_case(QUERY)) {
        return Ok(reply(
            actix_web::http::StatusCode::OK,
            tsa::rejection_bad_request("the body must be application/timestamp-query"),
        ));
    }
    if body.len() > MAX_QUERY {
        return Ok(reply(
            actix_web::http::StatusCode::OK,
            tsa::rejection_bad_request("the query is too large"),
        ));
    }
    match tsa.reply(&body).await {
        Ok(answer) => Ok(reply(actix_web::http::StatusCode::OK, answer)),
        Err(e) => {
            let api = ApiError::from(e);
            let mut response = reply(api.status, tsa::system_failure_reply());
            if let Some(seconds) = api.retry_after {
                if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            Ok(response)
        }
    }
}

/// `nonce`: hex, 1 to 64 digits (up to 256 bits).
fn nonce(text: Option<&str>) -> Result<Option<Vec<u8>>, ApiError> {
    text.map(|t| {
        let bad = || ApiError::invalid_request("Invalid parameter nonce: 1 to 64 hex digits");
        if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let even = if t.len() % 2 == 1 {
            format!("0{t}")
        } else {
            t.to_owned()
        };
        hex::decode(even).map_err(|_| bad())
    })
    .transpose()
}

async fn stamp(
    services: &Services,
    (hash_field, alg_field): (&str, &str),
    hash: String,
    hash_oid: &str,
    nonce_text: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let tsa = enabled(services)?;
    let alg = hash_alg(alg_field, Some(hash_oid))?
        .ok_or_else(|| ApiError::invalid_request(format!("Missing parameter {alg_field}")))?;
    let (mut digests, _) = decode_hashes(hash_field, &[hash], Some(alg), 1)?;
    let digest = digests
        .pop()
        .ok_or_else(|| ApiError::invalid_request(format!("Missing parameter {hash_field}")))?;
    let token = tsa
        .stamp(StampRequest {
            hash: alg,
            digest,
            nonce: nonce(nonce_text)?,
        })
        .await?;
    Ok(HttpResponse::Ok().json(v2::TimestampResponse {
        timestamp: STANDARD.encode(token),
    }))
}

/// `POST /csc/v2/signatures/timestamp`.
pub async fn timestamp_v2(
    services: web::Data<Services>,
    _subscriber: Subscriber,
    body: web::Json<v2::TimestampRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    stamp(
        &services,
        ("hash", "hashAlgorithmOID"),
        body.hash,
        &body.hash_algorithm_oid,
        body.nonce.as_deref(),
    )
    .await
}

/// `POST /csc/v1/signatures/timestamp`.
pub async fn timestamp_v1(
    services: web::Data<Services>,
    _subscriber: Subscriber,
    body: web::Json<v1::TimestampRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    stamp(
        &services,
        ("hash", "hashAlgo"),
        body.hash,
        &body.hash_algo,
        body.nonce.as_deref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::nonce;

    #[test]
    fn nonces_are_hex_of_up_to_256_bits() {
        assert_eq!(nonce(None).unwrap(), None);
        assert_eq!(nonce(Some("abc")).unwrap(), Some(vec![0x0a, 0xbc]));
        assert_eq!(nonce(Some(&"f".repeat(64))).unwrap().unwrap().len(), 32);
        for bad in ["", "xyz", "0x12", &"1".repeat(65)] {
            assert!(nonce(Some(bad)).is_err(), "{bad}");
        }
    }
}
