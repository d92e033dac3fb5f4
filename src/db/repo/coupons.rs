//! The `coupons` table, and the renewal transaction that redeems one.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Db, DbError};

/// Stores coupon digests.
pub async fn insert(db: &Db, hashes: &[Vec<u8>]) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            "INSERT INTO coupons (coupon_hash) SELECT * FROM UNNEST($1::bytea[])",
            &[&hashes],
        )
        .await?;
    Ok(())
}

/// The new certificate of a renewal.
pub struct NewCertificate {
    pub serial_number: String,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub cert_chain: Vec<Vec<u8>>,
}

/// Why the renewal transaction did not commit.
pub enum RenewOutcome {
    Renewed,
    CouponUsed,
    AlreadyRenewed,
}

/// In ONE transaction: redeems the coupon (if unused) and locks the credential (if never
/// renewed) BEFORE `issue` has the CA sign the new certificate, then keeps the old certificate
/// in the history and installs the new one. A concurrent renewal with the same coupon, or of
/// the same credential, waits on those row locks and then finds them spent: the CA never
/// signs for it. Either all of it happens or none (a failed `issue` rolls the coupon back).
pub async fn renew<F, Fut, E>(
    db: &Db,
    credential_id: Uuid,
    coupon_hash: &[u8],
    issue: F,
) -> Result<Result<RenewOutcome, E>, DbError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<NewCertificate, E>>,
{
    let mut client = db.get().await?;
    let tx = client.transaction().await?;
    let redeemed = tx
        .execute(
            "UPDATE coupons SET redeemed_at = now(), credential_id = $2 \
             WHERE coupon_hash = $1 AND redeemed_at IS NULL",
            &[&coupon_hash, &credential_id],
        )
        .await?;
    if redeemed != 1 {
        return Ok(Ok(RenewOutcome::CouponUsed));
    }
    let renewable = tx
        .query_opt(
            "SELECT 1 FROM credentials WHERE credential_id = $1 AND renewed_at IS NULL FOR UPDATE",
            &[&credential_id],
        )
        .await?;
    if renewable.is_none() {
        return Ok(Ok(RenewOutcome::AlreadyRenewed));
    }
    let new = match issue().await {
        Ok(new) => new,
        // Dropping the transaction rolls it back: the coupon stays unused.
        Err(e) => return Ok(Err(e)),
    };
    tx.execute(
        "INSERT INTO certificate_history (credential_id, serial_number, valid_from, valid_to, cert_chain) \
         SELECT credential_id, serial_number, valid_from, valid_to, cert_chain FROM credentials \
         WHERE credential_id = $1",
        &[&credential_id],
    )
    .await?;
    tx.execute(
        "UPDATE credentials SET serial_number = $2, valid_from = $3, valid_to = $4, \
             cert_chain = $5, renewed_at = now() \
         WHERE credential_id = $1",
        &[
            &credential_id,
            &new.serial_number,
            &new.valid_from,
            &new.valid_to,
            &new.cert_chain,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(RenewOutcome::Renewed))
}
