//! The RFC 3161 time-stamping authority (with RFC 5816's ESSCertIDv2): one time-stamping unit
//! whose EC P-256 key lives in the HSM and whose certificate the issuing CA issued for it.
//!
//! Invariants: a token is signed only inside the HSM, through the worker pool (batched with
//! the other tokens being made, see `tsa_signer`); it names the configured policy and no
//! other (a query asking for another is refused); it repeats the query's imprint and nonce
//! byte for byte; its serial number is 127 random bits, so that nodes need no coordination and
//! no database round trip to keep serials unique (a collision after 2^40 tokens has odds
//! below 2^-47); the key and the certificate are created once, under the start-up lock.

use std::sync::Arc;

use openssl::hash::{hash, MessageDigest};
use openssl::x509::X509;
use time::OffsetDateTime;

use super::tsa_der::{self as tder, FailInfo, Query, Signer, TstFields};
use super::tsa_signer::BatchSigner;
use crate::ca::{Ca, CaError};
use crate::config::TsaConfig;
use crate::db::{repo, Db, DbError};
use crate::hsm::{HashAlg, Hsm, HsmError, KeyAlgo, SignAlgo};

pub use super::tsa_der::dotted_der as policy_oid_der;

/// Name of the TSA key among the gateway's own HSM objects.
const TSA_KEY: &str = "tsa-1";

/// Timestamps waiting for the HSM before new ones are refused as busy.
const QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("TSA certificate: {0}")]
    Certificate(#[from] openssl::error::ErrorStack),
    #[error("the TSA key in the HSM does not match its stored certificate")]
    KeyMismatch,
    #[error("tsa.policy_oid is not an OID")]
    Policy,
}

/// What CSC `signatures/timestamp` asks a token for.
pub struct StampRequest {
    pub hash: HashAlg,
    /// Exactly `hash`'s length (checked by the caller).
    pub digest: Vec<u8>,
    /// Big-endian magnitude of the nonce, if any.
    pub nonce: Option<Vec<u8>>,
}

/// The loaded TSA.
pub struct Tsa {
    policy: Vec<u8>,
    policy_oid: String,
    accuracy_ms: u32,
    certificate: Vec<u8>,
    /// The TSA certificate and the issuing CA's, as sent when a query asks (certReq).
    certificates: Vec<u8>,
    sid: Vec<u8>,
    tsa_name: Vec<u8>,
    signing_certificate: Vec<u8>,
    signer: BatchSigner,
}

fn magnitude(cert: &X509) -> Result<Vec<u8>, TsaError> {
    Ok(cert.serial_number().to_bn()?.to_vec())
}

impl Tsa {
    /// Loads the TSA, generating its key in the HSM and having the CA certify it on first
    /// start. Callers hold the start-up lock so that two nodes never make two.
    pub async fn ensure(db: &Db, hsm: &Hsm, ca: &Ca, config: &TsaConfig) -> Result<Tsa, TsaError> {
        let policy = tder::dotted_der(&config.policy_oid).ok_or(TsaError::Policy)?;
        let spki = hsm.ensure_own_key_pair(TSA_KEY, KeyAlgo::EcP256).await?;
        let key_id = hsm.own_key_id(TSA_KEY);
        let label = String::from_utf8_lossy(&key_id).into_owned();
        let der = match repo::tsa::find(db, &label).await? {
            Some(der) => der,
            None => {
                let der = ca
                    .issue_tsa_certificate(
                        &config.common_name,
                        &spki,
                        config.certificate_validity_days,
                    )
                    .await?;
                repo::tsa::insert(db, &label, &der).await?;
                der
            }
        };
        let cert = X509::from_der(&der)?;
        if cert.public_key()?.public_key_to_der()? != spki {
            return Err(TsaError::KeyMismatch);
        }
        let issuer = cert.issuer_name().to_der()?;
        let serial = tder::unsigned_integer(&magnitude(&cert)?);
        let cert_sha256 = hash(MessageDigest::sha256(), &der)?;
        Ok(Tsa {
            policy,
            policy_oid: config.policy_oid.clone(),
            accuracy_ms: config.accuracy_ms,
            certificates: [der.clone(), ca.issuing().to_der()?].concat(),
            sid: crate::der::tlv(0x30, &[issuer.clone(), serial.clone()].concat()),
            tsa_name: cert.subject_name().to_der()?,
            signing_certificate: tder::signing_certificate_v2(&cert_sha256, &issuer, &serial),
            certificate: der,
            signer: BatchSigner::start(
                hsm.clone(),
                Arc::from(key_id),
                SignAlgo::Ecdsa(HashAlg::Sha256),
                QUEUE,
            ),
        })
    }

    /// The TSA certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Answers a DER `TimeStampReq` with a DER `TimeStampResp`: granted with a token, or a
    /// rejection naming the failure. `Err` only when the HSM could not sign.
    pub async fn reply(&self, query: &[u8]) -> Result<Vec<u8>, TsaError> {
        let query = match tder::parse_query(query) {
            Ok(query) => query,
            Err((failure, text)) => return Ok(tder::rejection(failure, text)),
        };
        if query.policy.as_ref().is_some_and(|p| *p != self.policy_oid) {
            return Ok(tder::rejection(
                FailInfo::UnacceptedPolicy,
                "this TSA issues tokens under its own policy only",
            ));
        }
        let token = self.token(&query).await?;
        Ok(tder::granted(&token))
    }

    /// A `TimeStampToken` (DER ContentInfo) for CSC `signatures/timestamp`, with the
    /// certificates, as a validator fetching nothing needs them.
    pub async fn stamp(&self, request: StampRequest) -> Result<Vec<u8>, TsaError> {
        let query = Query {
            imprint: tder::imprint(request.hash, &request.digest),
            hash: request.hash,
            policy: None,
            nonce: request.nonce.as_deref().map(tder::unsigned_integer),
            cert_req: true,
        };
        self.token(&query).await
    }

    /// Builds, signs in the HSM and assembles the token for `query`.
    async fn token(&self, query: &Query) -> Result<Vec<u8>, TsaError> {
        let mut serial = [0u8; 16];
        openssl::rand::rand_bytes(&mut serial)?;
        // 127 bits: positive, in 16 content bytes.
        serial[0] &= 0x7f;
        let now = OffsetDateTime::now_utc();
        let tst_info = tder::tst_info(
            query,
            &TstFields {
                policy: &self.policy,
                serial: &serial,
                gen_time: now,
                accuracy_ms: self.accuracy_ms,
                tsa_name: &self.tsa_name,
            },
        );
        let tst_digest = hash(MessageDigest::sha256(), &tst_info)?;
        let attributes = tder::signed_attributes(&tst_digest, now, &self.signing_certificate);
        let to_sign = hash(
            MessageDigest::sha256(),
            &tder::signed_attributes_to_sign(&attributes),
        )?;
        let signature = self.signer.sign(to_sign.to_vec()).await?;
        let signer = Signer {
            sid: &self.sid,
            certificates: &self.certificates,
        };
        Ok(tder::token(
            &tst_info,
            &attributes,
            &signature,
            &signer,
            query.cert_req,
        ))
    }
}

/// A `TimeStampResp` for a TSA that cannot sign now (the HSM is busy or gone).
pub fn system_failure_reply() -> Vec<u8> {
    tder::rejection(
        FailInfo::SystemFailure,
        "the time-stamping unit is unavailable; retry later",
    )
}

/// A `TimeStampResp` refusing a request the TSA does not take (badRequest).
pub fn rejection_bad_request(text: &str) -> Vec<u8> {
    tder::rejection(FailInfo::BadRequest, text)
}
