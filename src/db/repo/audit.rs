//! The `audit_log` table.

use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, DbError};

/// One audit record.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub actor: String,
    pub action: &'static str,
    pub credential_id: Option<Uuid>,
    pub outcome: &'static str,
    pub detail: Value,
}

pub async fn insert(db: &Db, r: &AuditRecord) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            "INSERT INTO audit_log (actor, action, credential_id, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&r.actor, &r.action, &r.credential_id, &r.outcome, &r.detail],
        )
        .await?;
    Ok(())
}
