//! The subscriber portal, `/portal/`: server-rendered pages over the self-service domain (the
//! functions the JSON API `/api/v1` calls, never a second implementation of a rule).
//!
//! Invariants: every page but the sign-in page needs a portal session (`SignedIn`: the
//! `sigillo_portal` cookie, SameSite=Strict, HttpOnly, Secure under TLS, gone after
//! `web.session_idle_secs` idle or once the user's session epoch moves); without one a GET is
//! sent (303) to `/portal/login?next=<where it was going>`, and `next` is only ever followed
//! when it is a path of the portal (never another site). Every POST checks the CSRF token
//! before anything else. Every refusal of the domain is turned into a sentence in the page's
//! language by [`refusal`] — the one map of domain errors to what a subscriber reads; a fault
//! of the service (database, Redis, HSM) is logged and shown as "try again later", never
//! explained.
//!
//! A new portal page:
//! 1. a handler in a file of this module taking `SignedIn` (the subscriber), `Csrf` and, for
//!    its language, `web::Query<PageQuery>` on GET or the form's `lang` field on POST
//!    (`Lang::negotiate`);
//! 2. a template `templates/portal/<page>.html` that `{% extends "portal/layout.html" %}`
//!    (header with the service name, language switch and sign-out button), listed in
//!    `web::render::TEMPLATES`; its strings in both tables of `strings` (same keys);
//! 3. render it with [`show`] (it adds the CSRF token, the language switch, the user id);
//! 4. a POST takes its `web::Form` and then a [`Session`] (not `SignedIn`), checks
//!    `csrf.verify(&form.csrf)` first ([`csrf_refused`] otherwise), then [`require`]s the
//!    session, then [`checked`] on every field, then the domain function; an error goes through
//!    [`Failure`] and [`refusal`] (add an arm there and its strings, not a message in the
//!    page); success redirects (303) with [`redirect`] (to home with a `done` notice);
//! 5. the route in `app::public_endpoints` and its block in openapi/sigillo.yaml.

pub mod account;
pub mod app;
pub mod credentials;
pub mod emergency;
pub mod history;
pub mod home;
pub mod login;
pub mod notices;
pub mod pub_strings;
pub mod recovery;
pub mod renew;
pub mod setup;
pub mod strings;

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::SameSite;
use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::activation::emergency::EmergencyError;
use crate::activation::ActivationError;
use crate::auth::recovery::RecoveryError;
use crate::auth::{AuthError, PolicyViolation};
use crate::credentials::CredentialError;
use crate::devices::DeviceError;
use crate::otp::OtpError;
use crate::renewal::RenewalError;
use crate::services::Services;
use crate::text;
use crate::web::session::SessionCookie;
use crate::web::{page, Csrf, Lang, Page};

/// Where the portal starts.
pub const HOME: &str = "/portal/";
/// The sign-in page.
pub const LOGIN: &str = "/portal/login";

/// The portal's session cookie: SameSite=Strict (every portal page is reached from the portal
/// itself; a link from another site arrives signed out and goes through the sign-in page).
pub fn session_cookie(services: &Services) -> SessionCookie {
    SessionCookie {
        name: "sigillo_portal",
        same_site: SameSite::Strict,
        idle_secs: services.config.web.session_idle_secs,
    }
}

/// The query every portal GET understands.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub lang: Option<String>,
    /// The sign-in page: where to go once signed in (a portal path, else home).
    pub next: Option<String>,
    /// Home: what was just done (a key of [`done_notice`]).
    pub done: Option<String>,
}

/// A signed-in subscriber: the portal session of the request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: String,
    /// The user's session epoch when they signed in.
    pub epoch: u64,
}

/// The `lang` of the request's query, if any.
fn query_lang(req: &HttpRequest) -> Option<String> {
    web::Query::<PageQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().lang)
}

