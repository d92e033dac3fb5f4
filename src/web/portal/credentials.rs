//! `/portal/credentials/{id}/activate`, `/pin` and `/unblock`: the three forms that set a new
//! PIN (8 digits, typed twice) confirmed by an OTP — with the PUK from the sealed envelope
//! (activation of an inactive credential, unblock of a PIN-blocked one) or with the current
//! PIN (change on an active one). Each POST calls the function of the JSON API
//! (`activation::activate`, `activation::change_pin`), so the attempt counters, the state
//! rules, the audit and the e-mail notices are theirs; for SMS users a "send me the code"
//! button calls `activation::send_operation_otp`, the function of
//! `POST /api/v1/credentials/{id}/otp`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    checked, redirect, refusal, refusal_status, show, signed_post, unavailable, unknown_credential,
    Failure, PageQuery, Session, SignedIn, View, HOME,
};
use crate::activation::{self, ActivateCommand, OtpOperation, PinChange, PinChangeCommand};
use crate::db::repo;
use crate::model::OtpMethod;
use crate::services::Services;
use crate::text;
use crate::web::{Csrf, Lang};

/// Which of the three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PUK + new PIN + OTP on an inactive credential.
    Activate,
    /// Current PIN + new PIN + OTP on an active one.
    Pin,
    /// PUK + new PIN + OTP on a PIN-blocked one.
    Unblock,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Kind::Activate => "activate",
            Kind::Pin => "pin",
            Kind::Unblock => "unblock",
        }
    }

    fn operation(self) -> OtpOperation {
        match self {
            Kind::Activate => OtpOperation::Activate,
            Kind::Pin => OtpOperation::PinChange,
            Kind::Unblock => OtpOperation::Unblock,
        }
    }

    /// The `done` notice home shows after it.
    fn done(self) -> &'static str {
        match self {
            Kind::Activate => "activated",
            Kind::Pin => "pin",
            Kind::Unblock => "unblocked",
        }
    }
}

/// The form's fields (every one optional on the wire: a missing one is an empty one).
#[derive(Deserialize)]
pub struct PinForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    /// `sms` (send me the code) or anything else (submit).
    #[serde(default)]
    action: String,
    #[serde(default)]
    puk: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    new_pin: String,
    #[serde(default)]
    new_pin2: String,
    #[serde(default)]
    otp: String,
}

/// The page of `kind` for credential `id`, with `message` (error or notice).
#[allow(clippy::too_many_arguments)]
async fn form_page(
    services: &Services,
    csrf: &Csrf,
    signed_in: &SignedIn,
    lang: Lang,
    kind: Kind,
    id: Uuid,
    message: Option<(StatusCode, String)>,
    notice: Option<String>,
) -> HttpResponse {
    let credential = match repo::credentials::find_owned(&services.db, id, &signed_in.user_id).await
    {
        Ok(Some(c)) => c,
        Ok(None) => return unknown_credential(lang),
        Err(e) => return unavailable(lang, &e),
    };
    let sms = match repo::users::find(&services.db, &signed_in.user_id).await {
        Ok(user) => user.is_some_and(|u| u.otp_method == OtpMethod::Sms),
        Err(e) => return unavailable(lang, &e),
    };
    let path = format!("/portal/credentials/{id}/{}", kind.segment());
    let mut view = View::new(
        "portal/credential_form.html",
        lang,
        &path,
        json!({
            "kind": kind.segment(),
            "action": path,
            "serial_number": credential.serial_number,
            "purpose": lang.text(&format!("portal_purpose_{}", credential.purpose.as_str())),
            "title": lang.text(&format!("portal_{}_title", kind.segment())),
            "intro": lang.text(&format!("portal_{}_intro", kind.segment())),
            "with_puk": kind != Kind::Pin,
            "sms": sms,
            "home": format!("{HOME}?lang={}", lang.code()),
        }),
    )
    .signed_in(signed_in);
    if let Some((status, text)) = message {
        view = view.refused(status, text);
    }
    view.notice = notice;
    show(csrf, view)
}

fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

async fn get(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    kind: Kind,
) -> HttpResponse {
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let Some(id) = parse_id(&path) else {
        return unknown_credential(lang);
    };
    form_page(&services, &csrf, &signed_in, lang, kind, id, None, None).await
}

