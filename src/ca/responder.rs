//! What the issuing CA signs besides subscriber certificates: the delegated OCSP responder's
//! certificate (RFC 6960 §4.2.2.2: EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck, issued by the
//! CA whose certificates it answers for) and arbitrary to-be-signed DER such as a CRL.

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Name};
use std::sync::Arc;
use time::OffsetDateTime;

use super::issue::{asn1_time, finish_in_hsm, random_serial, raw_extension, to_be_signed};
use super::{Ca, CaError};
use crate::hsm::{HashAlg, SignAlgo};

/// AlgorithmIdentifier ecdsa-with-SHA384 (RFC 5758: no parameters), the CA keys' algorithm.
pub const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];

impl Ca {
    /// Issues the OCSP responder certificate for the key `spki` (in the HSM), valid `days`.
    pub async fn issue_ocsp_responder(&self, spki: &[u8], days: u32) -> Result<Vec<u8>, CaError> {
        let config = self.config.clone();
        let issuing = self.issuing.clone();
        let placeholder = self.placeholder.clone();
        let spki = spki.to_vec();
        let (tbs, alg) = tokio::task::spawn_blocking(move || {
            let mut name = X509Name::builder()?;
            name.append_entry_by_text("C", &config.country)?;
            name.append_entry_by_text("O", &config.organization)?;
            name.append_entry_by_text("CN", &format!("{} OCSP Responder", config.organization))?;
            let name = name.build();
            let now = OffsetDateTime::now_utc();
            let mut b = X509Builder::new()?;
            b.set_version(2)?;
            b.set_serial_number(&random_serial()?.0)?;
            b.set_subject_name(&name)?;
            b.set_issuer_name(issuing.subject_name())?;
            let key = PKey::public_key_from_der(&spki)?;
            b.set_pubkey(&key)?;
            let from = asn1_time(now - time::Duration::minutes(5))?;
            let to = asn1_time(now + time::Duration::days(i64::from(days)))?;
            b.set_not_before(&from)?;
            b.set_not_after(&to)?;
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            b.append_extension(
                ExtendedKeyUsage::new()
                    .critical()
                    .other("OCSPSigning")
                    .build()?,
            )?;
            // id-pkix-ocsp-nocheck: relying parties do not ask for the responder's own status.
            b.append_extension(raw_extension("1.3.6.1.5.5.7.48.1.5", false, &[0x05, 0x00])?)?;
            let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&issuing), None))?;
            b.append_extension(ski)?;
            let aki = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(Some(&issuing), None))?;
            b.append_extension(aki)?;
            to_be_signed(b, &placeholder)
        })
        .await
        .map_err(|e| CaError::Task(e.to_string()))??;
        finish_in_hsm(&self.hsm, self.issuing_key_id.clone(), &tbs, &alg).await
    }

    /// Signs `tbs` with the issuing CA key in the HSM (ecdsa-with-SHA384, [`ECDSA_SHA384`]);
    /// returns the DER signature (`SEQUENCE { r, s }`).
    pub async fn sign_as_issuing(&self, tbs: &[u8]) -> Result<Vec<u8>, CaError> {
        self.sign_with(self.issuing_key_id.clone(), tbs).await
    }

    /// [`Ca::sign_as_issuing`] with the root key: the root's CRL.
    pub async fn sign_as_root(&self, tbs: &[u8]) -> Result<Vec<u8>, CaError> {
        self.sign_with(self.root_key_id.clone(), tbs).await
    }

    async fn sign_with(&self, key_id: Vec<u8>, tbs: &[u8]) -> Result<Vec<u8>, CaError> {
        let digest = hash(MessageDigest::sha384(), tbs)?.to_vec();
        self.hsm
            .sign_batch(
                key_id.into(),
                SignAlgo::Ecdsa(HashAlg::Sha384),
                Arc::new(vec![digest]),
            )
            .await?
            .pop()
            .ok_or(CaError::Der)
    }
}
