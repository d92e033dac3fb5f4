//! The audit trail: one durable row per security-relevant operation, committed BEFORE the
//! operation's result is returned. Concurrent records are group-committed: one writer task
//! drains the queue into a single multi-row INSERT and acknowledges every waiting request.
//! A signHash's row also spends its SAD's durable record in the same statement: the commit,
//! not Redis, is the authority on how many signatures a SAD may still give.
//!
//! The log is tamper-evident: every row is a link of a hash chain keyed in the HSM
//! ([`chain`]), checked by `sigillo audit verify` ([`verify`]). Each writer (one per gateway
//! process) keeps its own chain and holds its head, so a commit computes its links in memory
//! and stays one statement, and the writers of several nodes never wait on each other.

pub mod chain;
pub mod export;
pub mod verify;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus::Histogram;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use self::chain::{ChainKey, RowContent};
use crate::db::repo::audit::{
    self, AuditRecord, ChainedRow, Head, Insert, SadSpend, REFUSED_DURABLE,
};
use crate::db::{Db, DbError};
use crate::metrics::Metrics;

/// Most rows per INSERT.
const MAX_BATCH: usize = 512;

/// Tries of one batch: its links are computed again after a SAD refused or the head moved.
const MAX_TRIES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log write failed: {0}")]
    Write(String),
    #[error("the audit writer stopped")]
    Stopped,
    /// The SAD's durable record refused the spend (the row was written as such).
    #[error("the SAD's durable record refused the signatures")]
    SadSpent,
}

impl From<DbError> for AuditError {
    fn from(err: DbError) -> Self {
        AuditError::Write(err.to_string())
    }
}

/// A record waiting for its commit, and where to say whether it committed (and, for a spend,
/// whether the SAD's record granted it).
type Pending = (AuditRecord, oneshot::Sender<Result<bool, String>>);

/// Handle on the group-commit writer. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    tx: mpsc::Sender<Pending>,
    close: Arc<Closer>,
}

/// What [`Audit::drain`] needs: the signal to the writer and the writer's task.
struct Closer {
    signal: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Audit {
    /// Starts the writer task on the current runtime.
    pub fn start(db: Db, metrics: &Metrics, key: Arc<ChainKey>) -> Audit {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let timing = (
            metrics.audit_commit_duration.clone(),
            metrics.audit_commit_rows.clone(),
        );
        let (signal, closed) = watch::channel(false);
        let task = tokio::spawn(writer(db, key, rx, closed, timing));
        Audit {
            tx,
            close: Arc::new(Closer {
                signal,
                task: Mutex::new(Some(task)),
            }),
        }
    }

    /// Closes the queue and waits until every record already queued is committed (and its
    /// request answered); a record sent after this fails with `Stopped` (the gateway is
    /// shutting down: its requests answer 503). Safe to call twice.
    pub async fn drain(&self) {
        self.close.signal.send_replace(true);
        let task = self.close.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the audit writer ended abnormally");
            }
        }
    }

    /// Records that `actor` did `action` (on `credential_id`) with `outcome`; returns once the
    /// row is committed.
    pub async fn record(
        &self,
        actor: &str,
        action: &'static str,
        credential_id: Option<Uuid>,
        outcome: &'static str,
        detail: Value,
    ) -> Result<(), AuditError> {
        self.commit(AuditRecord {
            actor: actor.to_owned(),
            action,
            credential_id,
            outcome,
            detail,
            spends: None,
        })
        .await
    }

    /// Records a signHash that signed, spending `spend` from its SAD's durable record in the
    /// same commit; `SadSpent` if the record refused (the row then says so).
    pub async fn record_spend(
        &self,
        actor: &str,
        action: &'static str,
        credential_id: Uuid,
        detail: Value,
        spend: SadSpend,
    ) -> Result<(), AuditError> {
        self.commit(AuditRecord {
            actor: actor.to_owned(),
            action,
            credential_id: Some(credential_id),
            outcome: "ok",
            detail,
            spends: Some(spend),
        })
        .await
    }

    async fn commit(&self, record: AuditRecord) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((record, ack))
            .await
            .map_err(|_| AuditError::Stopped)?;
        match done.await.map_err(|_| AuditError::Stopped)? {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuditError::SadSpent),
            Err(e) => Err(AuditError::Write(e)),
        }
    }
}