async fn post(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    path: web::Path<String>,
    form: web::Form<PinForm>,
    session: Session,
    kind: Kind,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    let signed_in = match signed_post(&csrf, &form.csrf, lang, session) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let Some(id) = parse_id(&path) else {
        return unknown_credential(lang);
    };
    let page = |message: Option<(StatusCode, String)>, notice: Option<String>| {
        form_page(
            &services, &csrf, &signed_in, lang, kind, id, message, notice,
        )
    };
    let secrets = [
        &form.puk,
        &form.pin,
        &form.new_pin,
        &form.new_pin2,
        &form.otp,
    ];
    if !checked(&[(&form.action, text::ID)])
        || !checked(&secrets.map(|s| (s.as_str(), text::SECRET)))
    {
        let text = lang.text("portal_bad_input").to_owned();
        return page(Some((StatusCode::BAD_REQUEST, text)), None).await;
    }
    let user_id = signed_in.user_id.clone();
    if form.action == "sms" {
        return match activation::send_operation_otp(&services, &user_id, id, kind.operation()).await
        {
            Ok(()) => page(None, Some(lang.text("sms_sent").to_owned())).await,
            Err(e) => refused(lang, e.into(), page).await,
        };
    }
    // The second typing of the new PIN is the form's own check (the domain gets one PIN).
    if form.new_pin != form.new_pin2 {
        let text = lang.text("portal_pins_differ").to_owned();
        return page(Some((StatusCode::BAD_REQUEST, text)), None).await;
    }
    let result = match kind {
        Kind::Activate => activation::activate(
            &services,
            ActivateCommand {
                user_id,
                credential_id: id,
                puk: form.puk,
                new_pin: form.new_pin,
                otp: form.otp,
            },
        )
        .await
        .map(|_| ()),
        Kind::Pin | Kind::Unblock => activation::change_pin(
            &services,
            PinChangeCommand {
                user_id,
                credential_id: id,
                change: if kind == Kind::Pin {
                    PinChange::WithPin { pin: form.pin }
                } else {
                    PinChange::WithPuk { puk: form.puk }
                },
                new_pin: form.new_pin,
                otp: form.otp,
            },
        )
        .await
        .map(|_| ()),
    };
    match result {
        Ok(()) => redirect(HOME, lang, &[("done", kind.done())]),
        Err(e) => refused(lang, e.into(), page).await,
    }
}

/// The form again with the refusal of `failure`, or the fault page.
async fn refused<F, Fut>(lang: Lang, failure: Failure, page: F) -> HttpResponse
where
    F: FnOnce(Option<(StatusCode, String)>, Option<String>) -> Fut,
    Fut: std::future::Future<Output = HttpResponse>,
{
    match refusal(lang, &failure) {
        Some(text) => page(Some((refusal_status(&failure), text)), None).await,
        None => unavailable(lang, &failure),
    }
}

/// `GET /portal/credentials/{id}/activate`.
pub async fn activate_page(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    get(services, req, signed_in, csrf, path, query, Kind::Activate).await
}

/// `POST /portal/credentials/{id}/activate`.
pub async fn activate_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    path: web::Path<String>,
    form: web::Form<PinForm>,
    session: Session,
) -> HttpResponse {
    post(services, req, csrf, path, form, session, Kind::Activate).await
}

/// `GET /portal/credentials/{id}/pin`.
pub async fn pin_page(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    get(services, req, signed_in, csrf, path, query, Kind::Pin).await
}

/// `POST /portal/credentials/{id}/pin`.
pub async fn pin_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    path: web::Path<String>,
    form: web::Form<PinForm>,
    session: Session,
) -> HttpResponse {
    post(services, req, csrf, path, form, session, Kind::Pin).await
}

/// `GET /portal/credentials/{id}/unblock`.
pub async fn unblock_page(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    get(services, req, signed_in, csrf, path, query, Kind::Unblock).await
}

/// `POST /portal/credentials/{id}/unblock`.
pub async fn unblock_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    path: web::Path<String>,
    form: web::Form<PinForm>,
    session: Session,
) -> HttpResponse {
    post(services, req, csrf, path, form, session, Kind::Unblock).await
}
