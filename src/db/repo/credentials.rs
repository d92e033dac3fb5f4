//! The `credentials` table. Counter updates are single atomic statements, so concurrent wrong
//! attempts on several nodes can never be lost.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{Db, DbError};
use crate::model::{Credential, CredentialStatus};

const COLUMNS: &str = "credential_id, user_id, key_algo, purpose, status, pin_hmac, puk_hmac, \
                       pin_failures, puk_failures, serial_number, subject_dn, valid_from, valid_to, \
                       cert_chain";

fn from_row(row: &Row) -> Result<Credential, DbError> {
    let key_algo: String = row.try_get("key_algo")?;
    let purpose: String = row.try_get("purpose")?;
    let status: String = row.try_get("status")?;
    Ok(Credential {
        credential_id: row.try_get("credential_id")?,
        user_id: row.try_get("user_id")?,
        key_algo: key_algo
            .parse()
            .map_err(|()| DbError::Corrupt("credentials.key_algo"))?,
        purpose: purpose
            .parse()
            .map_err(|()| DbError::Corrupt("credentials.purpose"))?,
        status: status
            .parse()
            .map_err(|()| DbError::Corrupt("credentials.status"))?,
        pin_hmac: row.try_get("pin_hmac")?,
        puk_hmac: row.try_get("puk_hmac")?,
        pin_failures: row.try_get("pin_failures")?,
        puk_failures: row.try_get("puk_failures")?,
        serial_number: row.try_get("serial_number")?,
        subject_dn: row.try_get("subject_dn")?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
        cert_chain: row.try_get("cert_chain")?,
        renewed_at: row.try_get("renewed_at")?,
    })
}

/// Inserts a new credential (in the caller's transaction).
pub async fn insert(client: &impl GenericClient, c: &Credential) -> Result<(), DbError> {
    client
        .execute(
            &format!(
                "INSERT INTO credentials ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ),
            &[
                &c.credential_id,
                &c.user_id,
                &c.key_algo.as_str(),
                &c.purpose.as_str(),
                &c.status.as_str(),
                &c.pin_hmac,
                &c.puk_hmac,
                &c.pin_failures,
                &c.puk_failures,
                &c.serial_number,
                &c.subject_dn,
                &c.valid_from,
                &c.valid_to,
                &c.cert_chain,
            ],
        )
        .await?;
    Ok(())
}

/// The credential `id`, whoever owns it (callers check ownership).
pub async fn find(db: &Db, id: Uuid) -> Result<Option<Credential>, DbError> {
    let client = db.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS}, renewed_at FROM credentials WHERE credential_id = $1"),
            &[&id],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The credential `id` if `user_id` owns it: the one ownership rule. Someone else's credential
/// and no credential are the same `None`, so callers cannot reveal that it exists.
pub async fn find_owned(db: &Db, id: Uuid, user_id: &str) -> Result<Option<Credential>, DbError> {
    Ok(find(db, id).await?.filter(|c| c.user_id == user_id))
}

/// The credentials of `user_id`, oldest first.
pub async fn list_for_user(db: &Db, user_id: &str) -> Result<Vec<Credential>, DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS}, renewed_at FROM credentials WHERE user_id = $1 \
                 ORDER BY created_at, credential_id"
            ),
            &[&user_id],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// The credentials of `user_id` that the subscriber suspended (with the emergency code) and
/// that are suspended still, oldest first.
pub async fn suspended_by_subscriber(db: &Db, user_id: &str) -> Result<Vec<Uuid>, DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT credential_id FROM credentials \
             WHERE user_id = $1 AND status = 'suspended' AND suspended_by = 'subscriber' \
             ORDER BY created_at, credential_id",
            &[&user_id],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(DbError::from))
        .collect()
}

/// Which secret an attempt is of.
#[derive(Debug, Clone, Copy)]
pub enum Secret {
    /// 3 wrong PINs on an active credential PIN-block it (the PUK unblocks it).
    Pin,
    /// 10 wrong PUKs block it for good.
    Puk,
}

/// An attempt counted before its PIN or PUK is compared.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    /// Attempts counted so far, this one included.
    pub failures: i32,
    /// This attempt reached the limit and blocked the credential (undone if it proves right).
    pub blocked: bool,
}

