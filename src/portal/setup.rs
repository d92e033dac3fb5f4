//! Enrolment on the subscriber's side: `POST /api/v1/setup` (the e-mailed link's token, the
//! password and the envelope passphrase; no sign-in), `POST /api/v1/password-policy` (the
//! policy checked by the server, for a live display), and the first authenticator app
//! (`POST /api/v1/otp/totp/enrol`, `/api/v1/otp/totp/enrol/confirm`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::wire::TotpStartResponse;
use crate::auth::policy_report;
use crate::devices;
use crate::enrolment;
use crate::error::ApiError;
use crate::extract::{ClientOrigin, Subscriber};
use crate::services::Services;
use crate::text::{text, SECRET};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub token: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub password: String,
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub passphrase: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub password: String,
}

#[derive(Serialize)]
pub struct RuleResult {
    pub rule: &'static str,
    pub ok: bool,
}

#[derive(Serialize)]
pub struct PolicyResponse {
    pub ok: bool,
    pub rules: Vec<RuleResult>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpOnly {
    #[serde(deserialize_with = "text::<SECRET, _>")]
    pub otp: String,
}

/// `POST /api/v1/setup {token, password, passphrase}` → 204.
pub async fn setup(
    services: web::Data<Services>,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<SetupRequest>,
) -> Result<HttpResponse, ApiError> {
    enrolment::complete_setup(
        &services,
        &body.token,
        &body.password,
        &body.passphrase,
        &origin,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/password-policy {password}` → `{ok, rules: [{rule, ok}]}`.
pub async fn password_policy(body: web::Json<PolicyRequest>) -> HttpResponse {
    let rules: Vec<RuleResult> = policy_report(&body.password)
        .into_iter()
        .map(|(rule, ok)| RuleResult {
            rule: rule.id(),
            ok,
        })
        .collect();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(PolicyResponse {
            ok: rules.iter().all(|r| r.ok),
            rules,
        })
}

/// `POST /api/v1/otp/totp/enrol` → `{otpauth_uri, qr_svg}` (only while no app is enrolled).
pub async fn enrol_totp(
    services: web::Data<Services>,
    subscriber: Subscriber,
) -> Result<HttpResponse, ApiError> {
    let started = devices::enrol_first_totp(&services, &subscriber.user_id).await?;
    Ok(HttpResponse::Ok().json(TotpStartResponse {
        otpauth_uri: started.otpauth_uri,
        qr_svg: started.qr_svg,
    }))
}

/// `POST /api/v1/otp/totp/enrol/confirm {otp}` → 204.
pub async fn confirm_totp_enrolment(
    services: web::Data<Services>,
    subscriber: Subscriber,
    ClientOrigin(origin): ClientOrigin,
    body: web::Json<OtpOnly>,
) -> Result<HttpResponse, ApiError> {
    devices::confirm_first_totp(&services, &subscriber.user_id, &body.otp, &origin).await?;
    Ok(HttpResponse::NoContent().finish())
}
