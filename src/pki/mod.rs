//! Trust for relying parties: certificate status (CRL, OCSP) published by the gateway's CA,
//! and the RFC 3161 time-stamping authority (keys in the HSM, certificates issued by `ca`).
//!
//! - `status`: every node's in-memory view of which certificate is good, revoked or held,
//!   kept in step with PostgreSQL by a poll of a version, and the CRL it serves.
//! - `crl`: the CRLs of the issuing CA and of the root, signed in the HSM.
//! - `ocsp`: the RFC 6960 request parser, response writer and delegated responder.
//! - `handlers`: the public `/pki/...` endpoints.
//! - `tsa`: the time-stamping authority (`POST /tsa`; its handler is in `csc::timestamp`).
//!
//! Invariant: a certificate's status changes in the same PostgreSQL transaction as its
//! credential's (migration 0007's triggers); OCSP and the CRL of every node follow within
//! `pki.status_poll_ms` plus one signature, and never touch the database per request.

mod crl;
pub mod handlers;
pub mod ocsp;
mod status;
pub mod tsa;
mod tsa_der;
mod tsa_signer;

pub use status::Pki;

use serde::Deserialize;

use crate::ca::CaError;
use crate::db::DbError;
use crate::hsm::HsmError;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("certificate or key encoding failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("a stored serial number or reason is not what migration 0007 writes")]
    BadSerial,
    #[error("the CA certificate or responder key has no usable key identifier")]
    NoKeyId,
    #[error("the status cache lock was poisoned")]
    Poisoned,
}

/// The revocation reasons an operator may give (RFC 5280 CRLReason); a suspension is always
/// certificateHold and takes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// The CRLReason code.
    pub fn code(self) -> i16 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::PrivilegeWithdrawn => 9,
        }
    }
}

/// Every node's status poll, for as long as the gateway runs.
pub async fn watch(services: actix_web::web::Data<crate::services::Services>) {
    let interval = std::time::Duration::from_millis(services.config.pki.status_poll_ms);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    // The responder certificate is looked at about once an hour.
    let per_hour = (3_600_000 / services.config.pki.status_poll_ms.max(1)).max(1);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks = ticks.wrapping_add(1);
        if ticks % per_hour == 0 {
            if let Err(e) = services
                .pki
                .renew_responder_if_due(&services.db, &services.hsm, &services.ca)
                .await
            {
                tracing::error!(error = %e, "renewing the OCSP responder certificate failed; retried in an hour");
            }
        }
        match services.pki.refresh(&services.db, &services.ca).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("certificate status poll recovered");
            }
            Ok(()) => {}
            // Logged once per outage, not four times a second.
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "certificate status poll failed; OCSP and the CRL keep the last state");
            }
            Err(_) => {}
        }
    }
}
