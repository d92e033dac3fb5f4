//! `sigillo audit export`: the audit rows of a time range as JSON lines, with their chain
//! values, for an auditor (who can keep them and later check that the rows and their links
//! are still the same). Streamed through a portal: constant memory.

use std::io::Write;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

use crate::db::{Db, DbError};

/// Rows fetched per page.
const PAGE: i32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

impl From<tokio_postgres::Error> for ExportError {
    fn from(err: tokio_postgres::Error) -> Self {
        ExportError::Db(err.into())
    }
}

/// Writes every row with `from <= at < to` (either bound optional), in id order, one JSON
/// object a line; returns how many.
pub async fn export(
    db: &Db,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let mut client = db.get().await.map_err(DbError::from)?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let statement = tx
        .prepare(
            "SELECT id, at, actor, action, credential_id, outcome, detail, \
                    chain_id, chain_seq, chain_hash \
             FROM audit_log \
             WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2) \
             ORDER BY id",
        )
        .await?;
    let portal = tx.bind(&statement, &[&from, &to]).await?;
    let mut written = 0;
    loop {
        let page = tx.query_portal(&portal, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            let at: OffsetDateTime = row.try_get("at")?;
            let hash: Option<Vec<u8>> = row.try_get("chain_hash")?;
            let line = json!({
                "id": row.try_get::<_, i64>("id")?,
                "at": at.format(&Rfc3339).ok(),
                "actor": row.try_get::<_, String>("actor")?,
                "action": row.try_get::<_, String>("action")?,
                "credential_id": row.try_get::<_, Option<Uuid>>("credential_id")?,
                "outcome": row.try_get::<_, String>("outcome")?,
                "detail": row.try_get::<_, Value>("detail")?,
                "chain_id": row.try_get::<_, Option<Uuid>>("chain_id")?,
                "chain_seq": row.try_get::<_, Option<i64>>("chain_seq")?,
                "chain_hash": hash.map(hex::encode),
            });
            writeln!(out, "{line}")?;
            written += 1;
        }
    }
    out.flush()?;
    tx.commit().await?;
    Ok(written)
}