/// LEAD (issue 16, the forced password change): the ONE place where the portal asks
/// `auth::password_change_required(services, user_id)`. While it says true, every portal page
/// but the password page (and sign-out) sends the subscriber to `/portal/password`. Until the
/// function lands this answers `false`.
pub(super) async fn password_change_pending(
    services: &Services,
    user_id: &str,
) -> Result<bool, AuthError> {
    crate::auth::password_change_required(services, user_id).await
}

/// Paths a subscriber who must change the password may still reach.
const OPEN_WHILE_FORCED: &[&str] = &["/portal/password", "/portal/logout"];

/// Paths a subscriber whose authenticator app is not enrolled yet may still reach (the
/// password comes first).
const OPEN_WITHOUT_APP: &[&str] = &[app::APP, "/portal/password", "/portal/logout"];

impl FromRequest for SignedIn {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<SignedIn, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let lang = Lang::negotiate(&req, query_lang(&req).as_deref());
            let stop = |response: HttpResponse| -> actix_web::Error {
                InternalError::from_response("portal session", response).into()
            };
            let Some(services) = req.app_data::<web::Data<Services>>().cloned() else {
                return Err(stop(error_page(
                    lang,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error_server",
                )));
            };
            let found = session_cookie(&services)
                .find(&services.kv, &req)
                .await
                .map_err(|e| stop(unavailable(lang, &e)))?;
            let Some(session) = found else {
                return Err(stop(to_login(&req, lang)));
            };
            let forced = password_change_pending(&services, &session.user_id)
                .await
                .map_err(|e| stop(unavailable(lang, &e)))?;
            if forced && !OPEN_WHILE_FORCED.contains(&req.path()) {
                return Err(stop(redirect("/portal/password", lang, &[])));
            }
            // Then an authenticator-app subscriber enrols the app: nothing else works without it.
            let no_app = crate::devices::app_enrolment_pending(&services, &session.user_id)
                .await
                .map_err(|e| stop(unavailable(lang, &e)))?;
            if !forced && no_app && !OPEN_WITHOUT_APP.contains(&req.path()) {
                return Err(stop(redirect(app::APP, lang, &[])));
            }
            Ok(SignedIn {
                user_id: session.user_id,
                epoch: session.epoch,
            })
        })
    }
}

/// The session of a POST: a POST handler takes it after its form (`Result<SignedIn, _>` never
/// fails to extract), checks the CSRF token first, and only then [`require`]s the session —
/// so a form from another site is refused (403) before anything else, signed in or not.
pub type Session = Result<SignedIn, actix_web::Error>;

/// The signed-in subscriber of a POST, or the answer without one (303 to the sign-in page, or
/// the fault page).
pub fn require(session: Session) -> Result<SignedIn, Box<HttpResponse>> {
    session.map_err(|e| Box::new(e.error_response()))
}

/// The first checks of a signed-in page's POST, in their order: the CSRF token of the form
/// (`submitted`; a form from another site is refused, 403, before anything else), then the
/// session ([`require`]).
pub fn signed_post(
    csrf: &Csrf,
    submitted: &str,
    lang: Lang,
    session: Session,
) -> Result<SignedIn, Box<HttpResponse>> {
    if !csrf.verify(submitted) {
        return Err(Box::new(csrf_refused(lang)));
    }
    require(session)
}

/// 303 to the sign-in page, coming back to this page (a GET's own URL; after a POST, its
/// page) once signed in.
fn to_login(req: &HttpRequest, lang: Lang) -> HttpResponse {
    let next = if req.method() == Method::GET {
        req.uri()
            .path_and_query()
            .map_or(HOME, |p| p.as_str())
            .to_owned()
    } else {
        req.path().to_owned()
    };
    redirect(LOGIN, lang, &[("next", safe_next(Some(&next)))])
}

/// `next` if it is a path of this portal (same site, relative), else home. Nothing that a
/// browser could read as another host (`//host`, `/\host`, a scheme) passes.
pub fn safe_next(next: Option<&str>) -> &str {
    let Some(next) = next else {
        return HOME;
    };
    let portal_path =
        next == "/portal" || next.starts_with("/portal/") || next.starts_with("/portal?");
    let plain = next.len() <= 512
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !next.contains("//");
    let loops = next.starts_with(LOGIN) || next.starts_with("/portal/logout");
    if portal_path && plain && !loops {
        next
    } else {
        HOME
    }
}

