//! Group signing for the TSA: concurrent timestamp requests queue their digests here, and one
//! task hands whatever has queued to the HSM pool as ONE `sign_batch` (which splits it across
//! the workers), like signHash's batches. Under load a batch forms while the previous ones
//! are signed, so N waiting tokens cost a few pool jobs, not N.
//!
//! Invariants: at most `workers` batches are in the pool at once (the rest wait here, in a
//! bounded queue: full → `QueueFull` at once); each digest gets back its own signature or the
//! batch's error; PKCS#11 still runs only on the pool's threads.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::hsm::{Hsm, HsmError, SignAlgo};

/// Most digests in one batch.
const MAX_BATCH: usize = 256;

struct Job {
    digest: Vec<u8>,
    reply: oneshot::Sender<Result<Vec<u8>, HsmError>>,
}

/// Signs digests with one HSM key, batching concurrent callers.
pub struct BatchSigner {
    jobs: mpsc::Sender<Job>,
}

impl BatchSigner {
    /// Starts the batching task (on the current Tokio runtime); it ends when the signer drops.
    pub fn start(hsm: Hsm, key_id: Arc<[u8]>, algo: SignAlgo, queue: usize) -> BatchSigner {
        let (jobs, mut waiting) = mpsc::channel::<Job>(queue.max(1));
        let in_flight = Arc::new(Semaphore::new(hsm.workers().max(1)));
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                // Wait for a free slot first: what queues meanwhile joins this batch.
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match waiting.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let (hsm, key_id) = (hsm.clone(), key_id.clone());
                tokio::spawn(async move {
                    let (digests, replies): (Vec<_>, Vec<_>) =
                        batch.into_iter().map(|j| (j.digest, j.reply)).unzip();
                    let signed = hsm.sign_batch(key_id, algo, Arc::new(digests)).await;
                    drop(permit);
                    match signed {
                        Ok(signatures) if signatures.len() == replies.len() => {
                            for (reply, signature) in replies.into_iter().zip(signatures) {
                                let _ = reply.send(Ok(signature));
                            }
                        }
                        Ok(_) => {
                            for reply in replies {
                                let _ = reply.send(Err(HsmError::BadOutput("batch length")));
                            }
                        }
                        Err(e) => {
                            for reply in replies {
                                let _ = reply.send(Err(again(&e)));
                            }
                        }
                    }
                });
            }
        });
        BatchSigner { jobs }
    }

    /// The signature of `digest` (DER for ECDSA).
    pub async fn sign(&self, digest: Vec<u8>) -> Result<Vec<u8>, HsmError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { digest, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => HsmError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => HsmError::Stopped,
            })?;
        answer.await.map_err(|_| HsmError::Stopped)?
    }
}

/// The same error for each caller of a failed batch (`HsmError` is not `Clone`).
fn again(e: &HsmError) -> HsmError {
    match e {
        HsmError::QueueFull => HsmError::QueueFull,
        HsmError::Stopped => HsmError::Stopped,
        HsmError::SessionLost { op } => HsmError::SessionLost { op },
        HsmError::StaleHandle { op } => HsmError::StaleHandle { op },
        HsmError::Unavailable { op, rv } => HsmError::Unavailable { op, rv: rv.clone() },
        HsmError::TokenNotFound(label) => HsmError::TokenNotFound(label.clone()),
        HsmError::Module { module, reason } => HsmError::Module {
            module: module.clone(),
            reason: reason.clone(),
        },
        HsmError::LoginFailed => HsmError::LoginFailed,
        HsmError::KeyNotFound(id) => HsmError::KeyNotFound(id.clone()),
        HsmError::AmbiguousKey { id, count } => HsmError::AmbiguousKey {
            id: id.clone(),
            count: *count,
        },
        HsmError::BadOutput(what) => HsmError::BadOutput(what),
        HsmError::Pkcs11 { op, rv } => HsmError::Pkcs11 { op, rv: rv.clone() },
    }
}
