//! `signatures/signHash`, the hot path: ONE Redis round trip checks and consumes the SAD (token
//! revocation included), the batch is split across the HSM workers, and the audit row is
//! group-committed before the signatures are returned. No other database access.
//!
//! Invariant: nothing is lost on failure — if the HSM or the audit log fails after the SAD was
//! consumed, the signatures are given back to the SAD and no signature leaves the gateway.

use std::sync::Arc;
use std::time::Instant;

use openssl::sha::{sha256, Sha256};
use serde_json::json;
use uuid::Uuid;

use crate::activation::sad::{self, Claim, SadError};
use crate::audit::AuditError;
use crate::auth::Claims;
use crate::hsm::{HsmError, SignAlgo};
use crate::kv::KvError;
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(transparent)]
    Sad(#[from] SadError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A validated signHash request: every hash has the length of `algo`'s hash.
pub struct SignHashCommand {
    pub claims: Claims,
    pub credential_id: Uuid,
    pub sad: String,
    pub hashes: Vec<Vec<u8>>,
    pub algo: SignAlgo,
}

/// Signs the hashes; signatures in the order of the hashes.
pub async fn sign_hash(
    services: &Services,
    cmd: SignHashCommand,
) -> Result<Vec<Vec<u8>>, SigningError> {
    let started = Instant::now();
    let metrics = &services.metrics;
    let hashes = Arc::new(cmd.hashes);
    metrics.sign_hash_batch.observe(hashes.len() as f64);
    let claim = Claim {
        user_id: &cmd.claims.sub,
        jti: &cmd.claims.jti,
        sad: &cmd.sad,
        credential_id: cmd.credential_id,
        family: cmd.algo.family(),
        hash_alg: cmd.algo.hash(),
        hashes: &hashes,
    };
    let detail = || {
        let mut all = Sha256::new();
        hashes.iter().for_each(|h| all.update(h));
        json!({
            "sad": hex::encode(sha256(cmd.sad.as_bytes()).get(..8).unwrap_or_default()),
            "count": hashes.len(),
            "hashes_sha256": hex::encode(all.finish()),
            "hash_alg": cmd.algo.hash().oid(),
        })
    };
    let audit = |outcome| {
        services.audit.record(
            &cmd.claims.sub,
            "signatures.signHash",
            Some(cmd.credential_id),
            outcome,
            detail(),
        )
    };
    let redis_started = Instant::now();
    let consumed = sad::consume(&services.kv, &claim).await;
    metrics
        .redis_duration
        .with_label_values(&["consume_sad"])
        .observe(redis_started.elapsed().as_secs_f64());
    let consumed = match consumed? {
        Ok(consumed) => consumed,
        Err(refused) => {
            audit("refused").await?;
            return Err(refused.into());
        }
    };
    if !cmd.algo.fits(consumed.key_algo) {
        // Only now is the key's size known (a PSS salt too long for it): give the SAD back.
        sad::restore(&services.kv, &claim).await?;
        audit("refused").await?;
        return Err(SadError::KeyMismatch.into());
    }
    let key_id: Arc<[u8]> = Arc::from(&cmd.credential_id.as_bytes()[..]);
    let signed = services
        .hsm
        .sign_batch(key_id, cmd.algo, hashes.clone())
        .await;
    let recorded = match &signed {
        Ok(_) => audit("ok").await,
        Err(_) => audit("failed").await,
    };
    if signed.is_err() || recorded.is_err() {
        if let Err(e) = sad::restore(&services.kv, &claim).await {
            tracing::error!(error = %e, "could not give back the signatures of a failed signHash");
        }
    }
    let signatures = signed?;
    recorded?;
    metrics
        .signatures
        .with_label_values(&[cmd.algo.name()])
        .inc_by(signatures.len() as u64);
    metrics
        .sign_hash_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(signatures)
}