/// 303 to the portal path `to` in `lang`, with `params`.
pub fn redirect(to: &str, lang: Lang, params: &[(&str, &str)]) -> HttpResponse {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    query.append_pair("lang", lang.code());
    let location = format!("{to}?{}", query.finish());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The page of a credential that is not there or not the subscriber's (the same answer for
/// both: a portal page never tells another subscriber's credential from a missing one).
pub fn unknown_credential(lang: Lang) -> HttpResponse {
    error_page(lang, StatusCode::NOT_FOUND, "unknown_credential")
}

/// The error page in `lang` with the string `key`.
pub fn error_page(lang: Lang, status: StatusCode, key: &str) -> HttpResponse {
    let mut p = Page::new(
        "error.html",
        lang,
        json!({ "message": lang.text(key), "home": HOME }),
    );
    p.status = status;
    page(p)
}

/// A fault of the service: logged, shown as "try again later".
pub fn unavailable(lang: Lang, cause: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %cause, "portal page unavailable");
    error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_server")
}

/// The answer to a POST whose CSRF token is missing or wrong: nothing was done.
pub fn csrf_refused(lang: Lang) -> HttpResponse {
    error_page(lang, StatusCode::FORBIDDEN, "portal_csrf")
}

/// True iff every field is text the wire layer accepts (`text::check` with its bound).
pub fn checked(fields: &[(&str, usize)]) -> bool {
    fields.iter().all(|(v, max)| text::check(v, *max).is_ok())
}

/// What a portal page shows besides its own values.
pub struct View<'a> {
    pub template: &'static str,
    pub lang: Lang,
    pub status: StatusCode,
    /// The signed-in subscriber (the header's sign-out button), if any.
    pub signed_in: Option<&'a SignedIn>,
    /// The page's path, for the language switch.
    pub path: &'a str,
    /// Query parameters the language switch keeps (e.g. `next` on the sign-in page).
    pub keep: Vec<(&'static str, String)>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub values: Value,
}

impl<'a> View<'a> {
    pub fn new(template: &'static str, lang: Lang, path: &'a str, values: Value) -> View<'a> {
        View {
            template,
            lang,
            status: StatusCode::OK,
            signed_in: None,
            path,
            keep: Vec::new(),
            error: None,
            notice: None,
            values,
        }
    }

    pub fn signed_in(mut self, s: &'a SignedIn) -> View<'a> {
        self.signed_in = Some(s);
        self
    }

    /// A refusal: shown on the page in a `role="alert"` box, with a 4xx status.
    pub fn refused(mut self, status: StatusCode, message: String) -> View<'a> {
        self.status = status;
        self.error = Some(message);
        self
    }
}

