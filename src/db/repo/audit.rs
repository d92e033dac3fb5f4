//! The `audit_log` table and the heads of its hash chains (`audit_chains`).

use serde_json::Value;
use time::OffsetDateTime;
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

/// A row to write, with its final outcome and its link in the chain.
pub struct ChainedRow<'a> {
    pub record: &'a AuditRecord,
    /// `record.outcome`, or [`REFUSED_DURABLE`] when its spend is known to be refused.
    pub outcome: &'a str,
    /// The spend to make; `None` when there is none or it is known to be refused.
    pub spends: Option<SadSpend>,
    pub seq: i64,
    pub hash: [u8; 32],
}

/// The head of a chain: how many rows it has, and the link of the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// What [`insert_many`] did.
#[derive(Debug)]
pub enum Insert {
    /// The rows are written, every spend made, the chain's head moved past them.
    Written,
    /// Nothing was written nor spent: these SADs refused their spends, or the head is not
    /// the one the links were computed from (`head`: the one found; `None`: no such chain).
    Stale {
        refused: Vec<Uuid>,
        head: Option<Head>,
    },
}

/// Registers a new chain whose first row follows `start` (nothing if it exists).
pub async fn start_chain(db: &Db, chain_id: Uuid, start: &[u8]) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            // Again after a lost answer: the chain is there already.
            "INSERT INTO audit_chains (chain_id, seq, hash) VALUES ($1, 0, $2) \
             ON CONFLICT (chain_id) DO NOTHING",
            &[&chain_id, &start],
        )
        .await?;
    Ok(())
}

