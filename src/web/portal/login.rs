//! `/portal/login` (GET: the form; POST: user id and password) and `/portal/logout` (POST).
//!
//! The sign-in is `auth::login`, the very login of `auth/login` and of the OAuth2 pages: its
//! per-user and per-address budgets, its decoy hash for unknown users (a wrong user id and a
//! wrong password read the same), its audit with the client's address. Its access token is
//! only read back for the user and session epoch the portal session starts with.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{
    checked, csrf_refused, redirect, refusal, refusal_status, safe_next, session_cookie, show,
    unavailable, Failure, PageQuery, View, LOGIN,
};
use crate::auth::{self, LoginMethod};
use crate::extract::ClientOrigin;
use crate::services::Services;
use crate::text;
use crate::web::{Csrf, Lang};

/// `GET /portal/login?next=…`.
pub async fn form(req: HttpRequest, csrf: Csrf, query: web::Query<PageQuery>) -> HttpResponse {
    let query = query.into_inner();
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let next = safe_next(query.next.as_deref()).to_owned();
    let notice = match query.done.as_deref() {
        Some("signed_out") => Some(lang.text("portal_done_signed_out").to_owned()),
        Some("password") => Some(lang.text("portal_done_password").to_owned()),
        Some("device") => Some(lang.text("portal_done_device").to_owned()),
        Some("resumed") => Some(lang.text("portal_done_resumed").to_owned()),
        _ => None,
    };
    let mut view = login_view(lang, &next, "");
    view.notice = notice;
    show(&csrf, view)
}

fn login_view<'a>(lang: Lang, next: &str, user_id: &str) -> View<'a> {
    let mut view = View::new(
        "portal/login.html",
        lang,
        LOGIN,
        json!({ "next": next, "user_id": user_id }),
    );
    view.keep = vec![("next", next.to_owned())];
    view
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    next: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    password: String,
}

/// `POST /portal/login`: signs in and goes (303) to `next` (a portal path) or home.
pub async fn submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    if !csrf.verify(&form.csrf) {
        return csrf_refused(lang);
    }
    let next = safe_next(Some(&form.next)).to_owned();
    if !checked(&[(&form.user_id, text::ID), (&form.password, text::SECRET)]) {
        let message = lang.text("wrong_login").to_owned();
        return show(
            &csrf,
            login_view(lang, &next, "").refused(StatusCode::BAD_REQUEST, message),
        );
    }
    let method = LoginMethod::Password {
        user_id: form.user_id.clone(),
        password: form.password,
    };
    let claims = match auth::login(&services, method, false, &origin).await {
        Ok(result) => services.tokens.verify(&result.access.token),
        Err(e) => Err(e),
    };
    let claims = match claims {
        Ok(c) => c,
        Err(e) => {
            let failure = Failure::from(e);
            let Some(message) = refusal(lang, &failure) else {
                return unavailable(lang, &failure);
            };
            let view =
                login_view(lang, &next, &form.user_id).refused(refusal_status(&failure), message);
            return show(&csrf, view);
        }
    };
    let secure = services.config.tls.enabled();
    let cookie = match session_cookie(&services)
        .start(&services.kv, &claims.sub, claims.ep, secure)
        .await
    {
        Ok(c) => c,
        Err(e) => return unavailable(lang, &e),
    };
    let mut response = HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, next))
        .finish();
    if let Err(e) = response.add_cookie(&cookie) {
        return unavailable(lang, &e);
    }
    response
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

/// `POST /portal/logout`: ends the portal session on every node and clears its cookie.
pub async fn logout(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    form: web::Form<LogoutForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    if !csrf.verify(&form.csrf) {
        return csrf_refused(lang);
    }
    let gone = match session_cookie(&services).end(&services.kv, &req).await {
        Ok(c) => c,
        Err(e) => return unavailable(lang, &e),
    };
    let mut response = redirect(LOGIN, lang, &[("done", "signed_out")]);
    if let Err(e) = response.add_cookie(&gone) {
        return unavailable(lang, &e);
    }
    response
}
