//! The authorization page, `GET`/`POST /oauth2/authorize`: sign-in with user id and password
//! (the same login and budgets as `auth/login`, and the same answer whether or not the user id
//! exists), then, for a credential, what is being authorised (credential, number of
//! signatures, the documents' labels) with the PIN and the OTP (and a "send me an SMS" button
//! for SMS users). A right PIN and OTP buy a SAD from `activation::authorize` — the very checks
//! of `credentials/authorize`, its attempt counters and its audit — sealed into the code.
//!
//! Every POST first checks the CSRF token, then the interaction (the checked request, kept in
//! Redis while the subscriber is on the page). The page session (a cookie, `web::session`) lets
//! a subscriber who signed in for `service` authorise a credential without signing in again.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::codes::{self, CodeGrant};
use super::request::{self, AuthorizationRequest, RawRequest, REQUEST_URI_PREFIX};
use super::{clients, OAuth2Error, SCOPE_SERVICE};
use crate::activation::{self, ActivationError, AuthorizeCommand};
use crate::auth::{self, AuthError, LoginMethod};
use crate::db::repo;
use crate::extract::ClientOrigin;
use crate::model::{Origin, OtpMethod};
use crate::otp::OtpError;
use crate::services::Services;
use crate::text;
use crate::web::session::{SessionCookie, WebSession};
use crate::web::{page, Csrf, Lang, Page};

/// The page session: SameSite=Lax, because the browser arrives here by a top-level link from
/// the client's site, and that very request must see the session (Strict would hide it).
fn session_cookie(services: &Services) -> SessionCookie {
    SessionCookie {
        name: "sigillo_oauth2_session",
        same_site: SameSite::Lax,
        idle_secs: services.config.web.session_idle_secs,
    }
}

/// The origin of `uri` for the CSP's `form-action` (the form's answer redirects there).
fn origin_of(uri: &str) -> Vec<String> {
    url::Url::parse(uri)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .into_iter()
        .collect()
}

fn error_page(lang: Lang, status: StatusCode, key: &str) -> HttpResponse {
    let mut p = Page::new("error.html", lang, json!({ "message": lang.text(key) }));
    p.status = status;
    page(p)
}

/// 303 to the client's redirect URI with `params`, `state` and `iss` (RFC 9207).
fn redirect(
    services: &Services,
    request: &AuthorizationRequest,
    params: &[(&str, &str)],
) -> HttpResponse {
    let Ok(mut target) = url::Url::parse(&request.redirect_uri) else {
        return error_page(Lang::It, StatusCode::BAD_REQUEST, "error_client");
    };
    {
        let mut query = target.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
        if let Some(state) = &request.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &services.config.oauth2.issuer);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target.as_str()))
        .finish()
}

fn redirect_error(
    services: &Services,
    request: &AuthorizationRequest,
    err: &OAuth2Error,
) -> HttpResponse {
    let description = err.to_string();
    redirect(
        services,
        request,
        &[("error", err.code()), ("error_description", &description)],
    )
}

/// What the page shows besides the form.
#[derive(Default)]
struct Message {
    error: Option<String>,
    notice: Option<String>,
}

impl Message {
    fn error(text: impl Into<String>) -> Message {
        Message {
            error: Some(text.into()),
            notice: None,
        }
    }
}

/// The login page, or (for a credential, once signed in) the consent page.
#[allow(clippy::too_many_arguments)]
async fn show(
    services: &Services,
    lang: Lang,
    csrf: &Csrf,
    ix: &str,
    request: &AuthorizationRequest,
    session: Option<&WebSession>,
    message: Message,
    typed_user: &str,
) -> HttpResponse {
    let lang_link = format!(
        "/oauth2/authorize?ix={ix}&lang={}",
        match lang {
            Lang::It => "en",
            Lang::En => "it",
        }
    );
    let grant = request.grant.as_ref();
    let (template, values) = match (session, grant) {
        (Some(s), Some(g)) if request.scope != SCOPE_SERVICE => {
            let sms = match repo::users::find(&services.db, &s.user_id).await {
                Ok(user) => user.is_some_and(|u| u.otp_method == OtpMethod::Sms),
                Err(e) => {
                    tracing::error!(error = %e, "authorization page: user lookup failed");
                    return error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_server");
                }
            };
            (
                "oauth2_consent.html",
                json!({
                    "user_id": s.user_id,
                    "credential_id": g.credential_id,
                    "num_signatures": g.num_signatures,
                    "hash_count": g.hashes.len(),
                    "labels": g.labels,
                    "sms": sms,
                }),
            )
        }
        _ => ("oauth2_login.html", json!({ "user_id": typed_user })),
    };
    let mut values = values;
    if let Some(obj) = values.as_object_mut() {
        obj.insert("client_id".into(), json!(request.client_id));
        obj.insert("csrf".into(), json!(csrf.token()));
        obj.insert("ix".into(), json!(ix));
        obj.insert("lang_link".into(), json!(lang_link));
        obj.insert("error".into(), json!(message.error));
        obj.insert("notice".into(), json!(message.notice));
    }
    let mut p = Page::new(template, lang, values);
    p.form_targets = origin_of(&request.redirect_uri);
    if message.error.is_some() {
        p.status = StatusCode::BAD_REQUEST;
    }
    let mut response = page(p);
    csrf.apply(&mut response);
    response
}