/// Writes `rows` at `at` as the next rows of chain `chain_id` (whose head must still be
/// `head`), spends their SADs and moves the head, all in ONE statement (one round trip, one
/// commit) — or, if a SAD refuses its spend or the head moved, does nothing and says why, so
/// that the caller computes the links again. The links cover the final outcome, which must
/// therefore be known before the statement: a row whose SAD refused is written with
/// [`REFUSED_DURABLE`] on the next try. A refusal stays a refusal (signatures used, deadlines
/// and credential generations only grow), and spends of one SAD in one batch are granted or
/// refused together.
pub async fn insert_many(
    db: &Db,
    chain_id: Uuid,
    head: &Head,
    at: OffsetDateTime,
    rows: &[ChainedRow<'_>],
) -> Result<Insert, DbError> {
    let actors: Vec<&str> = rows.iter().map(|r| r.record.actor.as_str()).collect();
    let actions: Vec<&str> = rows.iter().map(|r| r.record.action).collect();
    let credentials: Vec<Option<Uuid>> = rows.iter().map(|r| r.record.credential_id).collect();
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome).collect();
    let details: Vec<&Value> = rows.iter().map(|r| &r.record.detail).collect();
    let sads: Vec<Option<Uuid>> = rows.iter().map(|r| r.spends.map(|s| s.sad_id)).collect();
    let counts: Vec<i32> = rows
        .iter()
        .map(|r| r.spends.map_or(0, |s| s.count))
        .collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.hash[..]).collect();
    let last = rows
        .last()
        .map_or((head.seq, &head.hash[..]), |r| (r.seq, &r.hash[..]));
    let client = db.get().await?;
    // Prepared once per connection: the hot path pays no parse/plan per commit.
    // `grantable` and `head` lock the SADs and the chain head (READ COMMITTED re-checks their
    // conditions on the row a concurrent commit updated, so writers of several nodes
    // serialise on each SAD); every write is conditional on `verdict`, so a refused spend or a
    // moved head leaves everything as it was.
    let statement = client
        .prepare_cached(
            "WITH req AS ( \
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[], $5::jsonb[], \
                                    $6::uuid[], $7::int[], $8::bigint[], $9::bytea[]) \
                 WITH ORDINALITY \
                 AS r(actor, action, credential_id, outcome, detail, sad_id, n, seq, hash, idx)), \
             want AS (SELECT sad_id, sum(n)::int AS n FROM req WHERE sad_id IS NOT NULL \
                      GROUP BY sad_id), \
             grantable AS ( \
               SELECT s.sad_id FROM sads s JOIN want w ON w.sad_id = s.sad_id \
                 JOIN credentials c ON c.credential_id = s.credential_id \
               WHERE c.status = 'active' AND c.generation = s.generation \
                 AND c.valid_to > now() AND s.expires_at > now() \
                 AND s.used + w.n <= s.authorised \
               FOR UPDATE OF s), \
             head AS (SELECT seq, hash FROM audit_chains WHERE chain_id = $10 FOR UPDATE), \
             refused AS (SELECT sad_id FROM want \
                         WHERE sad_id NOT IN (SELECT sad_id FROM grantable)), \
             verdict AS ( \
               SELECT COALESCE((SELECT seq = $11 AND hash = $12 FROM head), false) \
                      AND NOT EXISTS (SELECT 1 FROM refused) AS ok), \
             spent AS ( \
               UPDATE sads s SET used = s.used + w.n FROM want w \
               WHERE s.sad_id = w.sad_id AND (SELECT ok FROM verdict) RETURNING 1), \
             moved AS ( \
               UPDATE audit_chains SET seq = $13, hash = $14 \
               WHERE chain_id = $10 AND (SELECT ok FROM verdict) RETURNING 1), \
             written AS ( \
               INSERT INTO audit_log (at, actor, action, credential_id, outcome, detail, \
                                      chain_id, chain_seq, chain_hash) \
               SELECT $15, actor, action, credential_id, outcome, detail, $10, seq, hash \
               FROM req WHERE (SELECT ok FROM verdict) ORDER BY idx RETURNING 1) \
             SELECT (SELECT ok FROM verdict) AS ok, \
                    ARRAY(SELECT sad_id FROM refused) AS refused, \
                    (SELECT seq FROM head) AS head_seq, (SELECT hash FROM head) AS head_hash",
        )
        .await?;
    let row = client
        .query_one(
            &statement,
            &[
                &actors,
                &actions,
                &credentials,
                &outcomes,
                &details,
                &sads,
                &counts,
                &seqs,
                &hashes,
                &chain_id,
                &head.seq,
                &head.hash,
                &last.0,
                &last.1,
                &at,
            ],
        )
        .await?;
    if row.try_get::<_, bool>("ok")? {
        return Ok(Insert::Written);
    }
    let seq: Option<i64> = row.try_get("head_seq")?;
    let hash: Option<Vec<u8>> = row.try_get("head_hash")?;
    Ok(Insert::Stale {
        refused: row.try_get("refused")?,
        head: seq.zip(hash).map(|(seq, hash)| Head { seq, hash }),
    })
}

/// One signHash that signed, as the signing history shows it.
#[derive(Debug, Clone)]
pub struct SignatureRow {
    /// The row's id: the history's page cursor (rows are read newest first by it).
    pub id: i64,
    pub at: OffsetDateTime,
    pub detail: Value,
}

/// The signHash rows of `credential_id` that signed (outcome `ok`: the SAD's durable record
/// granted them), newest first, with an id below `before` when given; at most `limit`.
pub async fn signatures(
    db: &Db,
    credential_id: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<SignatureRow>, DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT id, at, detail FROM audit_log \
             WHERE credential_id = $1 AND action = 'signatures.signHash' AND outcome = 'ok' \
               AND ($2::bigint IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
            &[&credential_id, &before, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SignatureRow {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                detail: r.try_get(2)?,
            })
        })
        .collect()
}

/// How many signatures `credential_id` made in all (the counts of its signHash rows that
/// signed).
pub async fn signature_total(db: &Db, credential_id: Uuid) -> Result<i64, DbError> {
    let client = db.get().await?;
    let row = client
        .query_one(
            "SELECT COALESCE(sum((detail->>'count')::bigint), 0)::bigint FROM audit_log \
             WHERE credential_id = $1 AND action = 'signatures.signHash' AND outcome = 'ok'",
            &[&credential_id],
        )
        .await?;
    Ok(row.try_get(0)?)
}
