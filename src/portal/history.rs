//! `GET /api/v1/credentials/{id}/history`: the credential's signing history (`history`).

use actix_web::{web, HttpRequest, HttpResponse};

use super::wire::{HistoryQuery, HistoryResponse};
use crate::error::ApiError;
use crate::extract::{credential_id, Subscriber};
use crate::history;
use crate::services::Services;

/// → 200 a page of the history, newest first; another subscriber's credential is the same
/// `invalid_request` as a missing one.
pub async fn history(
    services: web::Data<Services>,
    subscriber: Subscriber,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = credential_id(&path)?;
    let query = web::Query::<HistoryQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {e}")))?;
    let (before, limit) = query.validate().map_err(ApiError::invalid_request)?;
    let page = history::signing_history(&services, &subscriber.user_id, id, before, limit).await?;
    Ok(HttpResponse::Ok().json(HistoryResponse::of(id, page)))
}
