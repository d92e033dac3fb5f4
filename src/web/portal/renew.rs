//! `/portal/credentials/{id}/renew`: renewal as the issue has it — the subscriber confirms
//! ("Confermo") the identity data the new certificate will carry, gives a coupon, the PIN and
//! an OTP (for SMS users a button texts the code for this operation), and the page then shows
//! the new expiry date. The POST calls `renewal::renew`, the function of
//! `POST /api/v1/credentials/{id}/renew` (its window, state and coupon rules, the PIN and OTP
//! checks, its audit); the SMS button `activation::send_operation_otp`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::home::date;
use super::{
    checked, refusal, refusal_status, show, signed_post, unavailable, unknown_credential, Failure,
    PageQuery, Session, SignedIn, View, HOME,
};
use crate::activation::{self, OtpOperation};
use crate::db::repo;
use crate::model::{Credential, CredentialStatus, OtpMethod};
use crate::portal::wire::CredentialView;
use crate::renewal::{self, RenewCommand};
use crate::services::Services;
use crate::text;
use crate::web::{Csrf, Lang};

#[derive(Deserialize)]
pub struct RenewForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    /// `sms` (send me the code) or anything else (renew).
    #[serde(default)]
    action: String,
    /// `yes` when the "Confermo" box is ticked.
    #[serde(default)]
    confirm_identity: String,
    #[serde(default)]
    coupon: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    otp: String,
}

/// Why the credential cannot be renewed now (a strings key), as the list shows it; `None`
/// when it can. The POST's answer is `renewal::renew`'s own.
fn not_renewable(c: &Credential, view: &CredentialView) -> Option<&'static str> {
    if view.renewable {
        return None;
    }
    Some(match view.status {
        _ if view.renewed => "portal_renew_already",
        "revoked" => "portal_hint_revoked",
        "suspended" => "portal_hint_suspended",
        "expired" => "portal_hint_expired",
        _ if c.status == CredentialStatus::Active => "portal_renew_not_in_window",
        _ => "portal_wrong_state",
    })
}

/// The page for credential `id`: the form, or (with `renewed`) the new expiry date.
async fn renew_page(
    services: &Services,
    csrf: &Csrf,
    signed_in: &SignedIn,
    lang: Lang,
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
    let user = match repo::users::find(&services.db, &signed_in.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return unknown_credential(lang),
        Err(e) => return unavailable(lang, &e),
    };
    let now = OffsetDateTime::now_utc();
    let window = services.config.lifecycle.renewal_window_days;
    let view = CredentialView::of(&credential, now, window);
    let path = format!("/portal/credentials/{id}/renew");
    let blocked = not_renewable(&credential, &view).map(|k| lang.text(k));
    let mut page = View::new(
        "portal/renew.html",
        lang,
        &path,
        json!({
            "action": path,
            "done": false,
            "blocked": blocked,
            "serial_number": credential.serial_number,
            "purpose": lang.text(&format!("portal_purpose_{}", credential.purpose.as_str())),
            "valid_to": date(lang, credential.valid_to),
            "days_remaining": view.days_remaining,
            "given_name": user.given_name,
            "surname": user.surname,
            "fiscal_code": user.fiscal_code,
            "sms": user.otp_method == OtpMethod::Sms,
            "home": format!("{HOME}?lang={}", lang.code()),
        }),
    )
    .signed_in(signed_in);
    if let Some((status, text)) = message {
        page = page.refused(status, text);
    }
    page.notice = notice;
    show(csrf, page)
}

/// `GET /portal/credentials/{id}/renew`.
pub async fn form(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let Ok(id) = Uuid::parse_str(&path) else {
        return unknown_credential(lang);
    };
    renew_page(&services, &csrf, &signed_in, lang, id, None, None).await
}

/// `POST /portal/credentials/{id}/renew`: `action=sms` texts the code; otherwise renews and
/// shows the new expiry date.
pub async fn submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    path: web::Path<String>,
    form: web::Form<RenewForm>,
    session: Session,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    // Before anything else, signed in or not: a form posted from another site stops here.
    let signed_in = match signed_post(&csrf, &form.csrf, lang, session) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let Ok(id) = Uuid::parse_str(&path) else {
        return unknown_credential(lang);
    };
    let page = |message: Option<(StatusCode, String)>, notice: Option<String>| {
        renew_page(&services, &csrf, &signed_in, lang, id, message, notice)
    };
    if !checked(&[
        (&form.action, text::ID),
        (&form.confirm_identity, text::ID),
        (&form.coupon, text::SECRET),
        (&form.pin, text::SECRET),
        (&form.otp, text::SECRET),
    ]) {
        let text = lang.text("portal_bad_input").to_owned();
        return page(Some((StatusCode::BAD_REQUEST, text)), None).await;
    }
    let refused = |failure: Failure| {
        let message = refusal(lang, &failure).map(|t| (refusal_status(&failure), t));
        (message, failure)
    };
    if form.action == "sms" {
        let sent =
            activation::send_operation_otp(&services, &signed_in.user_id, id, OtpOperation::Renew)
                .await;
        return match sent {
            Ok(()) => page(None, Some(lang.text("sms_sent").to_owned())).await,
            Err(e) => match refused(e.into()) {
                (Some(message), _) => page(Some(message), None).await,
                (None, failure) => unavailable(lang, &failure),
            },
        };
    }
    let renewed = renewal::renew(
        &services,
        RenewCommand {
            user_id: signed_in.user_id.clone(),
            credential_id: id,
            confirm_identity: form.confirm_identity == "yes",
            pin: form.pin,
            otp: form.otp,
            coupon: form.coupon,
        },
    )
    .await;
    match renewed {
        Ok(c) => {
            let path = format!("/portal/credentials/{id}/renew");
            let view = View::new(
                "portal/renew.html",
                lang,
                &path,
                json!({
                    "done": true,
                    "serial_number": c.serial_number,
                    "valid_to": date(lang, c.valid_to),
                    "valid_to_iso": c.valid_to.date().to_string(),
                    "home": format!("{HOME}?lang={}", lang.code()),
                }),
            )
            .signed_in(&signed_in);
            show(&csrf, view)
        }
        Err(e) => match refused(e.into()) {
            (Some(message), _) => page(Some(message), None).await,
            (None, failure) => unavailable(lang, &failure),
        },
    }
}
