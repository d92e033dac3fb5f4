//! `info`: what this service is and what it implements (GET or POST, no authentication).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::hsm::mechanism::SIGN_ALGO_OIDS;
use crate::services::Services;

/// The methods served under both versions.
pub const METHODS: [&str; 10] = [
    "auth/login",
    "auth/revoke",
    "credentials/list",
    "credentials/info",
    "credentials/sendOTP",
    "credentials/authorize",
    "credentials/extendTransaction",
    "signatures/signHash",
    "signatures/timestamp",
    "info",
];

/// `GET|POST /csc/v2/info`.
pub async fn info_v2(services: web::Data<Services>) -> HttpResponse {
    let c = &services.config.csc;
    HttpResponse::Ok().json(json!({
        "specs": "2.0.0.2",
        "name": c.name,
        "logo": c.logo,
        "region": c.region,
        "lang": c.lang,
        "description": c.description,
        "authType": ["basic"],
        "asynchronousOperationMode": false,
        "methods": METHODS,
        "validationInfo": false,
        "signAlgorithms": { "algos": SIGN_ALGO_OIDS },
    }))
}

/// `GET|POST /csc/v1/info`.
pub async fn info_v1(services: web::Data<Services>) -> HttpResponse {
    let c = &services.config.csc;
    HttpResponse::Ok().json(json!({
        "specs": "1.0.4.0",
        "name": c.name,
        "logo": c.logo,
        "region": c.region,
        "lang": c.lang,
        "description": c.description,
        "authType": ["basic"],
        "methods": METHODS,
    }))
}
