//! `/portal/password` (change the password) and `/portal/otp/device` (move the OTP to a new
//! authenticator app, with the QR code the domain makes, or to a new phone). Both call the
//! functions of the JSON API (`auth::change_password`; `devices::start_totp_from`,
//! `confirm_totp_from`, `start_sms_from`, `confirm_sms_from`), so the password budget, the
//! policy, the audit and the rule that either change ends every session are theirs: done, the
//! portal session is over too and the browser goes to the sign-in page with a notice.
//!
//! `/portal/credentials/{id}/resume` is the same page for a subscriber who lost the device and
//! suspended with the emergency code: the new device is staged the same way, and the PUK of
//! the credential stands in for the old device's code (`activation::emergency::
//! emergency_resume`, the function of `POST /api/v1/credentials/{id}/resume`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    checked, password_change_pending, redirect, refusal, refusal_status, session_cookie, show,
    signed_post, unavailable, Failure, PageQuery, Session, SignedIn, View, HOME, LOGIN,
};
use uuid::Uuid;

use crate::activation::emergency;
use crate::auth;
use crate::db::repo;
use crate::devices;
use crate::extract::ClientOrigin;
use crate::model::OtpMethod;
use crate::services::Services;
use crate::text;
use crate::web::{Csrf, Lang};

const PASSWORD: &str = "/portal/password";
const DEVICE: &str = "/portal/otp/device";

/// Ends the portal session of `req` (the domain already ended every session) and sends the
/// browser to the sign-in page with the notice `done`.
async fn signed_out(
    services: &Services,
    req: &HttpRequest,
    lang: Lang,
    done: &str,
) -> HttpResponse {
    let mut response = redirect(LOGIN, lang, &[("done", done)]);
    match session_cookie(services).end(&services.kv, req).await {
        Ok(gone) => {
            if let Err(e) = response.add_cookie(&gone) {
                tracing::warn!(error = %e, "could not clear the portal session cookie");
            }
        }
        // The session's epoch has moved on already: it is over on every node anyway.
        Err(e) => tracing::warn!(error = %e, "could not delete the ended portal session"),
    }
    response
}

async fn password_page(
    services: &Services,
    csrf: &Csrf,
    signed_in: &SignedIn,
    lang: Lang,
    error: Option<(StatusCode, String)>,
) -> HttpResponse {
    let forced = match password_change_pending(services, &signed_in.user_id).await {
        Ok(forced) => forced,
        Err(e) => return unavailable(lang, &e),
    };
    let mut view = View::new(
        "portal/password.html",
        lang,
        PASSWORD,
        json!({
            "forced": forced,
            "home": format!("{HOME}?lang={}", lang.code()),
        }),
    )
    .signed_in(signed_in);
    if let Some((status, text)) = error {
        view = view.refused(status, text);
    }
    show(csrf, view)
}

/// `GET /portal/password`.
pub async fn password_form(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    password_page(&services, &csrf, &signed_in, lang, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password2: String,
}

/// `POST /portal/password`: current password, the new one twice.
pub async fn password_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    form: web::Form<PasswordForm>,
    session: Session,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    let signed_in = match signed_post(&csrf, &form.csrf, lang, session) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let refuse = |key: &str| Some((StatusCode::BAD_REQUEST, lang.text(key).to_owned()));
    let fields = [&form.password, &form.new_password, &form.new_password2];
    if !checked(&fields.map(|f| (f.as_str(), text::SECRET))) {
        return password_page(
            &services,
            &csrf,
            &signed_in,
            lang,
            refuse("portal_bad_input"),
        )
        .await;
    }
    if form.new_password != form.new_password2 {
        let error = refuse("portal_passwords_differ");
        return password_page(&services, &csrf, &signed_in, lang, error).await;
    }
    let changed = auth::change_password(
        &services,
        &signed_in.user_id,
        &form.password,
        &form.new_password,
    )
    .await;
    match changed {
        Ok(()) => signed_out(&services, &req, lang, "password").await,
        Err(e) => {
            let failure = Failure::from(e);
            match refusal(lang, &failure) {
                Some(text) => {
                    let error = Some((refusal_status(&failure), text));
                    password_page(&services, &csrf, &signed_in, lang, error).await
                }
                None => unavailable(lang, &failure),
            }
        }
    }
}

