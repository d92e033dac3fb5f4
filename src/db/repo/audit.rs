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

/// Inserts `records` in one statement (one commit).
pub async fn insert_many(db: &Db, records: &[&AuditRecord]) -> Result<(), DbError> {
    let actors: Vec<&str> = records.iter().map(|r| r.actor.as_str()).collect();
    let actions: Vec<&str> = records.iter().map(|r| r.action).collect();
    let credentials: Vec<Option<Uuid>> = records.iter().map(|r| r.credential_id).collect();
    let outcomes: Vec<&str> = records.iter().map(|r| r.outcome).collect();
    let details: Vec<&Value> = records.iter().map(|r| &r.detail).collect();
    let client = db.get().await?;
    // Prepared once per connection: the hot path pays no parse/plan per commit.
    let insert = client
        .prepare_cached(
            "INSERT INTO audit_log (actor, action, credential_id, outcome, detail) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[], $5::jsonb[])",
        )
        .await?;
    client
        .execute(
            &insert,
            &[&actors, &actions, &credentials, &outcomes, &details],
        )
        .await?;
    Ok(())
}
