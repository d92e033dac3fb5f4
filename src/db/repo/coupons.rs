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
pub struct Renewal<'a> {
    pub credential_id: Uuid,
    pub coupon_hash: &'a [u8],
    pub serial_number: &'a str,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub cert_chain: &'a [Vec<u8>],
}

/// Why the renewal transaction did not commit.
pub enum RenewOutcome {
    Renewed,
    CouponUsed,
    AlreadyRenewed,
}

/// In ONE transaction: redeems the coupon (if unused), keeps the old certificate in the
/// history and installs the new one (if the credential was never renewed). Either all of it
/// happens or none.
pub async fn renew(db: &Db, r: &Renewal<'_>) -> Result<RenewOutcome, DbError> {
    let mut client = db.get().await?;
    let tx = client.transaction().await?;
    let redeemed = tx
        .execute(
            "UPDATE coupons SET redeemed_at = now(), credential_id = $2 \
             WHERE coupon_hash = $1 AND redeemed_at IS NULL",
            &[&r.coupon_hash, &r.credential_id],
        )
        .await?;
    if redeemed != 1 {
        return Ok(RenewOutcome::CouponUsed);
    }
    tx.execute(
        "INSERT INTO certificate_history (credential_id, serial_number, valid_from, valid_to, cert_chain) \
         SELECT credential_id, serial_number, valid_from, valid_to, cert_chain FROM credentials \
         WHERE credential_id = $1",
        &[&r.credential_id],
    )
    .await?;
    let updated = tx
        .execute(
            "UPDATE credentials SET serial_number = $2, valid_from = $3, valid_to = $4, \
                 cert_chain = $5, renewed_at = now() \
             WHERE credential_id = $1 AND renewed_at IS NULL",
            &[
                &r.credential_id,
                &r.serial_number,
                &r.valid_from,
                &r.valid_to,
                &r.cert_chain,
            ],
        )
        .await?;
    if updated != 1 {
        return Ok(RenewOutcome::AlreadyRenewed);
    }
    tx.commit().await?;
    Ok(RenewOutcome::Renewed)
}