/// Counts one attempt at `secret` before it is compared, in one conditional UPDATE: only while
/// the credential is in state `from` (`active` for a PIN; `inactive` or `pin_blocked` for a
/// PUK) and under `limit`. The attempt that reaches the limit blocks the credential at once, so
/// however many requests race, at most `limit` attempts are ever compared. `None`: refused
/// (the state changed or the limit is reached); nothing may be compared.
pub async fn reserve_attempt(
    db: &Db,
    id: Uuid,
    secret: Secret,
    from: CredentialStatus,
    limit: i32,
) -> Result<Option<Reservation>, DbError> {
    // Static SQL per kind: no identifier is ever spliced from input. SET reads the old row.
    let sql = match secret {
        Secret::Pin => {
            "UPDATE credentials SET pin_failures = pin_failures + 1, \
                 status = CASE WHEN pin_failures + 1 >= $2 THEN 'pin_blocked' ELSE status END \
             WHERE credential_id = $1 AND status = $3 AND pin_failures < $2 \
             RETURNING pin_failures AS failures, status"
        }
        Secret::Puk => {
            "UPDATE credentials SET puk_failures = puk_failures + 1, \
                 status = CASE WHEN puk_failures + 1 >= $2 THEN 'blocked' ELSE status END \
             WHERE credential_id = $1 AND status = $3 AND puk_failures < $2 \
             RETURNING puk_failures AS failures, status"
        }
    };
    let client = db.get().await?;
    let row = client
        .query_opt(sql, &[&id, &limit, &from.as_str()])
        .await?;
    row.map(|r| {
        let status: String = r.try_get("status")?;
        Ok(Reservation {
            failures: r.try_get("failures")?,
            blocked: status != from.as_str(),
        })
    })
    .transpose()
}

/// What became of a reserved attempt.
#[derive(Debug, Clone, Copy)]
pub enum Release {
    /// The secret was right: a right PIN clears the count of wrong ones; a right PUK gives its
    /// attempt back (activation and unblock then clear the PUK count).
    Right,
    /// The secret could not be compared (HSM error): the attempt is given back.
    Unchecked,
}

/// Gives back a reservation (see [`Release`]); if the attempt had blocked the credential, the
/// credential returns to `from` — unless something else changed its state meanwhile.
pub async fn release_attempt(
    db: &Db,
    id: Uuid,
    secret: Secret,
    reservation: Reservation,
    from: CredentialStatus,
    release: Release,
    limit: i32,
) -> Result<(), DbError> {
    let sql = match (secret, release) {
        (Secret::Pin, Release::Right) => {
            "UPDATE credentials SET pin_failures = 0, status = $4 \
             WHERE credential_id = $1 AND (status = $4 \
                 OR ($2 AND status = 'pin_blocked' AND pin_failures = $3))"
        }
        (Secret::Pin, Release::Unchecked) => {
            "UPDATE credentials SET pin_failures = GREATEST(pin_failures - 1, 0), status = $4 \
             WHERE credential_id = $1 AND (status = $4 \
                 OR ($2 AND status = 'pin_blocked' AND pin_failures = $3))"
        }
        (Secret::Puk, _) => {
            "UPDATE credentials SET puk_failures = GREATEST(puk_failures - 1, 0), status = $4 \
             WHERE credential_id = $1 AND (status = $4 \
                 OR ($2 AND status = 'blocked' AND puk_failures = $3))"
        }
    };
    let client = db.get().await?;
    client
        .execute(sql, &[&id, &reservation.blocked, &limit, &from.as_str()])
        .await?;
    Ok(())
}

/// Activates an inactive credential with its first PIN. Returns false if the credential was
/// not inactive any more (a concurrent activation won).
pub async fn activate(db: &Db, id: Uuid, pin_hmac: &[u8]) -> Result<bool, DbError> {
    let client = db.get().await?;
    let updated = client
        .execute(
            "UPDATE credentials SET status = 'active', pin_hmac = $2, pin_failures = 0, \
                 puk_failures = 0, activated_at = now() \
             WHERE credential_id = $1 AND status = 'inactive'",
            &[&id, &pin_hmac],
        )
        .await?;
    Ok(updated == 1)
}

/// An operator's state change, as one conditional UPDATE. Returns the new status, or `None`
/// when the credential was not in a state the change applies to. A suspension or revocation
/// bumps the credential's generation: no SAD issued before it signs again, even after a
/// resumption (the durable half of the Redis hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorChange {
    /// inactive | active | pin_blocked → suspended (the state is remembered), by the operator.
    Suspend,
    /// The same, by the subscriber with the emergency code.
    SubscriberSuspend,
    /// suspended → the remembered state, by the operator (whoever suspended it).
    Resume,
    /// The same, by the subscriber: only a suspension the subscriber made.
    SubscriberResume,
    /// anything but revoked → revoked, for good.
    Revoke,
}

