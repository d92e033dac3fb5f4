//! `credentials/*` for both CSC versions: each handler turns its wire request into one domain
//! call and the result into its version's response.

use actix_web::{web, HttpResponse};

use super::common::{
    certificates_wanted, decode_hashes, description, distinct, hash_alg, num_signatures, otp_type,
    scal_and_multisign, signature_qualifier, CertInfo, KeyInfo,
};
use super::{v1_wire as v1, v2_wire as v2};
use crate::activation::{self, AuthorizeCommand, Authorized};
use crate::credentials;
use crate::error::ApiError;
use crate::extract::{credential_id, ClientOrigin, Subscriber};
use crate::hsm::HashAlg;
use crate::model::{Credential, OtpMethod};
use crate::services::Services;

fn check_user(subscriber: &Subscriber, user_id: Option<&str>) -> Result<(), ApiError> {
    match user_id {
        Some(id) if id != subscriber.user_id => {
            Err(ApiError::invalid_request("Invalid parameter userID"))
        }
        _ => Ok(()),
    }
}

fn sad_response(a: Authorized) -> HttpResponse {
    HttpResponse::Ok().json(v2::SadResponse {
        sad: a.sad,
        expires_in: a.expires_in,
    })
}

fn auth_v2(otp: OtpMethod) -> v2::AuthInfo {
    v2::AuthInfo {
        mode: "explicit",
        expression: "PIN AND OTP",
        objects: vec![
            v2::AuthObject {
                kind: "Password",
                id: "PIN",
                format: "N",
                generator: None,
                label: "PIN",
                description: "The 8-digit signing PIN of the credential",
            },
            v2::AuthObject {
                kind: "Password",
                id: "OTP",
                format: "N",
                generator: Some(match otp {
                    OtpMethod::Sms => "sms",
                    OtpMethod::Totp => "totp",
                }),
                label: "OTP",
                description: "The 6-digit one-time password (SMS or authenticator app)",
            },
        ],
    }
}

fn info_v2(
    services: &Services,
    c: &Credential,
    with_id: bool,
    certificates: usize,
    cert_info: bool,
    otp: Option<OtpMethod>,
) -> v2::InfoResponse {
    let (scal, multisign) = scal_and_multisign(&services.config.csc);
    v2::InfoResponse {
        credential_id: with_id.then(|| c.credential_id.to_string()),
        description: description(c),
        signature_qualifier: signature_qualifier(c),
        key: KeyInfo::of(c),
        cert: CertInfo::of(c, certificates, cert_info),
        auth: otp.map(auth_v2),
        scal,
        multisign,
        lang: services.config.csc.lang.clone(),
    }
}

/// `POST /csc/v2/credentials/list`.
pub async fn list_v2(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v2::ListRequest>,
) -> Result<HttpResponse, ApiError> {
    check_user(&subscriber, body.user_id.as_deref())?;
    let certificates = certificates_wanted(body.certificates.as_deref())?;
    let all = credentials::list(&services, &subscriber.user_id, body.only_valid).await?;
    let otp = if body.credential_info && body.auth_info {
        Some(credentials::otp_method(&services, &subscriber.user_id).await?)
    } else {
        None
    };
    let infos = body.credential_info.then(|| {
        all.iter()
            .map(|c| info_v2(&services, c, true, certificates, body.cert_info, otp))
            .collect()
    });
    Ok(HttpResponse::Ok().json(v2::ListResponse {
        credential_ids: all.iter().map(|c| c.credential_id.to_string()).collect(),
        credential_infos: infos,
        only_valid: body.only_valid.then_some(true),
    }))
}

/// `POST /csc/v1/credentials/list` (paged by `maxResults` / `pageToken`).
pub async fn list_v1(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v1::ListRequest>,
) -> Result<HttpResponse, ApiError> {
    check_user(&subscriber, body.user_id.as_deref())?;
    let max = match body.max_results {
        None => 1000,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid_request("Invalid parameter maxResults: 1 to 1000"))?,
    };
    let start = match body.page_token.as_deref() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::invalid_request("Invalid parameter pageToken"))?,
    };
    let all = credentials::list(&services, &subscriber.user_id, false).await?;
    let page: Vec<String> = all
        .iter()
        .skip(start)
        .take(max)
        .map(|c| c.credential_id.to_string())
        .collect();
    let next = start + page.len();
    Ok(HttpResponse::Ok().json(v1::ListResponse {
        credential_ids: page,
        next_page_token: (next < all.len()).then(|| next.to_string()),
    }))
}

/// What both versions of credentials/info need: the caller's credential, how many
/// certificates to return, and (with `authInfo`) the OTP method.
async fn lookup(
    services: &Services,
    subscriber: &Subscriber,
    credential: &str,
    certificates: Option<&str>,
    auth_info: bool,
) -> Result<(Credential, usize, Option<OtpMethod>), ApiError> {
    let id = credential_id(credential)?;
    let certificates = certificates_wanted(certificates)?;
    let c = credentials::get(services, &subscriber.user_id, id).await?;
    let otp = if auth_info {
        Some(credentials::otp_method(services, &subscriber.user_id).await?)
    } else {
        None
    };
    Ok((c, certificates, otp))
}

