//! The audit trail: one durable row per security-relevant operation, committed BEFORE the
//! operation's result is returned. Concurrent records are group-committed: one writer task
//! drains the queue into a single multi-row INSERT and acknowledges every waiting request.
//! A signHash's row also spends its SAD's durable record in the same statement: the commit,
//! not Redis, is the authority on how many signatures a SAD may still give.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus::Histogram;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::db::repo::audit::{self, AuditRecord, SadSpend};
use crate::db::{Db, DbError};
use crate::metrics::Metrics;

/// Most rows per INSERT.
const MAX_BATCH: usize = 512;

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
    pub fn start(db: Db, metrics: &Metrics) -> Audit {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let timing = (
            metrics.audit_commit_duration.clone(),
            metrics.audit_commit_rows.clone(),
        );
        let (signal, closed) = watch::channel(false);
        let task = tokio::spawn(writer(db, rx, closed, timing));
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
    mut rx: mpsc::Receiver<Pending>,
    mut closed: watch::Receiver<bool>,
    (duration, rows): (Histogram, Histogram),
) {
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
        let result = audit::insert_many(&db, &records)
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
