//! The `audit_log` table.

use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, DbError};

/// Signatures a signHash takes from a SAD's durable record, in the same commit as its row.
#[derive(Debug, Clone, Copy)]
pub struct SadSpend {
    pub sad_id: Uuid,
    pub count: i32,
}

/// One audit record.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub actor: String,
    pub action: &'static str,
    pub credential_id: Option<Uuid>,
    pub outcome: &'static str,
    pub detail: Value,
    /// Set on a signHash that signed: the row commits only with the spend (see `insert_many`).
    pub spends: Option<SadSpend>,
}

/// The outcome written instead when a SAD's durable record refused the spend.
pub const REFUSED_DURABLE: &str = "refused_sad_spent";

/// Inserts `records` in one statement (one commit) and spends their SADs in the same one.
/// A record whose spend the `sads` table refuses — more signatures than authorised, past the
/// deadline, or a credential no longer active or suspended since — is written with outcome
/// `refused_sad_spent`; the positions of those records are returned, and their callers must
/// not release a signature. Spends of one SAD in one batch are granted or refused together.
pub async fn insert_many(db: &Db, records: &[&AuditRecord]) -> Result<Vec<usize>, DbError> {
    let actors: Vec<&str> = records.iter().map(|r| r.actor.as_str()).collect();
    let actions: Vec<&str> = records.iter().map(|r| r.action).collect();
    let credentials: Vec<Option<Uuid>> = records.iter().map(|r| r.credential_id).collect();
    let outcomes: Vec<&str> = records.iter().map(|r| r.outcome).collect();
    let details: Vec<&Value> = records.iter().map(|r| &r.detail).collect();
    let client = db.get().await?;
    if records.iter().all(|r| r.spends.is_none()) {
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
        return Ok(Vec::new());
    }
    let sads: Vec<Option<Uuid>> = records.iter().map(|r| r.spends.map(|s| s.sad_id)).collect();
    let counts: Vec<i32> = records
        .iter()
        .map(|r| r.spends.map_or(0, |s| s.count))
        .collect();
    // One statement: the UPDATE of `sads` and the INSERT see the same snapshot, and the row
    // lock of each SAD serialises writers of several nodes (READ COMMITTED re-checks the
    // WHERE on the row a concurrent commit updated).
    let insert = client
        .prepare_cached(
            "WITH req AS ( \
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[], $5::jsonb[], \
                                    $6::uuid[], $7::int[]) WITH ORDINALITY \
                 AS r(actor, action, credential_id, outcome, detail, sad_id, n, idx)), \
             want AS (SELECT sad_id, sum(n)::int AS n FROM req WHERE sad_id IS NOT NULL \
                      GROUP BY sad_id), \
             spent AS ( \
               UPDATE sads s SET used = s.used + w.n FROM want w, credentials c \
               WHERE s.sad_id = w.sad_id AND c.credential_id = s.credential_id \
                 AND c.status = 'active' AND c.generation = s.generation \
                 AND c.valid_to > now() AND s.expires_at > now() \
                 AND s.used + w.n <= s.authorised \
               RETURNING s.sad_id), \
             refused AS ( \
               SELECT idx FROM req \
               WHERE sad_id IS NOT NULL AND sad_id NOT IN (SELECT sad_id FROM spent)), \
             written AS ( \
               INSERT INTO audit_log (actor, action, credential_id, outcome, detail) \
               SELECT actor, action, credential_id, \
                      CASE WHEN idx IN (SELECT idx FROM refused) THEN $8 ELSE outcome END, \
                      detail \
               FROM req ORDER BY idx RETURNING 1) \
             SELECT idx FROM refused WHERE (SELECT count(*) FROM written) > 0",
        )
        .await?;
    let rows = client
        .query(
            &insert,
            &[
                &actors,
                &actions,
                &credentials,
                &outcomes,
                &details,
                &sads,
                &counts,
                &REFUSED_DURABLE,
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let idx: i64 = row.try_get("idx")?;
            usize::try_from(idx - 1).map_err(|_| DbError::Corrupt("audit_log ordinality"))
        })
        .collect()
}