/// `POST /csc/v2/credentials/info`.
pub async fn info_v2_handler(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v2::InfoRequest>,
) -> Result<HttpResponse, ApiError> {
    let (c, certificates, otp) = lookup(
        &services,
        &subscriber,
        &body.credential_id,
        body.certificates.as_deref(),
        body.auth_info,
    )
    .await?;
    Ok(HttpResponse::Ok().json(info_v2(
        &services,
        &c,
        false,
        certificates,
        body.cert_info,
        otp,
    )))
}

/// `POST /csc/v1/credentials/info`.
pub async fn info_v1_handler(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v1::InfoRequest>,
) -> Result<HttpResponse, ApiError> {
    let (c, certificates, otp) = lookup(
        &services,
        &subscriber,
        &body.credential_id,
        body.certificates.as_deref(),
        body.auth_info,
    )
    .await?;
    let (scal, multisign) = scal_and_multisign(&services.config.csc);
    Ok(HttpResponse::Ok().json(v1::InfoResponse {
        description: description(&c),
        key: KeyInfo::of(&c),
        cert: CertInfo::of(&c, certificates, body.cert_info),
        auth_mode: "explicit",
        pin: otp.map(|_| v1::PinDescriptor {
            presence: "true",
            format: "N",
            label: "PIN",
            description: "The 8-digit signing PIN of the credential",
        }),
        otp: otp.map(|method| v1::OtpDescriptor {
            presence: "true",
            kind: otp_type(method),
            format: "N",
            label: "OTP",
            description: "The 6-digit one-time password",
            id: "sigillo-otp",
            provider: "sigillo",
        }),
        scal,
        multisign,
        lang: services.config.csc.lang.clone(),
    }))
}

/// `POST /csc/v*/credentials/sendOTP`: texts an OTP to the credential's owner → 204.
pub async fn send_otp(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v2::SendOtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&body.credential_id)?;
    activation::send_otp(&services, &subscriber.user_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Hashes to bind to a SAD, and their algorithm.
type Bound = (Option<Vec<Vec<u8>>>, Option<HashAlg>);

/// Validates the hashes to bind to a SAD.
fn bound_hashes(
    services: &Services,
    field: &str,
    hashes: Option<&[String]>,
    alg: Option<HashAlg>,
) -> Result<Bound, ApiError> {
    match hashes {
        None => Ok((None, alg)),
        Some(hashes) => {
            let max = usize::try_from(services.config.csc.max_signatures).unwrap_or(usize::MAX);
            let (decoded, alg) = decode_hashes(field, hashes, alg, max)?;
            distinct(field, &decoded)?;
            Ok((Some(decoded), alg))
        }
    }
}

/// `POST /csc/v2/credentials/authorize`: PIN + OTP (in `authData`) → SAD.
pub async fn authorize_v2(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v2::AuthorizeRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = credential_id(&body.credential_id)?;
    let alg = hash_alg("hashAlgorithmOID", body.hash_algorithm_oid.as_deref())?;
    let (hashes, alg) = bound_hashes(&services, "hashes", body.hashes.as_deref(), alg)?;
    let n = num_signatures(
        body.num_signatures,
        hashes.as_ref().map(Vec::len),
        services.config.csc.max_signatures,
    )?;
    let factor = |name: &str| {
        body.auth_data
            .iter()
            .find(|d| d.id == name)
            .map(|d| d.value.clone())
    };
    let authorized = activation::authorize(
        &services,
        AuthorizeCommand {
            user_id: subscriber.user_id,
            credential_id: id,
            num_signatures: n,
            hashes,
            hash_alg: alg,
            pin: factor("PIN"),
            otp: factor("OTP"),
        },
    )
    .await?;
    Ok(sad_response(authorized))
}

/// `POST /csc/v1/credentials/authorize`: `PIN` + `OTP` → SAD.
pub async fn authorize_v1(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v1::AuthorizeRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = credential_id(&body.credential_id)?;
    let (hashes, alg) = bound_hashes(&services, "hash", body.hash.as_deref(), None)?;
    let n = num_signatures(
        body.num_signatures,
        hashes.as_ref().map(Vec::len),
        services.config.csc.max_signatures,
    )?;
    let authorized = activation::authorize(
        &services,
        AuthorizeCommand {
            user_id: subscriber.user_id,
            credential_id: id,
            num_signatures: n,
            hashes,
            hash_alg: alg,
            pin: body.pin,
            otp: body.otp,
        },
    )
    .await?;
    Ok(sad_response(authorized))
}

/// `POST /csc/v2/credentials/extendTransaction`.
pub async fn extend_v2(
    services: web::Data<Services>,
    subscriber: Subscriber,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<v2::ExtendRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&body.credential_id)?;
    let a = activation::extend_transaction(&services, &subscriber.user_id, id, &body.sad, &origin)
        .await?;
    Ok(sad_response(a))
}

/// `POST /csc/v1/credentials/extendTransaction`.
pub async fn extend_v1(
    services: web::Data<Services>,
    subscriber: Subscriber,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<v1::ExtendRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&body.credential_id)?;
    let a = activation::extend_transaction(&services, &subscriber.user_id, id, &body.sad, &origin)
        .await?;
    Ok(sad_response(a))
}
