//! `/portal/credentials/{id}/history`: the credential's signing history — when, how many
//! signatures, which client — newest first, a page at a time, from `history::signing_history`
//! (the function of `GET /api/v1/credentials/{id}/history`: the subscriber's own credential
//! only, someone else's reads as unknown).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::{refusal, show, unavailable, Failure, SignedIn, View, HOME};
use crate::credentials::CredentialError;
use crate::history::{self, SigningEvent, DEFAULT_PAGE};
use crate::services::Services;
use crate::web::{Csrf, Lang};

#[derive(Deserialize)]
pub struct HistoryQuery {
    lang: Option<String>,
    before: Option<String>,
}

/// When, as the language writes it (UTC, said so).
fn when(lang: Lang, t: OffsetDateTime) -> String {
    let formatted = match lang {
        Lang::It => t.format(format_description!(
            "[day]/[month]/[year] [hour]:[minute]:[second] UTC"
        )),
        Lang::En => t.format(format_description!(
            "[day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
        )),
    };
    formatted.unwrap_or_default()
}

fn entry(lang: Lang, e: &SigningEvent) -> Value {
    json!({
        "at": when(lang, e.at),
        "at_iso": e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "count": e.count,
        "client_id": e.client_id,
        "user_agent": e.user_agent,
        "client_addr": e.client_addr,
        "serial_number": e.serial_number,
    })
}

/// `GET /portal/credentials/{id}/history[?before=…]`.
pub async fn history(
    services: web::Data<Services>,
    req: HttpRequest,
    signed_in: SignedIn,
    csrf: Csrf,
    path: web::Path<String>,
) -> HttpResponse {
    let query = web::Query::<HistoryQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or(HistoryQuery {
            lang: None,
            before: None,
        });
    let lang = Lang::negotiate(&req, query.lang.as_deref());
    let raw_id = path.into_inner();
    let page_path = format!("/portal/credentials/{raw_id}/history");
    // A cursor that is not one starts from the newest.
    let before = query
        .before
        .as_deref()
        .and_then(|b| b.parse::<i64>().ok())
        .filter(|b| *b > 0);
    let found = match uuid::Uuid::parse_str(&raw_id) {
        Ok(id) => {
            history::signing_history(&services, &signed_in.user_id, id, before, DEFAULT_PAGE).await
        }
        Err(_) => Err(CredentialError::NotFound),
    };
    let page = match found {
        Ok(page) => page,
        Err(e) => {
            let failure = Failure::from(e);
            let Some(message) = refusal(lang, &failure) else {
                return unavailable(lang, &failure);
            };
            let view = View::new(
                "portal/history.html",
                lang,
                HOME,
                json!({ "found": false, "home": HOME }),
            )
            .signed_in(&signed_in)
            .refused(StatusCode::NOT_FOUND, message);
            return show(&csrf, view);
        }
    };
    let entries: Vec<Value> = page.events.iter().map(|e| entry(lang, e)).collect();
    let older = page
        .next
        .map(|n| format!("{page_path}?before={n}&lang={}", lang.code()));
    let mut view = View::new(
        "portal/history.html",
        lang,
        &page_path,
        json!({
            "found": true,
            "home": HOME,
            "entries": entries,
            "total": page.total_signatures,
            "older": older,
            "newest": before.map(|_| format!("{page_path}?lang={}", lang.code())),
        }),
    )
    .signed_in(&signed_in);
    if let Some(b) = before {
        view.keep = vec![("before", b.to_string())];
    }
    show(&csrf, view)
}