/// Where a GET without an interaction starts: a pushed request, or the URL's parameters.
enum Start {
    Request(Box<AuthorizationRequest>),
    /// Nothing may be redirected: show this (i18n key) to the subscriber.
    Refuse(&'static str),
    /// Tell the client, at its checked redirect URI.
    Redirect(Box<AuthorizationRequest>, OAuth2Error),
}

async fn start(services: &Services, raw: &RawRequest) -> Result<Start, OAuth2Error> {
    if let Some(uri) = &raw.request_uri {
        if uri.len() > 200 || !uri.starts_with(REQUEST_URI_PREFIX) {
            return Ok(Start::Refuse("error_expired"));
        }
        let Some(pushed) = request::take_pushed(&services.kv, uri).await? else {
            return Ok(Start::Refuse("error_expired"));
        };
        // RFC 9126 §4: the client_id of the authorization request names the pusher.
        if raw.client_id.as_deref() != Some(pushed.client_id.as_str()) {
            return Ok(Start::Refuse("error_client"));
        }
        return Ok(Start::Request(Box::new(pushed)));
    }
    let client_id = raw.client_id.as_deref().unwrap_or("");
    if client_id.is_empty() || text::check(client_id, text::ID).is_err() {
        return Ok(Start::Refuse("error_client"));
    }
    let Some(client) = clients::find(services, client_id).await? else {
        return Ok(Start::Refuse("error_client"));
    };
    let Ok((redirect_uri, given)) = request::redirect_target(raw, &client) else {
        return Ok(Start::Refuse("error_client"));
    };
    Ok(
        match request::validate(raw, &client, &services.config.csc) {
            Ok(r) => Start::Request(Box::new(r)),
            Err(e) => {
                let target = AuthorizationRequest {
                    client_id: client.client_id,
                    redirect_uri,
                    redirect_uri_given: given,
                    state: raw
                        .state
                        .clone()
                        .filter(|s| text::check(s, text::ID * 4).is_ok()),
                    code_challenge: String::new(),
                    scope: String::new(),
                    grant: None,
                    authorization_details: None,
                };
                Start::Redirect(Box::new(target), e)
            }
        },
    )
}

/// `GET /oauth2/authorize`: a pushed request (`client_id` + `request_uri`), the request's own
/// parameters, or an interaction in progress (`ix`, e.g. to change language).
pub async fn authorize_page(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    query: web::Query<RawRequest>,
) -> HttpResponse {
    let raw = query.into_inner();
    let lang = Lang::negotiate(&req, raw.lang.as_deref());
    let kv = &services.kv;
    let (ix, request) = match &raw.ix {
        Some(ix) => match request::interaction(kv, ix).await {
            Ok(Some(r)) => (ix.clone(), r),
            Ok(None) => return error_page(lang, StatusCode::BAD_REQUEST, "error_expired"),
            Err(e) => return unavailable(lang, &e),
        },
        None => {
            let request = match start(&services, &raw).await {
                Ok(Start::Request(r)) => *r,
                Ok(Start::Refuse(key)) => return error_page(lang, StatusCode::BAD_REQUEST, key),
                Ok(Start::Redirect(target, e)) => return redirect_error(&services, &target, &e),
                Err(e) => return unavailable(lang, &e),
            };
            let ttl = services.config.oauth2.interaction_ttl_secs;
            match request::begin(kv, &request, ttl).await {
                Ok(ix) => (ix, request),
                Err(e) => return unavailable(lang, &e),
            }
        }
    };
    let session = match session_cookie(&services).find(kv, &req).await {
        Ok(s) => s,
        Err(e) => return unavailable(lang, &e),
    };
    show(
        &services,
        lang,
        &csrf,
        &ix,
        &request,
        session.as_ref(),
        Message::default(),
        "",
    )
    .await
}

fn unavailable(lang: Lang, cause: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %cause, "authorization page unavailable");
    error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_server")
}

