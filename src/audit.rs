//! The audit trail: one durable row per security-relevant operation, committed BEFORE the
//! operation's result is returned. Concurrent records are group-committed: one writer task
//! drains the queue into a single multi-row INSERT and acknowledges every waiting request.
//! A signHash's row also spends its SAD's durable record in the same statement: the commit,
//! not Redis, is the authority on how many signatures a SAD may still give.
//!
//! A commit costs PostgreSQL about the same whether it carries one row or fifty (the WAL flush
//! and the statement's start dominate), so the writer may wait a little for the rows of
//! requests still on their way ([`Audit::expect`]): only while the HSM's queued work outlasts
//! the wait plus the time the answered requests take to bring it more (about one commit), so
//! holding answers back costs no signature; never when no such request is in flight (a lone
//! request pays nothing); and at most `database.audit_linger_us`.
//!
//! The log is tamper-evident: every row is a link of a hash chain keyed in the HSM
//! ([`chain`]), checked by `sigillo audit verify` ([`verify`]). Each writer (one per gateway
//! process) keeps its own chain and holds its head, so a commit computes its links in memory
//! and stays one statement, and the writers of several nodes never wait on each other.

pub mod chain;
pub mod export;
pub mod verify;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Requests that said their record is coming ([`Audit::expect`]) and have not sent it.
    expected: Arc<AtomicUsize>,
}

/// How long a commit may wait for the records of requests in flight.
pub struct Linger {
    /// The longest wait; zero: commit at once.
    pub max: Duration,
    /// How long the HSM is busy with the work queued now: waiting that long is free (holding
    /// answers back does not leave it idle). Asked before the wait and at least every
    /// millisecond of it.
    pub backlog: Box<dyn Fn() -> Duration + Send>,
}

/// A request's word that it will send a record soon: while any such word is outstanding, the
/// writer holds a commit (up to its linger) for that record to join it. Kept until
/// [`Expected::settle`] (the request is about to send) or drop (it returns without one).
pub struct Expected {
    expected: Arc<AtomicUsize>,
    armed: AtomicBool,
}

impl Expected {
    /// The record goes now (or never): the writer waits for it no longer.
    pub fn settle(&self) {
        if self.armed.swap(false, Ordering::AcqRel) {
            self.expected.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.settle();
    }
}

/// What [`Audit::drain`] needs: the signal to the writer and the writer's task.
struct Closer {
    signal: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Audit {
    /// Starts the writer task on the current runtime; a commit waits at most `linger.max` for
    /// the records of requests in flight ([`Audit::expect`]), and no longer than the HSM's
    /// backlog (`linger.backlog`).
    pub fn start(db: Db, metrics: &Metrics, key: Arc<ChainKey>, linger: Linger) -> Audit {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let timing = (
            metrics.audit_commit_duration.clone(),
            metrics.audit_commit_rows.clone(),
        );
        let (signal, closed) = watch::channel(false);
        let expected = Arc::new(AtomicUsize::new(0));
        let queue = Queue {
            rx,
            closed,
            expected: expected.clone(),
            linger,
            refill: Duration::ZERO,
        };
        let task = tokio::spawn(writer(db, key, queue, timing));
        Audit {
            tx,
            close: Arc::new(Closer {
                signal,
                task: Mutex::new(Some(task)),
            }),
            expected,
        }
    }

    /// Requests that announced a record and have not sent it yet.
    pub fn outstanding(&self) -> usize {
        self.expected.load(Ordering::Acquire)
    }

    /// Says that this request will send a record soon (a signHash, from its start to its
    /// row): a commit that would leave without it waits a little for it, so that the rows of
    /// concurrent requests share one commit instead of paying one each.
    pub fn expect(&self) -> Expected {
        self.expected.fetch_add(1, Ordering::AcqRel);
        Expected {
            expected: self.expected.clone(),
            armed: AtomicBool::new(true),
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

/// The writer's side of the queue.
struct Queue {
    rx: mpsc::Receiver<Pending>,
    closed: watch::Receiver<bool>,
    expected: Arc<AtomicUsize>,
    linger: Linger,
    /// How long the last commit took: about how long the requests it answers take to come
    /// back with more work for the HSM.
    refill: Duration,
}

impl Queue {
    /// The next records to commit, at least one (none: the queue is closed and empty). Once
    /// one is in, waits while an announced record is outstanding, until the batch is full, the
    /// linger is over or the HSM's backlog would run out before the answered requests refill it.
    async fn next(&mut self, batch: &mut Vec<Pending>) -> usize {
        let received = tokio::select! {
            n = self.rx.recv_many(batch, MAX_BATCH) => n,
            // Drain: no new record gets in; what is queued is still committed (after close,
            // recv_many returns what is buffered, then 0).
            () = async { drop(self.closed.wait_for(|c| *c).await) } => {
                self.rx.close();
                return self.rx.recv_many(batch, MAX_BATCH).await;
            }
        };
        if received == 0 || self.linger.max.is_zero() {
            return received;
        }
        let deadline = tokio::time::Instant::now() + self.linger.max;
        let tick = Duration::from_millis(1);
        while batch.len() < MAX_BATCH && self.expected.load(Ordering::Acquire) > 0 {
            let now = tokio::time::Instant::now();
            let free = (self.linger.backlog)().saturating_sub(self.refill);
            let until = deadline.min(now + free);
            // The timer ticks in milliseconds: a shorter wait would overrun what is free.
            if until.saturating_duration_since(now) < tick {
                break;
            }
            let room = MAX_BATCH - batch.len();
            let closed = tokio::select! {
                _ = self.rx.recv_many(batch, room) => false,
                () = tokio::time::sleep(tick) => false,
                () = async { drop(self.closed.wait_for(|c| *c).await) } => true,
            };
            if closed {
                break;
            }
        }
        batch.len()
    }
}

async fn writer(
    db: Db,
    key: Arc<ChainKey>,
    mut queue: Queue,
    (duration, rows): (Histogram, Histogram),
) {
    let mut chain = Chain {
        id: Uuid::new_v4(),
        head: None,
    };
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    loop {
        if queue.next(&mut batch).await == 0 {
            break;
        }
        let started = Instant::now();
        let records: Vec<&AuditRecord> = batch.iter().map(|(r, _)| r).collect();
        let result = chain
            .append(&db, &key, &records)
            .await
            .map_err(|e| e.to_string());
        queue.refill = started.elapsed();
        duration.observe(queue.refill.as_secs_f64());
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
