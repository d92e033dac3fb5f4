//! `/portal/setup?token=`: the page of the e-mailed setup link, where a new subscriber chooses
//! the password (typed twice, the policy listed and, with JavaScript, checked live by
//! `/static/setup.js` through `POST /api/v1/password-policy`) and the envelope passphrase
//! (typed twice). The form posts to `POST /portal/setup`, which checks the CSRF token first
//! and then calls the same domain function as `POST /api/v1/setup`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{AuthError, POLICY_RULES};
use crate::enrolment::{self, EnrolError};
use crate::extract::ClientOrigin;
use crate::services::Services;
use crate::text;
use crate::web::{page, Csrf, Lang, Page};

/// The live check, served at `/static/setup.js` (the CSP of the setup page allows scripts
/// from this origin only; none inline).
pub const SCRIPT: &str = include_str!("../../../templates/static/setup.js");

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
    lang: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    lang: Option<String>,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    passphrase2: String,
}

/// The i18n key of a refused setup (never a raw CSC code).
fn refusal_key(err: &EnrolError) -> String {
    match err {
        EnrolError::Policy(rule) => format!("setup_rule_broken_{}", rule.id()),
        EnrolError::Passphrase(_) => "setup_passphrase_rules".into(),
        EnrolError::InvalidSetupLink => "setup_invalid_link".into(),
        EnrolError::Auth(AuthError::Busy { .. }) => "busy".into(),
        _ => "error_server".into(),
    }
}

fn form_page(
    lang: Lang,
    csrf: &Csrf,
    token: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let rules: Vec<_> = POLICY_RULES
        .iter()
        .map(|r| json!({ "id": r.id(), "text": lang.text(&format!("setup_rule_{}", r.id())) }))
        .collect();
    let other = match lang {
        Lang::It => "en",
        Lang::En => "it",
    };
    let lang_link = format!(
        "/portal/setup?token={}&lang={other}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let mut p = Page::new(
        "portal/setup.html",
        lang,
        json!({
            "csrf": csrf.token(),
            "token": token,
            "rules": rules,
            "error": error,
            "lang_link": lang_link,
        }),
    );
    p.status = status;
    p.scripts = true;
    let mut response = page(p);
    csrf.apply(&mut response);
    response
}

fn message_page(
    lang: Lang,
    csrf: &Csrf,
    values: serde_json::Value,
    status: StatusCode,
) -> HttpResponse {
    let mut p = Page::new("portal/setup.html", lang, values);
    p.status = status;
    let mut response = page(p);
    csrf.apply(&mut response);
    response
}

/// `GET /portal/setup?token=`.
pub async fn setup_page(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    query: web::Query<SetupQuery>,
) -> HttpResponse {
    let query = query.into_inner();
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let usable = text::check(&query.token, text::SECRET).is_ok() && !query.token.is_empty();
    let valid = if usable {
        enrolment::setup_link_is_valid(&services, &query.token).await
    } else {
        Ok(false)
    };
    match valid {
        Ok(true) => form_page(lang, &csrf, &query.token, None, StatusCode::OK),
        Ok(false) => message_page(
            lang,
            &csrf,
            json!({ "invalid": true }),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => {
            tracing::error!(error = %e, "the setup page could not check its link");
            message_page(
                lang,
                &csrf,
                json!({ "invalid": true }),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

/// `POST /portal/setup`: CSRF first, then the typed-twice checks, then the domain's setup.
pub async fn setup_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<SetupForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    // Before anything else: a form posted from another site stops here.
    if !csrf.verify(&form.csrf) {
        let mut p = Page::new(
            "error.html",
            lang,
            json!({ "message": lang.text("error_csrf") }),
        );
        p.status = StatusCode::FORBIDDEN;
        return page(p);
    }
    let fields = [
        &form.token,
        &form.password,
        &form.password2,
        &form.passphrase,
        &form.passphrase2,
    ];
    if form.token.is_empty() || fields.iter().any(|v| text::check(v, text::SECRET).is_err()) {
        return message_page(
            lang,
            &csrf,
            json!({ "invalid": true }),
            StatusCode::BAD_REQUEST,
        );
    }
    let retry = |key: &str| {
        form_page(
            lang,
            &csrf,
            &form.token,
            Some(lang.text(key)),
            StatusCode::BAD_REQUEST,
        )
    };
    if form.password != form.password2 {
        return retry("setup_passwords_differ");
    }
    if form.passphrase != form.passphrase2 {
        return retry("setup_passphrases_differ");
    }
    match enrolment::complete_setup(
        &services,
        &form.token,
        &form.password,
        &form.passphrase,
        &origin,
    )
    .await
    {
        Ok(()) => message_page(lang, &csrf, json!({ "done": true }), StatusCode::OK),
        Err(EnrolError::InvalidSetupLink) => message_page(
            lang,
            &csrf,
            json!({ "invalid": true }),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => {
            let key = refusal_key(&e);
            if key == "error_server" {
                tracing::error!(error = %e, "the setup failed");
                let mut response = retry(&key);
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                return response;
            }
            retry(&key)
        }
    }
}

/// `GET /static/setup.js`.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_string_in_both_languages() {
        let mut keys: Vec<String> = POLICY_RULES
            .iter()
            .flat_map(|r| {
                [
                    format!("setup_rule_{}", r.id()),
                    refusal_key(&EnrolError::Policy(*r)),
                ]
            })
            .collect();
        keys.extend(
            [
                EnrolError::Passphrase("x"),
                EnrolError::InvalidSetupLink,
                EnrolError::UserExists,
            ]
            .iter()
            .map(refusal_key),
        );
        keys.extend(
            ["setup_passwords_differ", "setup_passphrases_differ"]
                .iter()
                .map(|k| (*k).to_owned()),
        );
        for key in keys {
            for lang in [Lang::It, Lang::En] {
                assert_ne!(lang.text(&key), "?", "{key} in {lang:?}");
            }
        }
    }
}
