//! `sigillo audit verify`: walks every chain of the audit log, row by row in chain order, and
//! reports the first row that breaks it. Rows are read through a portal in one read-only
//! snapshot, a page at a time: memory stays constant whatever the size of the log.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

use super::chain::{ChainKey, RowContent};
use crate::db::{Db, DbError};

/// Rows fetched per page.
const PAGE: i32 = 1000;

/// What verify found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub chains: usize,
    /// Rows whose link checked.
    pub rows: u64,
    /// Rows written before the chain existed (migration 0006): counted, not provable.
    pub unchained_before_chain: i64,
    /// The first break, if any.
    pub broken: Option<Break>,
}

/// A row (or a chain's end) where the chain does not hold.
#[derive(Debug, Serialize)]
pub struct Break {
    /// The row's id; for a chain cut short, its last row left (none if no row is left).
    pub row_id: Option<i64>,
    pub chain_id: Option<Uuid>,
    pub reason: BreakReason,
    /// `reason`, in words.
    pub explanation: String,
}

/// Why the chain breaks there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BreakReason {
    /// A row written after the chain existed carries no chain values (inserted by hand).
    NotChained,
    /// The row names a chain that has no head.
    UnknownChain,
    /// The row's sequence number is not the next one: rows before it were removed (or it
    /// was inserted, or renumbered).
    Sequence { expected: i64, found: i64 },
    /// The row's link is not the HMAC of its content and of the previous link: it was
    /// edited (or inserted).
    Link,
    /// The chain's head records more rows than the chain has: its last rows were removed.
    Truncated { head_seq: i64, last_seq: i64 },
    /// The chain's head does not match its last row.
    Head,
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakReason::NotChained => f.write_str("the row carries no chain values (added outside the gateway)"),
            BreakReason::UnknownChain => f.write_str("the row names a chain that does not exist"),
            BreakReason::Sequence { expected, found } => write!(
                f,
                "sequence number {found} where {expected} was due: rows were removed before it, or it was added"
            ),
            BreakReason::Link => f.write_str(
                "its chain hash is not the HMAC of its content and of the previous row's: it was edited or added",
            ),
            BreakReason::Truncated { head_seq, last_seq } => write!(
                f,
                "the chain's head records {head_seq} rows but the chain ends at {last_seq}: rows after this one were removed"
            ),
            BreakReason::Head => f.write_str("the chain's head does not match its last row"),
        }
    }
}

impl Break {
    fn new(row_id: Option<i64>, chain_id: Option<Uuid>, reason: BreakReason) -> Break {
        Break {
            row_id,
            chain_id,
            explanation: reason.to_string(),
            reason,
        }
    }
}

/// Where a walk along one chain is.
struct Walk {
    chain_id: Uuid,
    seq: i64,
    prev: Vec<u8>,
    last_row: Option<i64>,
}