/// Which step of a device change the page shows.
enum DeviceStep {
    /// Choose: an app (password) or a phone (number + password).
    Choose,
    /// Scan this QR code (shown once: `None` after a refused confirmation), then type the
    /// app's code and the current factor.
    ConfirmApp { scan: Option<(String, String)> },
    /// Type the new phone's code and the current factor.
    ConfirmPhone,
}

/// The Base32 secret of an `otpauth://` URI, for typing into an app that cannot scan.
pub(super) fn secret_of(otpauth_uri: &str) -> Option<String> {
    let url = url::Url::parse(otpauth_uri).ok()?;
    let secret = url
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned());
    secret
}

/// What the new device is for: a plain change (confirmed by the current device) or the
/// resume of an emergency suspension (confirmed by the PUK of this credential).
#[derive(Clone, Copy)]
pub enum DevicePurpose {
    Change,
    Resume(Uuid),
}

impl DevicePurpose {
    fn path(self) -> String {
        match self {
            DevicePurpose::Change => DEVICE.to_owned(),
            DevicePurpose::Resume(id) => format!("/portal/credentials/{id}/resume"),
        }
    }
}

async fn device_page(
    services: &Services,
    csrf: &Csrf,
    signed_in: &SignedIn,
    lang: Lang,
    (purpose, step): (DevicePurpose, DeviceStep),
    error: Option<(StatusCode, String)>,
) -> HttpResponse {
    let serial_number = match purpose {
        DevicePurpose::Change => None,
        DevicePurpose::Resume(id) => {
            match repo::credentials::find_owned(&services.db, id, &signed_in.user_id).await {
                Ok(Some(c)) => Some(c.serial_number),
                Ok(None) => return super::unknown_credential(lang),
                Err(e) => return unavailable(lang, &e),
            }
        }
    };
    let path = purpose.path();
    let sms = match repo::users::find(&services.db, &signed_in.user_id).await {
        Ok(user) => user.is_some_and(|u| u.otp_method == OtpMethod::Sms),
        Err(e) => return unavailable(lang, &e),
    };
    let (step_name, extra): (&str, Value) = match &step {
        DeviceStep::Choose => ("choose", json!({})),
        DeviceStep::ConfirmApp { scan } => (
            "app",
            match scan {
                Some((qr_svg, otpauth_uri)) => json!({
                    "qr": format!("data:image/svg+xml;base64,{}", STANDARD.encode(qr_svg)),
                    "secret": secret_of(otpauth_uri),
                }),
                None => json!({}),
            },
        ),
        DeviceStep::ConfirmPhone => ("phone", json!({})),
    };
    let mut values = json!({
        "step": step_name,
        "sms": sms,
        "action": path,
        "resume": serial_number.is_some(),
        "serial_number": serial_number,
        "home": format!("{HOME}?lang={}", lang.code()),
        "restart": format!("{path}?lang={}", lang.code()),
    });
    if let (Some(obj), Value::Object(extra)) = (values.as_object_mut(), extra) {
        obj.extend(extra);
    }
    let mut view = View::new("portal/otp_device.html", lang, &path, values).signed_in(signed_in);
    if let Some((status, text)) = error {
        view = view.refused(status, text);
    }
    show(csrf, view)
}

/// `GET /portal/otp/device`.
pub async fn device_form(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let shown = (DevicePurpose::Change, DeviceStep::Choose);
    device_page(&services, &csrf, &signed_in, lang, shown, None).await
}

/// `GET /portal/credentials/{id}/resume`.
pub async fn resume_form(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let Ok(id) = Uuid::parse_str(&path) else {
        return super::unknown_credential(lang);
    };
    let shown = (DevicePurpose::Resume(id), DeviceStep::Choose);
    device_page(&services, &csrf, &signed_in, lang, shown, None).await
}

#[derive(Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    /// `app_start`, `app_confirm`, `phone_start` or `phone_confirm`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    phone: String,
    /// The code from the new app or the new phone.
    #[serde(default)]
    code: String,
    /// The current factor (the present app's code, or the SMS sent to the present phone).
    #[serde(default)]
    otp: String,
    /// Instead of the current factor when resuming: the credential's PUK.
    #[serde(default)]
    puk: String,
}

