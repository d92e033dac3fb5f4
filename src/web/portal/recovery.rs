//! "Non riesco ad accedere", `/portal/recovery`, without signing in: without a token the page
//! asks for the user id and e-mails the link (`auth::recovery::request_recovery`); the link
//! (`?token=`, which `[recovery] link` points at) asks for the current OTP factor — for SMS
//! users a button texts it (`send_recovery_otp`) — and the new password twice, then completes
//! (`complete_recovery`: the link is spent, every session ends). The functions of
//! `POST /api/v1/recovery{,/otp,/complete}`, with their bounds and audit.
//!
//! Invariants: the answer to a request is the same page whether or not the user id exists
//! (the page echoes nothing the subscriber typed); opening the link does not spend it (mail
//! scanners fetch links), only completing does; two new passwords that differ are refused
//! before the link is touched.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{
    checked, csrf_refused, refusal, refusal_status, show, unavailable, Failure, View, LOGIN,
};
use crate::auth::recovery::{self, RecoveryError};
use crate::extract::ClientOrigin;
use crate::model::OtpMethod;
use crate::services::Services;
use crate::text;
use crate::web::{Csrf, Lang};

/// The page's path.
pub const PATH: &str = "/portal/recovery";

/// Characters of a link's token (32 random bytes, base64url).
const TOKEN_LEN: usize = 43;

/// A token of a link's shape: anything else is not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Deserialize)]
pub struct RecoveryQuery {
    lang: Option<String>,
    token: Option<String>,
}

/// The page of one state: `step` is `ask`, `asked`, `link`, `invalid` or `done`.
fn view<'a>(lang: Lang, step: &str, token: Option<&str>, sms: bool) -> View<'a> {
    let mut v = View::new(
        "portal/recovery.html",
        lang,
        PATH,
        json!({ "step": step, "token": token.unwrap_or(""), "sms": sms, "login": LOGIN }),
    );
    if let Some(token) = token {
        v.keep = vec![("token", token.to_owned())];
    }
    v
}

/// The link's page for `token`, or the "invalid link" page.
async fn link_page<'a>(services: &Services, lang: Lang, token: &str) -> Result<View<'a>, Failure> {
    if !well_formed(token) {
        return Err(RecoveryError::InvalidLink.into());
    }
    let method = recovery::link_otp_method(services, token).await?;
    Ok(view(lang, "link", Some(token), method == OtpMethod::Sms))
}

/// What to show for `failure`: the refusal on `on_refusal`, or (a fault) "try again later".
fn refused(csrf: &Csrf, lang: Lang, on_refusal: View<'_>, failure: &Failure) -> HttpResponse {
    match refusal(lang, failure) {
        Some(message) => show(csrf, on_refusal.refused(refusal_status(failure), message)),
        None => unavailable(lang, failure),
    }
}

/// `GET /portal/recovery[?token=…]`.
pub async fn page(services: web::Data<Services>, req: HttpRequest, csrf: Csrf) -> HttpResponse {
    let query = web::Query::<RecoveryQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or(RecoveryQuery {
            lang: None,
            token: Some(String::new()),
        });
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let Some(token) = query.token else {
        return show(&csrf, view(lang, "ask", None, false));
    };
    match link_page(&services, lang, &token).await {
        Ok(v) => show(&csrf, v),
        Err(failure) => refused(&csrf, lang, view(lang, "invalid", None, false), &failure),
    }
}

#[derive(Deserialize)]
pub struct RecoveryForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    otp: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_again: String,
}

/// `POST /portal/recovery`: `action` = `ask` (user id), `sms` or `complete` (a link's form).
pub async fn submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<RecoveryForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    // Before anything else: a form posted from another site stops here.
    if !csrf.verify(&form.csrf) {
        return csrf_refused(lang);
    }
    let fields_ok = checked(&[
        (&form.action, text::ID),
        (&form.user_id, text::ID),
        (&form.token, text::SECRET),
        (&form.otp, text::SECRET),
        (&form.new_password, text::SECRET),
        (&form.new_password_again, text::SECRET),
    ]);
    match form.action.as_str() {
        "ask" => {
            // Text no user id can be is asked for like an unknown id: the same page.
            let asked = if fields_ok {
                recovery::request_recovery(&services, &form.user_id, &origin).await
            } else {
                Ok(())
            };
            match asked {
                Ok(()) => show(&csrf, view(lang, "asked", None, false)),
                Err(e) => refused(&csrf, lang, view(lang, "ask", None, false), &e.into()),
            }
        }
        "sms" | "complete" => {
            let token = form.token.as_str();
            let link = match link_page(&services, lang, token).await {
                Ok(v) if fields_ok => v,
                Ok(_) => return refused_link(&csrf, lang, RecoveryError::InvalidLink),
                Err(failure) => {
                    return refused(&csrf, lang, view(lang, "invalid", None, false), &failure)
                }
            };
            if form.action == "sms" {
                return match recovery::send_recovery_otp(&services, token).await {
                    Ok(()) => {
                        let mut v = link;
                        v.notice = Some(lang.text("sms_sent").to_owned());
                        show(&csrf, v)
                    }
                    Err(e) => refused(&csrf, lang, link, &e.into()),
                };
            }
            // Neither an empty code nor two passwords that differ spend the link.
            if form.otp.trim().is_empty() {
                let message = lang.text("portal_recovery_otp_required").to_owned();
                return show(&csrf, link.refused(StatusCode::BAD_REQUEST, message));
            }
            if form.new_password != form.new_password_again {
                let message = lang.text("portal_recovery_mismatch").to_owned();
                return show(&csrf, link.refused(StatusCode::BAD_REQUEST, message));
            }
            let completed = recovery::complete_recovery(
                &services,
                token,
                &form.otp,
                &form.new_password,
                &origin,
            )
            .await;
            match completed {
                Ok(()) => show(&csrf, view(lang, "done", None, false)),
                // The link was spent (a wrong OTP spends it) or was gone: ask for a new one.
                Err(e @ (RecoveryError::InvalidLink | RecoveryError::Otp(_))) => {
                    refused_link(&csrf, lang, e)
                }
                // A password the policy refuses leaves the link live: the form again.
                Err(e) => refused(&csrf, lang, link, &e.into()),
            }
        }
        _ => show(&csrf, view(lang, "ask", None, false)),
    }
}

/// The "ask for a new link" page with the reason the link is gone.
fn refused_link(csrf: &Csrf, lang: Lang, e: RecoveryError) -> HttpResponse {
    refused(csrf, lang, view(lang, "invalid", None, false), &e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_of_a_links_shape_is_looked_up() {
        assert!(well_formed(&"a".repeat(TOKEN_LEN)));
        assert!(well_formed(&format!("-_{}", "Z9".repeat(20) + "x")));
        assert!(!well_formed(&"a".repeat(TOKEN_LEN - 1)));
        assert!(!well_formed(&format!("{}=", "a".repeat(TOKEN_LEN - 1))));
        assert!(!well_formed(""));
    }
}
