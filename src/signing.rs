//! `signatures/signHash`, the hot path: ONE Redis round trip checks and consumes the SAD (token
//! revocation included), its HMAC is checked in process, the batch is split across the HSM
//! workers, and the audit row is group-committed before the signatures are returned — that
//! commit also spends the SAD's durable record, and refuses if it is spent. No other database
//! access.
//!
//! Invariants: nothing is lost on failure — if the HSM or the audit log fails after the SAD was
//! consumed, the signatures are given back to the SAD and no signature leaves the gateway; and
//! no signature leaves unless PostgreSQL agreed that the SAD still had them (a Redis rollback
//! or a SAD forged in Redis signs nothing that is returned).

use std::sync::Arc;
use std::time::Instant;

use openssl::sha::Sha256;
use serde_json::Value;
use uuid::Uuid;

use crate::activation::sad::{self, Claim, SadError};
use crate::audit::AuditError;
use crate::auth::Claims;
use crate::db::repo::audit::SadSpend;
use crate::hsm::{HsmError, SignAlgo};
use crate::kv::KvError;
use crate::model::Origin;
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
    pub origin: Origin,
}

/// Signs the hashes; signatures in the order of the hashes.
pub async fn sign_hash(
    services: &Services,
    cmd: SignHashCommand,
) -> Result<Vec<Vec<u8>>, SigningError> {
    let started = Instant::now();
    // From here until its row goes, the audit writer may hold a commit for this request.
    let expected = services.audit.expect();
    let metrics = &services.metrics;
    let hashes = Arc::new(cmd.hashes);
    metrics.sign_hash_batch.observe(hashes.len() as f64);
    let sad_id = sad::sad_id_of(&cmd.sad);
    let tags = Claim::tags(&services.sad_seal, sad_id, &hashes);
    let claim = Claim {
        user_id: &cmd.claims.sub,
        jti: &cmd.claims.jti,
        epoch: cmd.claims.ep,
        sad: &cmd.sad,
        sad_id,
        credential_id: cmd.credential_id,
        family: cmd.algo.family(),
        hash_alg: cmd.algo.hash(),
        tags: &tags,
    };
    let detail = |consumed: Option<&sad::Consumed>| {
        let mut all = Sha256::new();
        hashes.iter().for_each(|h| all.update(h));
        let mut detail = cmd.origin.audit_fields();
        detail.insert(
            "sad".into(),
            sad_id.map_or(Value::Null, |id| id.to_string().into()),
        );
        detail.insert("count".into(), hashes.len().into());
        detail.insert("hashes_sha256".into(), hex::encode(all.finish()).into());
        detail.insert("hash_alg".into(), cmd.algo.hash().oid().into());
        // Which client signed, for the subscriber's signing history.
        if let Some(client_id) = &cmd.claims.cid {
            detail.insert("client_id".into(), client_id.clone().into());
        }
        if let Some(c) = consumed {
            detail.insert("serial_number".into(), c.serial_number.clone().into());
        }
        Value::Object(detail)
    };
    let audit = |outcome, consumed| {
        expected.settle();
        services.audit.record(
            &cmd.claims.sub,
            "signatures.signHash",
            Some(cmd.credential_id),
            outcome,
            detail(consumed),
        )
    };
    let redis_started = Instant::now();
    let consumed = sad::consume(&services.kv, &services.sad_seal, &claim).await;
    metrics
        .redis_duration
        .with_label_values(&["consume_sad"])
        .observe(redis_started.elapsed().as_secs_f64());
    let consumed = match consumed {
        Ok(consumed) => consumed,
        Err(e) => {
            // Redis gave no answer: the SAD step may still run, and what it takes is given
            // back once Redis answers (`sad::consume`). Nothing was signed.
            audit("failed_redis", None).await?;
            return Err(e.into());
        }
    };
    let consumed = match consumed {
        Ok(consumed) => consumed,
        Err(refused) => {
            let outcome = match refused {
                SadError::Forged => "refused_forged",
                _ => "refused",
            };
            audit(outcome, None).await?;
            return Err(refused.into());
        }
    };
    if !cmd.algo.fits(consumed.key_algo) {
        // Only now is the key's size known (a PSS salt too long for it): give the SAD back.
        sad::restore(&services.kv, &claim).await?;
        audit("refused", Some(&consumed)).await?;
        return Err(SadError::KeyMismatch.into());
    }
    let key_id: Arc<[u8]> = Arc::from(&cmd.credential_id.as_bytes()[..]);
    let signed = services
        .hsm
        .sign_batch(key_id, cmd.algo, hashes.clone())
        .await;
    let recorded = match &signed {
        Ok(_) => {
            let spend = SadSpend {
                sad_id: consumed.sad_id,
                count: i32::try_from(hashes.len()).unwrap_or(i32::MAX),
            };
            expected.settle();
            services
                .audit
                .record_spend(
                    &cmd.claims.sub,
                    "signatures.signHash",
                    cmd.credential_id,
                    detail(Some(&consumed)),
                    spend,
                )
                .await
        }
        Err(_) => audit("failed", Some(&consumed)).await,
    };
    if let Err(AuditError::SadSpent) = recorded {
        // The durable record says no: Redis was rolled back or written by someone else, and
        // giving the signatures back to it would only help the replay.
        return Err(SadError::Spent.into());
    }
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
