//! The certificate status tables (migration 0007): `pki_status`, `issued_certificates`,
//! `crls`, and the OCSP responder's row in `ca_certificates`.

use time::OffsetDateTime;

use crate::db::{Db, DbError};

/// What one poll of a node learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// Bumped by every issuance and status change.
    pub version: i64,
    /// Bumped by every status change (what a CRL lists).
    pub revocation_version: i64,
    /// The stored CRL of the polled issuer: (crlNumber, revocation version it lists,
    /// nextUpdate).
    pub crl: Option<(i64, i64, OffsetDateTime)>,
}

/// One certificate's status.
#[derive(Debug, Clone)]
pub struct CertificateStatus {
    /// Upper-case hex.
    pub serial_number: String,
    pub issuer: String,
    /// `None`: good.
    pub revoked: Option<(OffsetDateTime, i16)>,
}

/// The versions and the stored CRL of `issuer`, in ONE query (a poll costs no more).
pub async fn versions(db: &Db, issuer: &str) -> Result<Versions, DbError> {
    let client = db.get().await?;
    let row = client
        .query_one(
            "SELECT s.version, s.revocation_version, c.crl_number, \
                    c.revocation_version AS crl_revocation_version, c.next_update \
             FROM pki_status s LEFT JOIN crls c ON c.issuer = $1",
            &[&issuer],
        )
        .await?;
    let crl_number: Option<i64> = row.try_get("crl_number")?;
    Ok(Versions {
        version: row.try_get("version")?,
        revocation_version: row.try_get("revocation_version")?,
        crl: match crl_number {
            Some(number) => Some((
                number,
                row.try_get("crl_revocation_version")?,
                row.try_get("next_update")?,
            )),
            None => None,
        },
    })
}

fn status_of(row: &tokio_postgres::Row) -> Result<CertificateStatus, DbError> {
    let revoked_at: Option<OffsetDateTime> = row.try_get("revoked_at")?;
    let reason: Option<i16> = row.try_get("reason")?;
    Ok(CertificateStatus {
        serial_number: row.try_get("serial_number")?,
        issuer: row.try_get("issuer")?,
        revoked: revoked_at.map(|at| (at, reason.unwrap_or(0))),
    })
}

/// Every certificate whose status changed after version `after`, and the version they bring
/// the caller to — read in one snapshot, so nothing committed up to that version is missed.
pub async fn changed_since(db: &Db, after: i64) -> Result<(i64, Vec<CertificateStatus>), DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT s.version, i.serial_number, i.issuer, i.revoked_at, i.reason \
             FROM pki_status s LEFT JOIN issued_certificates i ON i.status_version > $1",
            &[&after],
        )
        .await?;
    let mut version = after;
    let mut changed = Vec::with_capacity(rows.len());
    for row in &rows {
        version = row.try_get("version")?;
        let serial: Option<String> = row.try_get("serial_number")?;
        if serial.is_some() {
            changed.push(status_of(row)?);
        }
    }
    Ok((version, changed))
}

/// The stored CRL of `issuer`: (crlNumber, DER, nextUpdate).
pub async fn crl(db: &Db, issuer: &str) -> Result<Option<(i64, Vec<u8>, OffsetDateTime)>, DbError> {
    let client = db.get().await?;
    let row = client
        .query_opt(
            "SELECT crl_number, der, next_update FROM crls WHERE issuer = $1",
            &[&issuer],
        )
        .await?;
    row.map(|r| {
        Ok((
            r.try_get("crl_number")?,
            r.try_get("der")?,
            r.try_get("next_update")?,
        ))
    })
    .transpose()
}

/// What a new CRL of an issuer must list, read under the issuer's CRL lock.
pub struct CrlInput {
    pub crl_number: i64,
    pub revocation_version: i64,
    pub revoked: Vec<CertificateStatus>,
}

/// The times of a CRL about to be issued.
pub struct CrlTimes {
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// A stored CRL issued at or before this is replaced even if nothing changed.
    pub reissue_before: OffsetDateTime,
}

/// Issues the CRL of `issuer` if it is stale (a status changed since, when it
/// `follows_revocations` — the issuing CA's does, the root's lists only CA certificates and
/// does not; or it is older than `times.reissue_before`), on ONE node at a time: under a transaction-scoped advisory lock
/// that other nodes skip (they load the result on their next poll). `sign` builds and signs
/// the CRL for the input; returns whether a new CRL was stored.
pub async fn issue_crl_if_stale<F, Fut, E>(
    db: &Db,
    issuer: &str,
    follows_revocations: bool,
    times: &CrlTimes,
    sign: F,
) -> Result<Result<bool, E>, DbError>
where
    F: FnOnce(CrlInput) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
{
    let mut client = db.get().await?;
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':crl:' || $1))",
            &[&issuer],
        )
        .await?
        .try_get(0)?;
    if !locked {
        return Ok(Ok(false));
    }
    let row = tx
        .query_one(
            "SELECT s.revocation_version, c.crl_number, \
                    c.revocation_version AS crl_revocation_version, c.this_update \
             FROM pki_status s LEFT JOIN crls c ON c.issuer = $1",
            &[&issuer],
        )
        .await?;
    let revocation_version: i64 = row.try_get("revocation_version")?;
    let crl_number: Option<i64> = row.try_get("crl_number")?;
    let listed: Option<i64> = row.try_get("crl_revocation_version")?;
    let this_update: Option<OffsetDateTime> = row.try_get("this_update")?;
    let fresh = listed.is_some_and(|v| v >= revocation_version || !follows_revocations)
        && this_update.is_some_and(|t| t > times.reissue_before);
    if fresh {
        return Ok(Ok(false));
    }
    // Read after the version: a change committed in between is listed too, and the next
    // poll issues again (harmless); the CRL never claims a version it does not cover.
    let rows = tx
        .query(
            "SELECT serial_number, issuer, revoked_at, reason FROM issued_certificates \
             WHERE issuer = $1 AND revoked_at IS NOT NULL ORDER BY revoked_at, serial_number",
            &[&issuer],
        )
        .await?;
    let revoked = rows.iter().map(status_of).collect::<Result<Vec<_>, _>>()?;
    let input = CrlInput {
        crl_number: crl_number.map_or(1, |n| n + 1),
        revocation_version,
        revoked,
    };
    let number = input.crl_number;
    let der = match sign(input).await {
        Ok(signed) => signed,
        Err(e) => return Ok(Err(e)),
    };
    tx.execute(
        "INSERT INTO crls (issuer, crl_number, revocation_version, this_update, next_update, der) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (issuer) DO UPDATE SET crl_number = EXCLUDED.crl_number, \
             revocation_version = EXCLUDED.revocation_version, \
             this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, \
             der = EXCLUDED.der",
        &[
            &issuer,
            &number,
            &revocation_version,
            &times.this_update,
            &times.next_update,
            &der,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(true))
}

/// Replaces (or stores) the certificate of the gateway's own object `name` (e.g. "ocsp").
pub async fn store_own_certificate(
    db: &Db,
    name: &str,
    key_label: &str,
    der: &[u8],
) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            "INSERT INTO ca_certificates (name, key_label, cert_der) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET key_label = EXCLUDED.key_label, \
                 cert_der = EXCLUDED.cert_der, created_at = now()",
            &[&name, &key_label, &der],
        )
        .await?;
    Ok(())
}
