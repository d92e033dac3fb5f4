//! `/portal/otp/app`: the first authenticator app of a subscriber who signs with one. The
//! operator never sees the TOTP secret: on the first sign-in the portal sends such a subscriber
//! here before anything else; a POST stages a secret (`devices::enrol_first_totp`, the domain
//! function of `POST /api/v1/otp/totp/enrol`) and shows its QR code, and a code of the app
//! confirms it (`devices::confirm_first_totp`). Only while no app is enrolled: afterwards a
//! change of app is `/portal/otp/device`, which asks for the current factor too.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::account::secret_of;
use super::{
    checked, redirect, refusal, refusal_status, show, signed_post, unavailable, Failure, PageQuery,
    Session, SignedIn, View, HOME,
};
use crate::devices;
use crate::extract::ClientOrigin;
use crate::services::Services;
use crate::text;
use crate::web::{Csrf, Lang};

/// The page's path.
pub const APP: &str = "/portal/otp/app";

/// `scan`: the QR code (SVG) and the otpauth URI just staged; `None` before the start, or
/// after a refused code (the page never keeps the secret: the subscriber starts again).
fn app_page(
    csrf: &Csrf,
    signed_in: &SignedIn,
    lang: Lang,
    scan: Option<(String, String)>,
    started: bool,
    error: Option<(StatusCode, String)>,
) -> HttpResponse {
    let mut values = json!({
        "step": if started { "confirm" } else { "start" },
        "restart": format!("{APP}?lang={}", lang.code()),
    });
    if let (Some((qr_svg, uri)), Some(obj)) = (scan, values.as_object_mut()) {
        obj.insert(
            "qr".into(),
            format!("data:image/svg+xml;base64,{}", STANDARD.encode(qr_svg)).into(),
        );
        obj.insert("secret".into(), secret_of(&uri).into());
    }
    let mut view = View::new("portal/otp_app.html", lang, APP, values).signed_in(signed_in);
    if let Some((status, text)) = error {
        view = view.refused(status, text);
    }
    show(csrf, view)
}

/// `GET /portal/otp/app`.
pub async fn app_form(
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    app_page(&csrf, &signed_in, lang, None, false, None)
}

#[derive(Deserialize)]
pub struct AppForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    /// `start` or `confirm`.
    #[serde(default)]
    action: String,
    /// A code of the new app.
    #[serde(default)]
    code: String,
}

/// `POST /portal/otp/app`.
pub async fn app_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<AppForm>,
    session: Session,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    let signed_in = match signed_post(&csrf, &form.csrf, lang, session) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let fields = [
        (form.action.as_str(), text::ID),
        (form.code.as_str(), text::SECRET),
    ];
    if !checked(&fields) {
        let error = (
            StatusCode::BAD_REQUEST,
            lang.text("portal_bad_input").to_owned(),
        );
        return app_page(&csrf, &signed_in, lang, None, false, Some(error));
    }
    let user_id = signed_in.user_id.as_str();
    let result = match form.action.as_str() {
        "start" => match devices::enrol_first_totp(&services, user_id).await {
            Ok(started) => {
                let scan = Some((started.qr_svg, started.otpauth_uri));
                return app_page(&csrf, &signed_in, lang, scan, true, None);
            }
            Err(e) => Err(e),
        },
        "confirm" => devices::confirm_first_totp(&services, user_id, &form.code, &origin).await,
        _ => return app_page(&csrf, &signed_in, lang, None, false, None),
    };
    match result {
        Ok(()) => redirect(HOME, lang, &[("done", "app")]),
        Err(e) => {
            let failure = Failure::from(e);
            match refusal(lang, &failure) {
                Some(text) => {
                    let error = Some((refusal_status(&failure), text));
                    let started = form.action == "confirm";
                    app_page(&csrf, &signed_in, lang, None, started, error)
                }
                None => unavailable(lang, &failure),
            }
        }
    }
}
