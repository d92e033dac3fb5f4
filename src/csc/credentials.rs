//! `credentials/*` for both CSC versions: each handler turns its wire request into one domain
//! call and the result into its version's response.

use actix_web::{web, HttpResponse};

use super::common::{
    certificates_wanted, decode_hashes, description, distinct, hash_alg, num_signatures, otp_type,
    scal_and_multisign, signature_qualifier, CertInfo, KeyInfo,
};
use super::{v1_wire as v1, v2_wire as v2};
use crate::activation::{self, AuthorizeCommand, Authorized, Rebind};
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

/// How a credential is authorised for signing (CSC v2 `auth/mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The client sends the PIN and OTP to `credentials/authorize` for a SAD.
    Explicit,
    /// The client authorises through the OAuth2 authorization server (scope `credential`);
    /// `credentials/authorize` is not for it (CSC v2 §11.6).
    OAuth2Code,
}

impl AuthMode {
    fn as_str(self) -> &'static str {
        match self {
            AuthMode::Explicit => "explicit",
            AuthMode::OAuth2Code => "oauth2code",
        }
    }
}

/// The `auth/mode` of `credential` for the caller: the one place that decides it. Every
/// credential is authorised explicitly (PIN + OTP in `credentials/authorize`) today; once the
/// OAuth2 authorization server issues service tokens, a caller holding one of those should see
/// `OAuth2Code` here (the decision reads `subscriber.claims`).
pub fn auth_mode(_subscriber: &Subscriber, _credential: &Credential) -> AuthMode {
    AuthMode::Explicit
}

fn auth_v2(mode: AuthMode, otp: OtpMethod) -> v2::AuthInfo {
    if mode == AuthMode::OAuth2Code {
        return v2::AuthInfo {
            mode: mode.as_str(),
            expression: None,
            objects: Vec::new(),
        };
    }
    v2::AuthInfo {
        mode: mode.as_str(),
        expression: Some("PIN AND OTP"),
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

/// One credential as v2 describes it. `auth` is always complete (its `mode` is required, and
/// `objects` with it under `explicit`, whatever `authInfo` says).
fn info_v2(
    services: &Services,
    subscriber: &Subscriber,
    c: &Credential,
    with_id: bool,
    certificates: usize,
    cert_info: bool,
    otp: OtpMethod,
) -> v2::InfoResponse {
    let (scal, multisign) = scal_and_multisign(&services.config.csc);
    v2::InfoResponse {
        credential_id: with_id.then(|| c.credential_id.to_string()),
        description: description(c),
        signature_qualifier: signature_qualifier(c),
        key: KeyInfo::of(c),
        cert: CertInfo::of(c, certificates, cert_info),
        auth: auth_v2(auth_mode(subscriber, c), otp),
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
    // CSC v2 §11.4: with a user's own service authorization (the only kind here) `userID`
    // SHALL NOT be given, not even the caller's own (v1 accepts that).
    if body.user_id.is_some() {
        return Err(ApiError::invalid_request("userID parameter MUST be null"));
    }
    let certificates = certificates_wanted(body.certificates.as_deref())?;
    let all = credentials::list(&services, &subscriber.user_id, body.only_valid).await?;
    let infos = if body.credential_info {
        let otp = credentials::otp_method(&services, &subscriber.user_id).await?;
        Some(
            all.iter()
                .map(|c| {
                    info_v2(
                        &services,
                        &subscriber,
                        c,
                        true,
                        certificates,
                        body.cert_info,
                        otp,
                    )
                })
                .collect(),
        )
    } else {
        None
    };
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
        false,
    )
    .await?;
    // `auth` is always complete in v2, whatever `authInfo` says.
    let otp = match otp {
        Some(otp) => otp,
        None => credentials::otp_method(&services, &subscriber.user_id).await?,
    };
    Ok(HttpResponse::Ok().json(info_v2(
        &services,
        &subscriber,
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

/// `POST /csc/v2/credentials/getChallenge {credentialID, authObjectID: "OTP"}`: texts an OTP
/// to the credential's owner (the challenge goes out of band) → 204. The OTP is the only
/// object with a challenge; an authenticator-app (TOTP) user has none to send.
pub async fn get_challenge(
    services: web::Data<Services>,
    subscriber: Subscriber,
    body: web::Json<v2::GetChallengeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&body.credential_id)?;
    if body.auth_object_id != "OTP" {
        return Err(ApiError::invalid_request("Invalid parameter authObjectID"));
    }
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
    // v2 may authorise more signatures than it binds hashes now: the others are bound one by
    // one by extendTransaction (a PDF's later hashes depend on its earlier signatures).
    let n = num_signatures(
        body.num_signatures,
        None,
        services.config.csc.max_signatures,
    )?;
    if hashes
        .as_ref()
        .is_some_and(|h| usize::try_from(n).is_ok_and(|n| h.len() > n))
    {
        return Err(ApiError::invalid_request(
            "Invalid parameter numSignatures: fewer than the hashes",
        ));
    }
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
    .await
    .map_err(crate::error::csc_v2_authorize)?;
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
    let alg = hash_alg("hashAlgorithmOID", body.hash_algorithm_oid.as_deref())?;
    let (hashes, alg) = bound_hashes(&services, "hashes", body.hashes.as_deref(), alg)?;
    let rebind = hashes.as_deref().map(|hashes| Rebind {
        hashes,
        hash_alg: alg,
    });
    let a = activation::extend_transaction(
        &services,
        &subscriber.user_id,
        id,
        &body.sad,
        rebind,
        &origin,
    )
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
    let a = activation::extend_transaction(
        &services,
        &subscriber.user_id,
        id,
        &body.sad,
        None,
        &origin,
    )
    .await?;
    Ok(sad_response(a))
}
