//! The public `/pki/...` endpoints: CRLs, CA certificates, OCSP. Relying parties call them
//! without credentials; every answer comes from memory.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

use super::ocsp::{self, ResponseStatus};
use crate::ca::{ISSUING_NAME, ROOT_NAME};
use crate::error::ApiError;
use crate::services::Services;

/// The largest OCSP request accepted (one asks about at most `ocsp::MAX_REQUESTS`
/// certificates: a few hundred bytes each).
const MAX_OCSP_REQUEST: usize = 16 * 1024;

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "invalid_request",
        format!("no such {what}"),
    )
}

fn der(content_type: &'static str, body: Vec<u8>, max_age: u64) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .body(body)
}

/// `GET /pki/crl/{issuer}.crl`: the issuing CA's current CRL (DER).
pub async fn crl(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let crl = services.pki.crl(&path).ok_or_else(|| not_found("CRL"))?;
    Ok(der("application/pkix-crl", crl.to_vec(), 60))
}

/// `GET /pki/ca/{name}.cer`: a CA certificate (DER), as the caIssuers URLs name it.
pub async fn ca_certificate(
    services: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let cert = match path.as_str() {
        ISSUING_NAME => services.ca.issuing(),
        ROOT_NAME => services.ca.root(),
        _ => return Err(not_found("CA certificate")),
    };
    let body = cert.to_der().map_err(crate::ca::CaError::from)?;
    Ok(der("application/pkix-cert", body, 86_400))
}

fn ocsp_response(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/ocsp-response")
        .body(body)
}

/// `POST /pki/ocsp` (`application/ocsp-request`): an OCSP answer.
pub async fn ocsp_post(services: web::Data<Services>, body: web::Bytes) -> HttpResponse {
    if body.len() > MAX_OCSP_REQUEST {
        return ocsp_response(ocsp::error_response(ResponseStatus::MalformedRequest));
    }
    ocsp_response(services.pki.ocsp(&body, &services.db, &services.ca).await)
}

/// `GET /pki/ocsp/{request}`: the request is the URL-encoded base64 of its DER (RFC 6960
/// appendix A.1).
pub async fn ocsp_get(services: web::Data<Services>, req: HttpRequest) -> HttpResponse {
    let raw = req.match_info().get("request").unwrap_or_default();
    let decoded = percent_decode(raw).and_then(|text| {
        let text = text.trim_end_matches('=');
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .ok()
    });
    match decoded {
        Some(der) if der.len() <= MAX_OCSP_REQUEST => {
            ocsp_response(services.pki.ocsp(&der, &services.db, &services.ca).await)
        }
        _ => ocsp_response(ocsp::error_response(ResponseStatus::MalformedRequest)),
    }
}

/// Percent-decodes `text` (`None` on a malformed escape or non-UTF-8 result).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("MEow%2FqA%3D%3D").unwrap(), "MEow/qA==");
        assert_eq!(percent_decode("plain+text").unwrap(), "plain+text");
        assert!(percent_decode("%4").is_none());
        assert!(percent_decode("%zz").is_none());
    }
}
