//! The audit trail: one durable row per security-relevant operation, written before the
//! operation's result is returned.

use serde_json::Value;
use uuid::Uuid;

use crate::db::repo::audit::{self, AuditRecord};
use crate::db::{Db, DbError};

/// Records that `actor` did `action` (on `credential_id`) with `outcome`.
pub async fn record(
    db: &Db,
    actor: &str,
    action: &'static str,
    credential_id: Option<Uuid>,
    outcome: &'static str,
    detail: Value,
) -> Result<(), DbError> {
    audit::insert(
        db,
        &AuditRecord {
            actor: actor.to_owned(),
            action,
            credential_id,
            outcome,
            detail,
        },
    )
    .await
}
