//! `/portal/notices`: the expiry notices sent to the subscriber, from
//! `credentials::notifications` (the function of `GET /api/v1/notifications`, an audited
//! read), each with a link to the renewal of its credential.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use time::macros::format_description;

use super::{show, unavailable, PageQuery, SignedIn, View, HOME};
use crate::credentials;
use crate::db::repo::notices::Notice;
use crate::services::Services;
use crate::web::{Csrf, Lang};

/// The page's path.
pub const PATH: &str = "/portal/notices";

fn entry(lang: Lang, n: &Notice) -> Value {
    let due = match lang {
        Lang::It => n
            .due_date
            .format(format_description!("[day]/[month]/[year]")),
        Lang::En => n
            .due_date
            .format(format_description!("[day] [month repr:short] [year]")),
    };
    let channel = match n.channel.as_str() {
        "sms" => lang.text("portal_notices_sms"),
        "email" => lang.text("portal_notices_email"),
        _ => "",
    };
    json!({
        "due": due.unwrap_or_default(),
        "due_iso": n.due_date.to_string(),
        "channel": if channel.is_empty() { n.channel.as_str() } else { channel },
        "text": n.text,
        "renew_href": format!("/portal/credentials/{}/renew?lang={}", n.credential_id, lang.code()),
    })
}

/// `GET /portal/notices`.
pub async fn notices(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let sent = match credentials::notifications(&services, &signed_in.user_id).await {
        Ok(sent) => sent,
        Err(e) => return unavailable(lang, &e),
    };
    let notices: Vec<Value> = sent.iter().map(|n| entry(lang, n)).collect();
    let view = View::new(
        "portal/notices.html",
        lang,
        PATH,
        json!({ "notices": notices, "home": format!("{HOME}?lang={}", lang.code()) }),
    )
    .signed_in(&signed_in);
    show(&csrf, view)
}