/// `POST /portal/otp/device`.
pub async fn device_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    origin: ClientOrigin,
    form: web::Form<DeviceForm>,
    session: Session,
) -> HttpResponse {
    let submitted = (form.into_inner(), session);
    submit(
        &services,
        &req,
        &csrf,
        origin,
        DevicePurpose::Change,
        submitted,
    )
    .await
}

/// `POST /portal/credentials/{id}/resume`.
pub async fn resume_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    origin: ClientOrigin,
    path: web::Path<String>,
    form: web::Form<DeviceForm>,
    session: Session,
) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&path) else {
        let lang = Lang::negotiate(&req, form.lang.as_deref());
        return super::unknown_credential(lang);
    };
    let submitted = (form.into_inner(), session);
    submit(
        &services,
        &req,
        &csrf,
        origin,
        DevicePurpose::Resume(id),
        submitted,
    )
    .await
}

async fn submit(
    services: &Services,
    req: &HttpRequest,
    csrf: &Csrf,
    ClientOrigin(origin): ClientOrigin,
    purpose: DevicePurpose,
    (form, session): (DeviceForm, Session),
) -> HttpResponse {
    let lang = Lang::negotiate(req, form.lang.as_deref());
    let signed_in = match signed_post(csrf, &form.csrf, lang, session) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let page = |step: DeviceStep, error: Option<(StatusCode, String)>| {
        device_page(services, csrf, &signed_in, lang, (purpose, step), error)
    };
    let fields = [
        (form.action.as_str(), text::ID),
        (form.password.as_str(), text::SECRET),
        (form.phone.as_str(), text::PROSE),
        (form.code.as_str(), text::SECRET),
        (form.otp.as_str(), text::SECRET),
        (form.puk.as_str(), text::SECRET),
    ];
    if !checked(&fields) {
        let error = Some((
            StatusCode::BAD_REQUEST,
            lang.text("portal_bad_input").to_owned(),
        ));
        return page(DeviceStep::Choose, error).await;
    }
    let user_id = signed_in.user_id.as_str();
    let confirm = |step: DeviceStep| async {
        let result: Result<&str, Failure> = match purpose {
            DevicePurpose::Change => {
                let confirmed = match step {
                    DeviceStep::ConfirmPhone => {
                        devices::confirm_sms_from(services, user_id, &form.code, &form.otp, &origin)
                            .await
                    }
                    _ => {
                        devices::confirm_totp_from(
                            services, user_id, &form.code, &form.otp, &origin,
                        )
                        .await
                    }
                };
                confirmed.map(|()| "device").map_err(Failure::from)
            }
            DevicePurpose::Resume(id) => {
                emergency::emergency_resume(services, user_id, id, &form.puk, &form.code, &origin)
                    .await
                    .map(|_| "resumed")
                    .map_err(Failure::from)
            }
        };
        (result, step)
    };
    let (result, on_refusal) = match form.action.as_str() {
        "app_start" => {
            match devices::start_totp_from(services, user_id, &form.password, &origin).await {
                Ok(started) => {
                    let step = DeviceStep::ConfirmApp {
                        scan: Some((started.qr_svg, started.otpauth_uri)),
                    };
                    return page(step, None).await;
                }
                Err(e) => (Err(e.into()), DeviceStep::Choose),
            }
        }
        "phone_start" => {
            let started =
                devices::start_sms_from(services, user_id, &form.phone, &form.password, &origin)
                    .await;
            match started {
                Ok(()) => return page(DeviceStep::ConfirmPhone, None).await,
                Err(e) => (Err(e.into()), DeviceStep::Choose),
            }
        }
        // A refused confirmation cannot show the QR code again (the page never keeps the
        // secret): the subscriber types the codes again or starts over.
        "app_confirm" => confirm(DeviceStep::ConfirmApp { scan: None }).await,
        "phone_confirm" => confirm(DeviceStep::ConfirmPhone).await,
        _ => return page(DeviceStep::Choose, None).await,
    };
    match result {
        Ok(done) => signed_out(services, req, lang, done).await,
        Err(failure) => match refusal(lang, &failure) {
            Some(text) => page(on_refusal, Some((refusal_status(&failure), text))).await,
            None => unavailable(lang, &failure),
        },
    }
}
