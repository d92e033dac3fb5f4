//! `/portal/`: one card per credential of the subscriber — purpose, status, serial number,
//! expiry date and days left, a warning inside the renewal window, and only the actions its
//! state allows. The facts are the JSON API's (`credentials::list_for_portal`, an audited
//! read, and `portal::wire::CredentialView`, which decides `expired` and `renewable`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use super::{done_notice, show, unavailable, PageQuery, SignedIn, View, HOME};
use crate::credentials;
use crate::db::repo;
use crate::model::{Credential, CredentialStatus};
use crate::portal::wire::CredentialView;
use crate::services::Services;
use crate::web::{Csrf, Lang};

/// The portal pages that act on a credential in `status` (a `CredentialView` status:
/// `expired` once the certificate ran out), as (path suffix, strings key). An inactive
/// credential is activated with the PUK, an active one changes its PIN (and renews inside the
/// window, once), a PIN-blocked one is unblocked with the PUK; a blocked (PUK spent),
/// revoked or expired one has nothing the subscriber can do here, nor a suspended one unless
/// the subscriber suspended it (`by_subscriber`: resumed with the PUK and a new device).
fn actions(
    status: &str,
    renewable: bool,
    by_subscriber: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut actions = match status {
        "inactive" => vec![("activate", "portal_action_activate")],
        "active" => vec![("pin", "portal_action_pin")],
        "pin_blocked" => vec![("unblock", "portal_action_unblock")],
        "suspended" if by_subscriber => vec![("resume", "portal_action_resume")],
        _ => Vec::new(),
    };
    if renewable {
        actions.push(("renew", "portal_action_renew"));
    }
    actions.push(("history", "portal_action_history"));
    actions
}

/// What a card says about a state the subscriber cannot act on here (or must act on).
fn hint_key(status: &str, by_subscriber: bool) -> Option<&'static str> {
    Some(match status {
        "suspended" if by_subscriber => "portal_hint_emergency",
        "inactive" => "portal_hint_inactive",
        "pin_blocked" => "portal_hint_pin_blocked",
        "blocked" => "portal_hint_blocked",
        "suspended" => "portal_hint_suspended",
        "revoked" => "portal_hint_revoked",
        "expired" => "portal_hint_expired",
        _ => return None,
    })
}

/// The expiry date as the language writes it.
pub(super) fn date(lang: Lang, t: OffsetDateTime) -> String {
    let formatted = match lang {
        Lang::It => t.format(format_description!("[day]/[month]/[year]")),
        Lang::En => t.format(format_description!("[day] [month repr:short] [year]")),
    };
    formatted.unwrap_or_default()
}

/// One card's values.
fn card(
    lang: Lang,
    c: &Credential,
    now: OffsetDateTime,
    window_days: u32,
    by_subscriber: bool,
) -> Value {
    let view = CredentialView::of(c, now, window_days);
    let window_opens = c.valid_to - Duration::days(i64::from(window_days));
    // Inside the window, not renewed yet, and still a credential that can come back to use.
    let in_window = now >= window_opens
        && view.status != "expired"
        && !view.renewed
        && !matches!(c.status, CredentialStatus::Revoked);
    let base = format!("/portal/credentials/{}", c.credential_id);
    let actions: Vec<Value> = actions(view.status, view.renewable, by_subscriber)
        .into_iter()
        .map(|(suffix, key)| {
            json!({
                "href": format!("{base}/{suffix}?lang={}", lang.code()),
                "label": lang.text(key),
            })
        })
        .collect();
    let status_key = format!("portal_status_{}", view.status);
    let hint = hint_key(view.status, by_subscriber).map(|k| lang.text(k));
    json!({
        "id": c.credential_id,
        "purpose": lang.text(&format!("portal_purpose_{}", view.purpose)),
        "status": view.status,
        "status_label": lang.text(&status_key),
        "hint": hint,
        "serial_number": view.serial_number,
        "valid_to": date(lang, c.valid_to),
        "days_remaining": view.days_remaining,
        "in_window": in_window,
        "renewed": view.renewed,
        "actions": actions,
    })
}

/// `GET /portal/`.
pub async fn home(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let query = query.into_inner();
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let all = match credentials::list_for_portal(&services, &signed_in.user_id).await {
        Ok(all) => all,
        Err(e) => return unavailable(lang, &e),
    };
    let held =
        match repo::credentials::suspended_by_subscriber(&services.db, &signed_in.user_id).await {
            Ok(held) => held,
            Err(e) => return unavailable(lang, &e),
        };
    let now = OffsetDateTime::now_utc();
    let window = services.config.lifecycle.renewal_window_days;
    let cards: Vec<Value> = all
        .iter()
        .map(|c| card(lang, c, now, window, held.contains(&c.credential_id)))
        .collect();
    let lang_code = lang.code();
    let mut view = View::new(
        "portal/home.html",
        lang,
        HOME,
        json!({
            "cards": cards,
            "password_href": format!("/portal/password?lang={lang_code}"),
            "device_href": format!("/portal/otp/device?lang={lang_code}"),
        }),
    )
    .signed_in(&signed_in);
    view.notice = done_notice(lang, query.done.as_deref());
    show(&csrf, view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_offers_only_its_actions() {
        let paths = |s, r| {
            actions(s, r, false)
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        };
        assert_eq!(paths("inactive", false), ["activate", "history"]);
        assert_eq!(paths("active", false), ["pin", "history"]);
        assert_eq!(paths("active", true), ["pin", "renew", "history"]);
        assert_eq!(paths("pin_blocked", false), ["unblock", "history"]);
        for done in ["blocked", "suspended", "revoked", "expired"] {
            assert_eq!(paths(done, false), ["history"], "{done}");
        }
        // Only the subscriber's own suspension can be lifted here.
        let own = |s| {
            actions(s, false, true)
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        };
        assert_eq!(own("suspended"), ["resume", "history"]);
        assert_eq!(own("blocked"), ["history"]);
    }
}