/// Renders a portal page: its values plus the CSRF token, the language switch, the user id and
/// the message; sets the CSRF cookie when the browser has none yet.
pub fn show(csrf: &Csrf, view: View<'_>) -> HttpResponse {
    let other = match view.lang {
        Lang::It => Lang::En,
        Lang::En => Lang::It,
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &view.keep {
        query.append_pair(k, v);
    }
    query.append_pair("lang", other.code());
    let lang_link = format!("{}?{}", view.path, query.finish());
    let mut values = view.values;
    if let Some(obj) = values.as_object_mut() {
        obj.insert("csrf".into(), json!(csrf.token()));
        obj.insert("lang_link".into(), json!(lang_link));
        obj.insert(
            "signed_in_user".into(),
            json!(view.signed_in.map(|s| s.user_id.as_str())),
        );
        obj.insert("error".into(), json!(view.error));
        obj.insert("notice".into(), json!(view.notice));
    }
    let mut p = Page::new(view.template, view.lang, values);
    p.status = view.status;
    let mut response = page(p);
    csrf.apply(&mut response);
    response
}

/// A refusal or fault of a domain function a portal page called.
#[derive(Debug)]
pub enum Failure {
    Auth(AuthError),
    Activation(ActivationError),
    Device(DeviceError),
    Credential(CredentialError),
    Emergency(EmergencyError),
    Recovery(RecoveryError),
    Renewal(RenewalError),
}

impl From<RenewalError> for Failure {
    fn from(e: RenewalError) -> Self {
        Failure::Renewal(e)
    }
}

impl From<EmergencyError> for Failure {
    fn from(e: EmergencyError) -> Self {
        Failure::Emergency(e)
    }
}

impl From<RecoveryError> for Failure {
    fn from(e: RecoveryError) -> Self {
        Failure::Recovery(e)
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Auth(e)
    }
}

impl From<ActivationError> for Failure {
    fn from(e: ActivationError) -> Self {
        Failure::Activation(e)
    }
}

impl From<DeviceError> for Failure {
    fn from(e: DeviceError) -> Self {
        Failure::Device(e)
    }
}

impl From<CredentialError> for Failure {
    fn from(e: CredentialError) -> Self {
        Failure::Credential(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Auth(e) => e.fmt(f),
            Failure::Activation(e) => e.fmt(f),
            Failure::Device(e) => e.fmt(f),
            Failure::Credential(e) => e.fmt(f),
            Failure::Emergency(e) => e.fmt(f),
            Failure::Recovery(e) => e.fmt(f),
            Failure::Renewal(e) => e.fmt(f),
        }
    }
}

/// The strings key of an OTP refusal.
fn otp_refusal(e: &OtpError) -> Option<&'static str> {
    Some(match e {
        OtpError::RateLimited { .. } => "otp_limit",
        OtpError::TooManyWrong { .. } => "too_many",
        OtpError::NotOnline => "portal_not_sms",
        OtpError::NoApp => "portal_no_app",
        OtpError::Wrong
        | OtpError::Expired
        | OtpError::Replayed
        | OtpError::Malformed
        | OtpError::OtherPurpose => "wrong_otp",
        OtpError::Kv(_) | OtpError::Sms(_) | OtpError::Secrets(_) | OtpError::Totp(_) => {
            return None
        }
    })
}

/// The strings key of a refused password (sign-in, change, device change).
fn auth_refusal(e: &AuthError) -> Option<&'static str> {
    Some(match e {
        AuthError::InvalidCredentials => "wrong_login",
        AuthError::InvalidToken | AuthError::Revoked | AuthError::SessionEnded => {
            "portal_signed_out"
        }
        AuthError::TooManyAttempts { .. } => "too_many",
        AuthError::Busy { .. } => "busy",
        AuthError::WrongPassword => "portal_wrong_password",
        AuthError::SamePassword => "portal_same_password",
        AuthError::Policy(p) => match p {
            PolicyViolation::TooShort => "portal_policy_too_short",
            PolicyViolation::TooLong => "portal_policy_too_long",
            PolicyViolation::NoUpper => "portal_policy_no_upper",
            PolicyViolation::NoLower => "portal_policy_no_lower",
            PolicyViolation::NoDigit => "portal_policy_no_digit",
            PolicyViolation::NoSpecial => "portal_policy_no_special",
            PolicyViolation::Repeated => "portal_policy_repeated",
        },
        AuthError::Hashing(_) | AuthError::Db(_) | AuthError::Kv(_) | AuthError::Audit(_) => {
            return None
        }
    })
}

