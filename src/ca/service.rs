//! Certificates of the gateway's own services (the time-stamping unit), issued by the issuing
//! CA in the HSM like a subscriber's certificate, each limited to its one purpose.
//!
//! Invariant: a TSA certificate carries the extended key usage id-kp-timeStamping alone and
//! critical (RFC 3161 §2.3), so that its key can vouch for nothing but a time.

use openssl::pkey::PKey;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Name};
use time::OffsetDateTime;

use super::issue::{asn1_time, random_serial, sign_in_hsm};
use super::{Ca, CaError};

impl Ca {
    /// Issues the certificate of the time-stamping unit whose key is `spki` (DER
    /// SubjectPublicKeyInfo, the key in the HSM): key usage digitalSignature and nonRepudiation
    /// (critical; a timestamp is evidence a relying party leans on later), EKU timeStamping only
    /// (critical). Returns the certificate's DER.
    pub(crate) async fn issue_tsa_certificate(
        &self,
        common_name: &str,
        spki: &[u8],
        validity_days: u32,
    ) -> Result<Vec<u8>, CaError> {
        let mut name = X509Name::builder()?;
        name.append_entry_by_text("C", &self.config.country)?;
        name.append_entry_by_text("O", &self.config.organization)?;
        name.append_entry_by_text("CN", common_name)?;
        let name = name.build();
        let now = OffsetDateTime::now_utc();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&random_serial()?.0)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(self.issuing.subject_name())?;
        let pubkey = PKey::public_key_from_der(spki)?;
        b.set_pubkey(&pubkey)?;
        let from = asn1_time(now)?;
        let to = asn1_time(now + time::Duration::days(i64::from(validity_days)))?;
        b.set_not_before(&from)?;
        b.set_not_after(&to)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .non_repudiation()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().critical().time_stamping().build()?)?;
        let ski =
            SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.issuing), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.issuing), None))?;
        b.append_extension(aki)?;
        sign_in_hsm(&self.hsm, self.issuing_key_id.clone(), b, &self.placeholder).await
    }
}