/// The form of the page.
#[derive(Deserialize)]
pub struct PageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ix: String,
    lang: Option<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    otp: String,
}

/// `POST /oauth2/authorize`: `action` = `login`, `switch`, `sms`, `authorize` or `cancel`.
pub async fn authorize_submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<PageForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    // Before anything else: a form posted from another site stops here.
    if !csrf.verify(&form.csrf) {
        return error_page(lang, StatusCode::FORBIDDEN, "error_csrf");
    }
    let fields = [
        (&form.ix, text::ID),
        (&form.action, text::ID),
        (&form.user_id, text::ID),
        (&form.password, text::SECRET),
        (&form.pin, text::ID),
        (&form.otp, text::ID),
    ];
    if fields.iter().any(|(v, max)| text::check(v, *max).is_err()) {
        return error_page(lang, StatusCode::BAD_REQUEST, "error_expired");
    }
    let kv = &services.kv;
    let request = match request::interaction(kv, &form.ix).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(lang, StatusCode::BAD_REQUEST, "error_expired"),
        Err(e) => return unavailable(lang, &e),
    };
    let cookie = session_cookie(&services);
    let session = match cookie.find(kv, &req).await {
        Ok(s) => s,
        Err(e) => return unavailable(lang, &e),
    };
    let step = Step {
        services: &services,
        lang,
        csrf: &csrf,
        ix: &form.ix,
        request: &request,
    };
    match (form.action.as_str(), session) {
        ("cancel", _) => {
            let _ = request::end(kv, &form.ix).await;
            redirect_error(&services, &request, &OAuth2Error::AccessDenied)
        }
        ("login", _) => step.login(&form, &origin, &cookie).await,
        // "Not you?": the sign-in form; a successful sign-in replaces the session.
        ("switch", _) => step.show(None, Message::default(), "").await,
        ("sms", Some(s)) => step.send_sms(&s).await,
        ("authorize", Some(s)) => step.authorize(&s, &form).await,
        // Signed out meanwhile (idle timeout, password change): sign in again.
        (_, _) => step.show(None, Message::default(), "").await,
    }
}

/// One POST's context.
struct Step<'a> {
    services: &'a Services,
    lang: Lang,
    csrf: &'a Csrf,
    ix: &'a str,
    request: &'a AuthorizationRequest,
}

