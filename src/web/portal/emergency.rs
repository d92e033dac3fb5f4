//! `/portal/emergency`, without signing in: user id + emergency code suspend every signing
//! credential of the subscriber, through `activation::emergency::emergency_suspend` — the very
//! function of `POST /api/v1/emergency-suspension`, with its password budget, its decoy HMAC
//! for unknown user ids, its audit and its e-mail.
//!
//! Invariant: the page never says whether a user id exists. An unknown id and a wrong code
//! read the same, and the refused form echoes neither the id nor the code, so the two pages
//! are byte for byte the same.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{checked, csrf_refused, refusal, refusal_status, show, unavailable, Failure, View};
use crate::activation::emergency::{self, EmergencyError};
use crate::extract::ClientOrigin;
use crate::services::Services;
use crate::text;
use crate::web::{Csrf, Lang};

/// The page's path.
pub const PATH: &str = "/portal/emergency";

fn form_view<'a>(lang: Lang) -> View<'a> {
    View::new(
        "portal/emergency.html",
        lang,
        PATH,
        json!({ "done": false }),
    )
}

/// `GET /portal/emergency`: the form.
pub async fn form(req: HttpRequest, csrf: Csrf) -> HttpResponse {
    let lang = Lang::negotiate(&req, super::query_lang(&req).as_deref());
    show(&csrf, form_view(lang))
}

#[derive(Deserialize)]
pub struct EmergencyForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    emergency_code: String,
}

/// `POST /portal/emergency`: suspends, then says how many credentials it stopped; a refusal
/// shows the empty form again with the reason.
pub async fn submit(
    services: web::Data<Services>,
    req: HttpRequest,
    csrf: Csrf,
    ClientOrigin(origin): ClientOrigin,
    form: web::Form<EmergencyForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let lang = Lang::negotiate(&req, form.lang.as_deref());
    // Before anything else: a form posted from another site stops here.
    if !csrf.verify(&form.csrf) {
        return csrf_refused(lang);
    }
    let suspended = if checked(&[
        (&form.user_id, text::ID),
        (&form.emergency_code, text::SECRET),
    ]) {
        emergency::emergency_suspend(&services, &form.user_id, &form.emergency_code, &origin).await
    } else {
        // Text no user id or code can be: the same refusal as a wrong code.
        Err(EmergencyError::Refused)
    };
    match suspended {
        Ok(count) => show(
            &csrf,
            View::new(
                "portal/emergency.html",
                lang,
                PATH,
                json!({ "done": true, "count": count }),
            ),
        ),
        Err(e) => {
            let failure = Failure::from(e);
            match refusal(lang, &failure) {
                Some(message) => show(
                    &csrf,
                    form_view(lang).refused(refusal_status(&failure), message),
                ),
                None => unavailable(lang, &failure),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;

    #[test]
    fn the_refusal_reads_the_same_for_an_unknown_id_and_a_wrong_code() {
        let failure = Failure::from(EmergencyError::Refused);
        assert_eq!(refusal_status(&failure), StatusCode::BAD_REQUEST);
        let it = refusal(Lang::It, &failure).unwrap();
        let en = refusal(Lang::En, &failure).unwrap();
        assert_ne!(it, en);
        assert!(!it.contains('?') && !en.contains('?'));
    }
}