/// What the subscriber reads for a refused PIN, PUK or OTP (activation, PIN change, unblock,
/// renewal, emergency resume); `None` for a fault of the service.
fn activation_refusal(lang: Lang, e: &ActivationError) -> Option<String> {
    let t = |key: &str| lang.text(key).to_owned();
    let key = match e {
        ActivationError::WrongPin { remaining } => {
            return Some(format!("{} {remaining}", t("wrong_pin")))
        }
        ActivationError::WrongPuk { remaining } => {
            return Some(format!("{} {remaining}", t("portal_wrong_puk")))
        }
        ActivationError::PinBlocked => "portal_pin_blocked",
        ActivationError::PukBlocked => "portal_puk_blocked",
        ActivationError::Malformed { field: "puk", .. } => "portal_puk_format",
        ActivationError::Malformed {
            field: "new_pin",
            reason,
        } if reason.contains("differ") => "portal_pin_same",
        ActivationError::Malformed {
            field: "new_pin", ..
        } => "portal_pin_format",
        ActivationError::Malformed { field: "PIN", .. } => "portal_pin_format",
        ActivationError::Malformed { .. } => "wrong_otp",
        ActivationError::Otp(o) => otp_refusal(o)?,
        ActivationError::CredentialNotFound => "unknown_credential",
        ActivationError::WrongState(_) => "portal_wrong_state",
        ActivationError::CertificateExpired => "portal_cert_expired",
        ActivationError::SadUnknown
        | ActivationError::Kv(_)
        | ActivationError::Hsm(_)
        | ActivationError::Db(_)
        | ActivationError::Audit(_)
        | ActivationError::Mail(_)
        | ActivationError::Sad(_) => return None,
    };
    Some(t(key))
}

/// The strings key of a refused OTP device change.
fn device_refusal(e: &DeviceError) -> Option<&'static str> {
    Some(match e {
        DeviceError::WrongPassword => "portal_wrong_password",
        DeviceError::BadPhone => "portal_bad_phone",
        DeviceError::NothingPending => "portal_nothing_pending",
        DeviceError::NewDeviceCode => "portal_new_device_code",
        DeviceError::AppEnrolled => "portal_app_enrolled",
        DeviceError::NotTotpUser => "portal_not_totp",
        DeviceError::CurrentFactor(o) | DeviceError::Otp(o) => otp_refusal(o)?,
        DeviceError::Auth(a) => auth_refusal(a)?,
        DeviceError::Db(_) | DeviceError::Audit(_) | DeviceError::Qr(_) => return None,
    })
}

/// What the subscriber reads for `failure`, in `lang`; `None` when it is no refusal of theirs
/// but a fault of the service (the caller logs it and shows "try again later"). The one map of
/// domain errors to portal messages: every page uses it.
pub fn refusal(lang: Lang, failure: &Failure) -> Option<String> {
    let t = |key: &str| lang.text(key).to_owned();
    let key = match failure {
        Failure::Auth(e) => auth_refusal(e)?,
        // Renewal is confirmed with the PIN and OTP of `activation`: the same sentences.
        Failure::Activation(e) | Failure::Renewal(RenewalError::Factors(e)) => {
            return activation_refusal(lang, e)
        }
        Failure::Device(e) => device_refusal(e)?,
        Failure::Credential(e) => match e {
            CredentialError::NotFound => "unknown_credential",
            CredentialError::Db(_) | CredentialError::Audit(_) => return None,
        },
        Failure::Renewal(RenewalError::IdentityNotConfirmed) => "portal_renew_confirm_required",
        Failure::Renewal(RenewalError::NotInWindow(_)) => "portal_renew_not_in_window",
        Failure::Renewal(RenewalError::AlreadyRenewed) => "portal_renew_already",
        Failure::Renewal(RenewalError::InvalidCoupon) => "portal_renew_invalid_coupon",
        Failure::Renewal(RenewalError::Revoked) => "portal_hint_revoked",
        Failure::Renewal(RenewalError::Suspended) => "portal_hint_suspended",
        Failure::Renewal(RenewalError::Expired) => "portal_hint_expired",
        Failure::Renewal(RenewalError::WrongState(_)) => "portal_wrong_state",
        Failure::Renewal(
            RenewalError::BadCount
            | RenewalError::Ca(_)
            | RenewalError::Db(_)
            | RenewalError::Audit(_)
            | RenewalError::Certificate(_),
        ) => return None,
        // An unknown user id and a wrong code read the same.
        Failure::Emergency(e) => match e {
            EmergencyError::Refused => "portal_emergency_refused",
            EmergencyError::NotSubscriberSuspended => "portal_resume_by_operator",
            EmergencyError::Activation(a) => return activation_refusal(lang, a),
            EmergencyError::Device(d) => device_refusal(d)?,
            EmergencyError::Auth(a) => auth_refusal(a)?,
            EmergencyError::Lifecycle(_)
            | EmergencyError::Hsm(_)
            | EmergencyError::Db(_)
            | EmergencyError::Mail(_)
            | EmergencyError::Audit(_) => return None,
        },
        Failure::Recovery(e) => match e {
            RecoveryError::InvalidLink => "portal_recovery_invalid_link",
            RecoveryError::TooManyRequests { .. } => "too_many",
            RecoveryError::NotSms => "portal_not_sms",
            // A wrong OTP spent the link: the subscriber must ask for a new one.
            RecoveryError::Otp(
                OtpError::Wrong
                | OtpError::Expired
                | OtpError::Replayed
                | OtpError::Malformed
                | OtpError::OtherPurpose,
            ) => "portal_recovery_wrong_otp",
            RecoveryError::Otp(o) => otp_refusal(o)?,
            RecoveryError::Auth(a) => auth_refusal(a)?,
            RecoveryError::Db(_)
            | RecoveryError::Kv(_)
            | RecoveryError::Mail(_)
            | RecoveryError::Audit(_) => return None,
        },
    };
    Some(t(key))
}