impl Step<'_> {
    async fn show(&self, session: Option<&WebSession>, m: Message, user: &str) -> HttpResponse {
        show(
            self.services,
            self.lang,
            self.csrf,
            self.ix,
            self.request,
            session,
            m,
            user,
        )
        .await
    }

    async fn login(
        &self,
        form: &PageForm,
        origin: &Origin,
        cookie: &SessionCookie,
    ) -> HttpResponse {
        let services = self.services;
        let method = LoginMethod::Password {
            user_id: form.user_id.clone(),
            password: form.password.clone(),
        };
        // The login of auth/login: its per-user and per-address budgets, its decoy hash for
        // unknown users, its audit. Its token is only read back for the user and epoch.
        let claims = match auth::login(services, method, false, origin).await {
            Ok(result) => services.tokens.verify(&result.access.token),
            Err(e) => Err(e),
        };
        let claims = match claims {
            Ok(c) => c,
            Err(e) => {
                let key = match e {
                    AuthError::InvalidCredentials | AuthError::InvalidToken => "wrong_login",
                    AuthError::TooManyAttempts { .. } => "too_many",
                    AuthError::Busy { .. } => "busy",
                    other => return unavailable(self.lang, &other),
                };
                return self
                    .show(None, Message::error(self.lang.text(key)), &form.user_id)
                    .await;
            }
        };
        let secure = services.config.tls.enabled();
        let started = match cookie
            .start(&services.kv, &claims.sub, claims.ep, secure)
            .await
        {
            Ok(c) => c,
            Err(e) => return unavailable(self.lang, &e),
        };
        let session = WebSession {
            user_id: claims.sub,
            epoch: claims.ep,
        };
        let mut response = if self.request.scope == SCOPE_SERVICE {
            self.finish(&session, None, None).await
        } else {
            self.show(Some(&session), Message::default(), "").await
        };
        set_cookie(&mut response, &started);
        response
    }

    async fn send_sms(&self, session: &WebSession) -> HttpResponse {
        let Some(grant) = &self.request.grant else {
            return self.show(Some(session), Message::default(), "").await;
        };
        let sent = activation::send_otp(self.services, &session.user_id, grant.credential_id).await;
        let message = match sent {
            Ok(()) => Message {
                error: None,
                notice: Some(self.lang.text("sms_sent").to_owned()),
            },
            Err(e) => match self.refusal(&e) {
                Some(text) => Message::error(text),
                None => return unavailable(self.lang, &e),
            },
        };
        self.show(Some(session), message, "").await
    }

    async fn authorize(&self, session: &WebSession, form: &PageForm) -> HttpResponse {
        let Some(grant) = &self.request.grant else {
            return self.show(Some(session), Message::default(), "").await;
        };
        let authorized = activation::authorize(
            self.services,
            AuthorizeCommand {
                user_id: session.user_id.clone(),
                credential_id: grant.credential_id,
                num_signatures: grant.num_signatures,
                hashes: grant.decoded_hashes(),
                hash_alg: grant.hash_alg(),
                pin: Some(form.pin.clone()),
                otp: Some(form.otp.clone()),
            },
        )
        .await;
        match authorized {
            Ok(a) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let expires_at = now.saturating_add(i64::try_from(a.expires_in).unwrap_or(0));
                self.finish(session, Some(&a.sad), Some(expires_at)).await
            }
            Err(e) => match self.refusal(&e) {
                Some(text) => self.show(Some(session), Message::error(text), "").await,
                None => unavailable(self.lang, &e),
            },
        }
    }

    /// What the subscriber reads for a refused PIN, OTP or credential; `None`: not theirs.
    fn refusal(&self, e: &ActivationError) -> Option<String> {
        let t = |key| self.lang.text(key).to_owned();
        Some(match e {
            ActivationError::WrongPin { remaining } => format!("{} {remaining}", t("wrong_pin")),
            ActivationError::PinBlocked => t("pin_blocked"),
            ActivationError::Malformed { .. } => t("wrong_otp"),
            ActivationError::Otp(OtpError::RateLimited { .. }) => t("otp_limit"),
            ActivationError::Otp(OtpError::TooManyWrong { .. }) => t("too_many"),
            ActivationError::Otp(
                OtpError::Wrong
                | OtpError::Expired
                | OtpError::Replayed
                | OtpError::Malformed
                | OtpError::OtherPurpose
                | OtpError::NotOnline,
            ) => t("wrong_otp"),
            ActivationError::CredentialNotFound => t("unknown_credential"),
            ActivationError::WrongState(_)
            | ActivationError::CertificateExpired
            | ActivationError::WrongPuk { .. }
            | ActivationError::PukBlocked
            | ActivationError::SadUnknown => t("cannot_sign"),
            _ => return None,
        })
    }

    /// Ends the interaction (once) and sends the browser back to the client with a code.
    async fn finish(
        &self,
        session: &WebSession,
        sad: Option<&str>,
        sad_expires_at: Option<i64>,
    ) -> HttpResponse {
        let services = self.services;
        match request::end(&services.kv, self.ix).await {
            Ok(true) => {}
            Ok(false) => return error_page(self.lang, StatusCode::BAD_REQUEST, "error_expired"),
            Err(e) => return unavailable(self.lang, &e),
        }
        let grant = CodeGrant::new(
            self.request,
            &session.user_id,
            session.epoch,
            sad_expires_at,
        );
        let ttl = services.config.oauth2.code_ttl_secs;
        match codes::issue(&services.kv, grant, sad, ttl).await {
            Ok(code) => redirect(services, self.request, &[("code", &code)]),
            Err(e) => unavailable(self.lang, &e),
        }
    }
}

fn set_cookie(response: &mut HttpResponse, cookie: &Cookie<'_>) {
    if let Err(e) = response.add_cookie(cookie) {
        tracing::warn!(error = %e, "could not set the page session cookie");
    }
}