/// Checks every chain of the audit log; `broken` names the first row that breaks one.
pub async fn verify(db: &Db, key: &ChainKey) -> Result<Report, DbError> {
    let mut client = db.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // Heads: one per writer start, few; the rows are streamed.
    let mut heads: BTreeMap<Uuid, (i64, Vec<u8>)> = BTreeMap::new();
    for row in tx
        .query("SELECT chain_id, seq, hash FROM audit_chains", &[])
        .await?
    {
        heads.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
    }
    let legacy = tx
        .query_one(
            "SELECT COALESCE((SELECT max(last_unchained_id) FROM audit_chain_legacy), 0)",
            &[],
        )
        .await?;
    let legacy_max: i64 = legacy.try_get(0)?;
    let unchained = tx
        .query_one(
            "SELECT count(*) FILTER (WHERE id <= $1), min(id) FILTER (WHERE id > $1) \
             FROM audit_log WHERE chain_id IS NULL OR chain_seq IS NULL OR chain_hash IS NULL",
            &[&legacy_max],
        )
        .await?;
    let mut report = Report {
        chains: heads.len(),
        rows: 0,
        unchained_before_chain: unchained.try_get(0)?,
        broken: None,
    };
    if let Some(id) = unchained.try_get::<_, Option<i64>>(1)? {
        report.broken = Some(Break::new(Some(id), None, BreakReason::NotChained));
        return Ok(report);
    }

    let statement = tx
        .prepare(
            "SELECT id, at, actor, action, credential_id, outcome, detail, \
                    chain_id, chain_seq, chain_hash \
             FROM audit_log WHERE chain_id IS NOT NULL AND chain_seq IS NOT NULL \
               AND chain_hash IS NOT NULL \
             ORDER BY chain_id, chain_seq, id",
        )
        .await?;
    let portal = tx.bind(&statement, &[]).await?;
    let mut walk: Option<Walk> = None;
    let mut walked: BTreeSet<Uuid> = BTreeSet::new();
    loop {
        let page = tx.query_portal(&portal, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            let id: i64 = row.try_get("id")?;
            let chain_id: Uuid = row.try_get("chain_id")?;
            if walk.as_ref().map(|w| w.chain_id) != Some(chain_id) {
                if let Some(done) = walk.take() {
                    if let Some(broken) = end_of_chain(&done, &heads) {
                        report.broken = Some(broken);
                        return Ok(report);
                    }
                }
                if !heads.contains_key(&chain_id) {
                    report.broken = Some(Break::new(
                        Some(id),
                        Some(chain_id),
                        BreakReason::UnknownChain,
                    ));
                    return Ok(report);
                }
                walked.insert(chain_id);
                walk = Some(Walk {
                    chain_id,
                    seq: 0,
                    prev: key.start(chain_id).to_vec(),
                    last_row: None,
                });
            }
            let Some(w) = walk.as_mut() else { continue };
            let seq: i64 = row.try_get("chain_seq")?;
            if seq != w.seq + 1 {
                let reason = BreakReason::Sequence {
                    expected: w.seq + 1,
                    found: seq,
                };
                report.broken = Some(Break::new(Some(id), Some(chain_id), reason));
                return Ok(report);
            }
            let at: OffsetDateTime = row.try_get("at")?;
            let detail: Value = row.try_get("detail")?;
            let content = RowContent {
                chain_id,
                seq,
                at_micros: i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MIN),
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                credential_id: row.try_get("credential_id")?,
                outcome: row.try_get("outcome")?,
                detail: &detail,
            };
            let stored: Vec<u8> = row.try_get("chain_hash")?;
            let expected = key.link(&w.prev, &content);
            // Constant time is not needed: the stored value is no secret.
            if stored != expected {
                report.broken = Some(Break::new(Some(id), Some(chain_id), BreakReason::Link));
                return Ok(report);
            }
            w.seq = seq;
            w.prev = stored;
            w.last_row = Some(id);
            report.rows += 1;
        }
    }
    if let Some(done) = walk.take() {
        if let Some(broken) = end_of_chain(&done, &heads) {
            report.broken = Some(broken);
            return Ok(report);
        }
    }
    // A chain whose head counts rows none of which is left.
    for (chain_id, (seq, _)) in &heads {
        if *seq > 0 && !walked.contains(chain_id) {
            let reason = BreakReason::Truncated {
                head_seq: *seq,
                last_seq: 0,
            };
            report.broken = Some(Break::new(None, Some(*chain_id), reason));
            return Ok(report);
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// The break at the end of a walked chain, if its head does not match its last row.
fn end_of_chain(walk: &Walk, heads: &BTreeMap<Uuid, (i64, Vec<u8>)>) -> Option<Break> {
    let (head_seq, head_hash) = heads.get(&walk.chain_id)?;
    let reason = if *head_seq > walk.seq {
        BreakReason::Truncated {
            head_seq: *head_seq,
            last_seq: walk.seq,
        }
    } else if *head_seq != walk.seq || *head_hash != walk.prev {
        BreakReason::Head
    } else {
        return None;
    };
    Some(Break::new(walk.last_row, Some(walk.chain_id), reason))
}