async fn writer(
    db: Db,
    key: Arc<ChainKey>,
    mut rx: mpsc::Receiver<Pending>,
    mut closed: watch::Receiver<bool>,
    (duration, rows): (Histogram, Histogram),
) {
    let mut chain = Chain {
        id: Uuid::new_v4(),
        head: None,
    };
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => n,
            // Drain: no new record gets in; what is queued is still committed below (after
            // close, recv_many returns what is buffered, then 0).
            () = async { drop(closed.wait_for(|c| *c).await) } => {
                rx.close();
                rx.recv_many(&mut batch, MAX_BATCH).await
            }
        };
        if received == 0 {
            break;
        }
        let started = Instant::now();
        let records: Vec<&AuditRecord> = batch.iter().map(|(r, _)| r).collect();
        let result = chain
            .append(&db, &key, &records)
            .await
            .map_err(|e| e.to_string());
        duration.observe(started.elapsed().as_secs_f64());
        rows.observe(batch.len() as f64);
        match &result {
            Err(e) => tracing::error!(error = %e, rows = batch.len(), "audit commit failed"),
            Ok(refused) if !refused.is_empty() => tracing::warn!(
                refused = refused.len(),
                "SAD spends refused by their durable record (Redis state rolled back or forged?)"
            ),
            Ok(_) => {}
        }
        for (i, (_, ack)) in batch.drain(..).enumerate() {
            let _ = ack.send(
                result
                    .as_ref()
                    .map(|refused| !refused.contains(&i))
                    .map_err(Clone::clone),
            );
        }
    }
}

/// This writer's chain: its id, and its head once registered.
struct Chain {
    id: Uuid,
    head: Option<Head>,
}

impl Chain {
    /// Writes `records` as the next links (one statement; again if a SAD refused or the head
    /// moved under us) and returns the positions of the records whose spend was refused.
    async fn append(
        &mut self,
        db: &Db,
        key: &ChainKey,
        records: &[&AuditRecord],
    ) -> Result<Vec<usize>, DbError> {
        let mut refused: BTreeSet<Uuid> = BTreeSet::new();
        for _ in 0..MAX_TRIES {
            let head = match &self.head {
                Some(head) => head.clone(),
                None => {
                    let start = key.start(self.id);
                    audit::start_chain(db, self.id, &start).await?;
                    let head = Head {
                        seq: 0,
                        hash: start.to_vec(),
                    };
                    self.head = Some(head.clone());
                    head
                }
            };
            let (at, at_micros) = now_micros();
            let mut prev = head.hash.clone();
            let mut rows = Vec::with_capacity(records.len());
            for (seq, record) in (head.seq + 1..).zip(records) {
                let spend_refused = record.spends.is_some_and(|s| refused.contains(&s.sad_id));
                let outcome = match spend_refused {
                    true => REFUSED_DURABLE,
                    false => record.outcome,
                };
                let hash = key.link(
                    &prev,
                    &RowContent {
                        chain_id: self.id,
                        seq,
                        at_micros,
                        actor: &record.actor,
                        action: record.action,
                        credential_id: record.credential_id,
                        outcome,
                        detail: &record.detail,
                    },
                );
                prev = hash.to_vec();
                rows.push(ChainedRow {
                    record,
                    outcome,
                    spends: record.spends.filter(|_| !spend_refused),
                    seq,
                    hash,
                });
            }
            match audit::insert_many(db, self.id, &head, at, &rows).await? {
                Insert::Written => {
                    self.head = rows.last().map_or(Some(head), |last| {
                        Some(Head {
                            seq: last.seq,
                            hash: last.hash.to_vec(),
                        })
                    });
                    return Ok(rows
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.record.spends.is_some() && r.spends.is_none())
                        .map(|(i, _)| i)
                        .collect());
                }
                Insert::Stale {
                    refused: now_refused,
                    head: found,
                } => {
                    if found.as_ref() != Some(&head) {
                        // Our last commit's answer was lost, or the head was edited: go on
                        // from the head as it is (verify reports an edit).
                        tracing::warn!(chain = %self.id, "audit chain head moved; links computed again");
                    }
                    refused.extend(now_refused);
                    self.head = found;
                }
            }
        }
        Err(DbError::Corrupt("audit chain: the batch kept conflicting"))
    }
}

/// Now, to the microsecond (what PostgreSQL stores, so that the link covers what is read
/// back), as a time and as microseconds since the epoch.
fn now_micros() -> (OffsetDateTime, i64) {
    let micros =
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    (at, micros)
}
