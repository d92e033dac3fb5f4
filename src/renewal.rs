//! Renewal of a remote-signature certificate: once, inside the renewal window, while not
//! expired, revoked or suspended, with the subscriber confirming their identity data, their PIN
//! and OTP, and a single-use coupon. The new certificate certifies the same HSM key, valid 3
//! years from the old expiry; the old one is kept in the history.
//!
//! Invariant: the coupon is redeemed, the old certificate archived and the new one installed in
//! ONE database transaction — a failure anywhere leaves the coupon unused and nothing changed.
//! The coupon is redeemed (its row locked) BEFORE the CA signs: two renewals with one coupon
//! never both get a certificate signed, even in parallel on several nodes.

use openssl::rand::rand_bytes;
use openssl::sha::sha256;
use openssl::x509::X509;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::activation::{check_factors, ActivationError, SecretKind};
use crate::audit::AuditError;
use crate::ca::{CaError, IssueRequest};
use crate::db::repo::coupons::{self, NewCertificate, RenewOutcome};
use crate::db::{repo, DbError};
use crate::model::{Credential, CredentialStatus, Operator};
use crate::services::Services;

/// A renewed certificate is valid this long after the old expiry.
const RENEWAL_DAYS: i64 = 1095;
/// Most coupons per request.
pub const MAX_COUPONS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RenewalError {
    #[error("count: 1 to 1000 coupons")]
    BadCount,
    #[error("the identity data in the certificate must be confirmed (confirm_identity: true)")]
    IdentityNotConfirmed,
    #[error("the renewal window opens {0} days before expiry")]
    NotInWindow(u32),
    #[error("the certificate was already renewed once")]
    AlreadyRenewed,
    #[error("the coupon is unknown or was already used")]
    InvalidCoupon,
    #[error("the credential is revoked")]
    Revoked,
    #[error("the credential is suspended")]
    Suspended,
    #[error("the certificate has expired")]
    Expired,
    #[error("the credential is {0}: renewal needs an active credential")]
    WrongState(CredentialStatus),
    #[error(transparent)]
    Factors(#[from] ActivationError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("stored certificate unreadable: {0}")]
    Certificate(#[from] openssl::error::ErrorStack),
}

impl RenewalError {
    /// A spent budget (HTTP 429 on the API and on the portal's pages alike).
    pub fn is_limited(&self) -> bool {
        matches!(self, RenewalError::Factors(e) if e.is_limited())
    }
}

fn coupon_hash(coupon: &str) -> Vec<u8> {
    sha256(coupon.trim().as_bytes()).to_vec()
}

/// Creates `count` single-use coupons; returns them (stored only as digests).
pub async fn create_coupons(
    services: &Services,
    count: usize,
    operator: &Operator,
) -> Result<Vec<String>, RenewalError> {
    if !(1..=MAX_COUPONS).contains(&count) {
        services
            .audit
            .record(
                &operator.name,
                "coupons.create",
                None,
                "refused",
                operator.audit_detail(json!({ "count": count })),
            )
            .await?;
        return Err(RenewalError::BadCount);
    }
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut coupons = Vec::with_capacity(count);
    for _ in 0..count {
        let mut random = [0u8; 16];
        rand_bytes(&mut random)?;
        let text: String = random
            .iter()
            .map(|b| {
                char::from(
                    ALPHABET
                        .get(usize::from(*b) % ALPHABET.len())
                        .copied()
                        .unwrap_or(b'A'),
                )
            })
            .collect();
        coupons.push(format!("RNW-{}", text));
    }
    let hashes: Vec<Vec<u8>> = coupons.iter().map(|c| coupon_hash(c)).collect();
    coupons::insert(&services.db, &hashes).await?;
    services
        .audit
        .record(
            &operator.name,
            "coupons.create",
            None,
            "ok",
            operator.audit_detail(json!({ "count": count })),
        )
        .await?;
    Ok(coupons)
}

/// A subscriber's renewal request.
pub struct RenewCommand {
    pub user_id: String,
    pub credential_id: Uuid,
    pub confirm_identity: bool,
    pub pin: String,
    pub otp: String,
    pub coupon: String,
}

/// Renews the certificate; returns the updated credential.
pub async fn renew(services: &Services, cmd: RenewCommand) -> Result<Credential, RenewalError> {
    let result = run(services, &cmd).await;
    services
        .audit
        .record(
            &cmd.user_id,
            "credential.renew",
            Some(cmd.credential_id),
            if result.is_ok() { "ok" } else { "refused" },
            json!({}),
        )
        .await?;
    result
}

async fn run(services: &Services, cmd: &RenewCommand) -> Result<Credential, RenewalError> {
    if !cmd.confirm_identity {
        return Err(RenewalError::IdentityNotConfirmed);
    }
    let credential = repo::credentials::find_owned(&services.db, cmd.credential_id, &cmd.user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    let now = OffsetDateTime::now_utc();
    let window = services.config.lifecycle.renewal_window_days;
    match credential.status {
        CredentialStatus::Revoked => return Err(RenewalError::Revoked),
        CredentialStatus::Suspended => return Err(RenewalError::Suspended),
        _ if credential.renewed_at.is_some() => return Err(RenewalError::AlreadyRenewed),
        _ if credential.valid_to <= now => return Err(RenewalError::Expired),
        CredentialStatus::Active => {}
        other => return Err(RenewalError::WrongState(other)),
    }
    if now < credential.valid_to - Duration::days(i64::from(window)) {
        return Err(RenewalError::NotInWindow(window));
    }
    let purpose = crate::otp::Purpose::Renew(credential.credential_id);
    check_factors(
        services,
        &credential,
        &cmd.otp,
        purpose,
        SecretKind::Pin,
        &cmd.pin,
    )
    .await?;

    // The same key, certified again with the identity data the subscriber just confirmed.
    let leaf = credential
        .cert_chain
        .first()
        .map(|der| X509::from_der(der))
        .transpose()?
        .ok_or(RenewalError::WrongState(credential.status))?;
    let user = repo::users::find(&services.db, &cmd.user_id)
        .await?
        .ok_or(ActivationError::CredentialNotFound)?;
    let request = IssueRequest {
        given_name: user.given_name,
        surname: user.surname,
        fiscal_code: user.fiscal_code,
        organization: None,
        purpose: credential.purpose,
        spki: leaf.public_key()?.public_key_to_der()?,
        not_before: now - Duration::minutes(5),
        not_after: credential.valid_to + Duration::days(RENEWAL_DAYS),
    };
    // The CA signs only inside the transaction that holds the redeemed coupon.
    let outcome = coupons::renew(
        &services.db,
        credential.credential_id,
        &coupon_hash(&cmd.coupon),
        || async {
            let issued = services.ca.issue(request).await?;
            Ok::<_, CaError>(NewCertificate {
                serial_number: issued.serial_number,
                valid_from: issued.not_before,
                valid_to: issued.not_after,
                cert_chain: issued.chain,
            })
        },
    )
    .await??;
    match outcome {
        RenewOutcome::Renewed => repo::credentials::find(&services.db, credential.credential_id)
            .await?
            .ok_or(RenewalError::AlreadyRenewed),
        RenewOutcome::CouponUsed => Err(RenewalError::InvalidCoupon),
        RenewOutcome::AlreadyRenewed => Err(RenewalError::AlreadyRenewed),
    }
}