/// The HTTP status of a refused form: 429 for a spent budget (whichever step spent it), else
/// 400.
pub fn refusal_status(failure: &Failure) -> StatusCode {
    let limited = match failure {
        Failure::Auth(e) => e.is_limited(),
        Failure::Activation(e) => e.is_limited(),
        Failure::Device(e) => e.is_limited(),
        Failure::Credential(_) => false,
        Failure::Emergency(e) => e.is_limited(),
        Failure::Recovery(e) => e.is_limited(),
        Failure::Renewal(e) => e.is_limited(),
    };
    if limited {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// The notice home shows after `done` (a redirect's parameter); anything else shows none.
pub fn done_notice(lang: Lang, done: Option<&str>) -> Option<String> {
    let key = match done? {
        "activated" => "portal_done_activated",
        "pin" => "portal_done_pin",
        "unblocked" => "portal_done_unblocked",
        "app" => "portal_done_app",
        _ => return None,
    };
    Some(lang.text(key).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    #[test]
    fn next_is_only_a_path_of_the_portal() {
        assert_eq!(safe_next(None), HOME);
        assert_eq!(
            safe_next(Some("/portal/credentials/x/pin?lang=en")),
            "/portal/credentials/x/pin?lang=en"
        );
        for bad in [
            "https://evil.example/portal/",
            "//evil.example/portal/",
            "/portal//evil.example",
            "/\\evil.example",
            "/portal/\\evil",
            "/portalx",
            "/portal/login?next=/portal/",
            "/portal/logout",
            "/oauth2/authorize",
            "/portal/\n",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), HOME, "{bad:?}");
        }
    }

    /// A page answers 429 exactly where the JSON API does, however deep the limit is wrapped
    /// (the emergency resume's OTP limits answered 400 on the page).
    #[test]
    fn a_page_answers_429_where_the_api_does() {
        let otp_limits: [fn() -> OtpError; 2] = [
            || OtpError::RateLimited {
                retry_after_secs: 30,
            },
            || OtpError::TooManyWrong {
                retry_after_secs: 30,
            },
        ];
        let auth_limits: [fn() -> AuthError; 2] = [
            || AuthError::TooManyAttempts {
                retry_after_secs: 30,
            },
            || AuthError::Busy {
                retry_after_secs: 30,
            },
        ];
        // (the page's failure, the API's answer to the same error)
        let mut cases: Vec<(Failure, StatusCode)> = Vec::new();
        for e in otp_limits {
            let resume_code = || EmergencyError::Device(DeviceError::Otp(e()));
            cases.push((
                Failure::Emergency(resume_code()),
                ApiError::from(resume_code()).status,
            ));
            let wrapped = || EmergencyError::Activation(ActivationError::Otp(e()));
            cases.push((
                Failure::Emergency(wrapped()),
                ApiError::from(wrapped()).status,
            ));
            let current = || DeviceError::CurrentFactor(e());
            cases.push((Failure::Device(current()), ApiError::from(current()).status));
            let renewal = || RenewalError::Factors(ActivationError::Otp(e()));
            cases.push((
                Failure::Renewal(renewal()),
                ApiError::from(renewal()).status,
            ));
            let recovery = || RecoveryError::Otp(e());
            cases.push((
                Failure::Recovery(recovery()),
                ApiError::from(recovery()).status,
            ));
        }
        for e in auth_limits {
            let device = || DeviceError::Auth(e());
            cases.push((Failure::Device(device()), ApiError::from(device()).status));
            let emergency = || EmergencyError::Auth(e());
            cases.push((
                Failure::Emergency(emergency()),
                ApiError::from(emergency()).status,
            ));
        }
        for (failure, api) in cases {
            assert_eq!(api, StatusCode::TOO_MANY_REQUESTS, "{failure:?}");
            assert_eq!(refusal_status(&failure), api, "{failure:?}");
        }
        let wrong = Failure::Emergency(EmergencyError::Device(DeviceError::Otp(OtpError::Wrong)));
        assert_eq!(refusal_status(&wrong), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn every_refusal_has_a_sentence_in_both_languages() {
        let failures = [
            Failure::Auth(AuthError::InvalidCredentials),
            Failure::Auth(AuthError::WrongPassword),
            Failure::Auth(AuthError::SamePassword),
            Failure::Auth(AuthError::Policy(PolicyViolation::NoDigit)),
            Failure::Activation(ActivationError::WrongPin { remaining: 2 }),
            Failure::Activation(ActivationError::WrongPuk { remaining: 4 }),
            Failure::Activation(ActivationError::PinBlocked),
            Failure::Activation(ActivationError::PukBlocked),
            Failure::Activation(ActivationError::Otp(OtpError::Wrong)),
            Failure::Activation(ActivationError::Malformed {
                field: "new_pin",
                reason: "the PIN must be exactly 8 digits",
            }),
            Failure::Device(DeviceError::BadPhone),
            Failure::Device(DeviceError::NothingPending),
            Failure::Credential(CredentialError::NotFound),
            Failure::Emergency(EmergencyError::Refused),
            Failure::Recovery(RecoveryError::InvalidLink),
            Failure::Recovery(RecoveryError::Otp(OtpError::Wrong)),
            Failure::Recovery(RecoveryError::TooManyRequests {
                retry_after_secs: 60,
            }),
            Failure::Renewal(RenewalError::InvalidCoupon),
            Failure::Renewal(RenewalError::NotInWindow(90)),
            Failure::Renewal(RenewalError::AlreadyRenewed),
            Failure::Renewal(RenewalError::IdentityNotConfirmed),
            Failure::Renewal(RenewalError::Suspended),
            Failure::Renewal(RenewalError::Factors(ActivationError::WrongPin {
                remaining: 1,
            })),
        ];
        for f in &failures {
            for lang in [Lang::It, Lang::En] {
                let text = refusal(lang, f).unwrap_or_else(|| panic!("{f:?}"));
                assert!(!text.starts_with('?') && !text.is_empty(), "{f:?} {lang:?}");
            }
            assert_ne!(refusal(Lang::It, f), refusal(Lang::En, f), "{f:?}");
        }
        let fault = Failure::Auth(AuthError::Hashing("x".into()));
        assert_eq!(refusal(Lang::En, &fault), None);
    }
}