pub async fn apply_operator_change(
    db: &Db,
    id: Uuid,
    change: OperatorChange,
    reason: &str,
) -> Result<Option<CredentialStatus>, DbError> {
    apply_operator_change_on(&db.get().await?, id, change, reason, None).await
}

/// [`apply_operator_change`] on a given connection or transaction (one that also queues the
/// change's e-mail notice), with the CRLReason code of a revocation (`None`: unspecified),
/// which the certificate status trigger of migration 0007 copies to the credential's
/// certificates in the same transaction.
pub async fn apply_operator_change_on(
    client: &impl deadpool_postgres::GenericClient,
    id: Uuid,
    change: OperatorChange,
    reason: &str,
    crl_reason: Option<i16>,
) -> Result<Option<CredentialStatus>, DbError> {
    let sql = match change {
        OperatorChange::Suspend => {
            "UPDATE credentials SET suspended_from = status, status = 'suspended', status_reason = $2, \
                 generation = generation + 1, suspended_by = 'operator' \
             WHERE credential_id = $1 AND status IN ('inactive', 'active', 'pin_blocked') RETURNING status"
        }
        OperatorChange::SubscriberSuspend => {
            "UPDATE credentials SET suspended_from = status, status = 'suspended', status_reason = $2, \
                 generation = generation + 1, suspended_by = 'subscriber' \
             WHERE credential_id = $1 AND status IN ('inactive', 'active', 'pin_blocked') RETURNING status"
        }
        OperatorChange::Resume => {
            "UPDATE credentials SET status = suspended_from, suspended_from = NULL, status_reason = $2, \
                 suspended_by = NULL \
             WHERE credential_id = $1 AND status = 'suspended' AND suspended_from IS NOT NULL \
             RETURNING status"
        }
        OperatorChange::SubscriberResume => {
            "UPDATE credentials SET status = suspended_from, suspended_from = NULL, status_reason = $2, \
                 suspended_by = NULL \
             WHERE credential_id = $1 AND status = 'suspended' AND suspended_from IS NOT NULL \
                 AND suspended_by = 'subscriber' \
             RETURNING status"
        }
        OperatorChange::Revoke => {
            "UPDATE credentials SET status = 'revoked', suspended_from = NULL, suspended_by = NULL, \
                 status_reason = $2, \
                 generation = generation + 1, crl_reason = $3 \
             WHERE credential_id = $1 AND status <> 'revoked' RETURNING status"
        }
    };
    let row = match change {
        OperatorChange::Revoke => client.query_opt(sql, &[&id, &reason, &crl_reason]).await?,
        _ => client.query_opt(sql, &[&id, &reason]).await?,
    };
    row.map(|r| {
        let status: String = r.try_get("status")?;
        status
            .parse()
            .map_err(|()| DbError::Corrupt("credentials.status"))
    })
    .transpose()
}

/// Sets a new PIN digest and makes the credential active again (PIN change, PUK unblock):
/// only from `from`. Returns false if the credential was not in that state any more.
pub async fn set_pin(
    db: &Db,
    id: Uuid,
    pin_hmac: &[u8],
    from: CredentialStatus,
) -> Result<bool, DbError> {
    set_pin_on(&db.get().await?, id, pin_hmac, from).await
}

/// [`set_pin`] on a given connection or transaction (one that also queues the PIN notice).
pub async fn set_pin_on(
    client: &impl deadpool_postgres::GenericClient,
    id: Uuid,
    pin_hmac: &[u8],
    from: CredentialStatus,
) -> Result<bool, DbError> {
    let updated = client
        .execute(
            "UPDATE credentials SET pin_hmac = $2, status = 'active', pin_failures = 0, \
                 puk_failures = 0 \
             WHERE credential_id = $1 AND status = $3",
            &[&id, &pin_hmac, &from.as_str()],
        )
        .await?;
    Ok(updated == 1)
}

/// The ids of every revoked credential (the start-up sweep destroys any key left of them).
pub async fn revoked_ids(db: &Db) -> Result<Vec<Uuid>, DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT credential_id FROM credentials WHERE status = 'revoked'",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get("credential_id").map_err(DbError::from))
        .collect()
}
