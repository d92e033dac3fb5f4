//! Certificate issuance: openssl builds the certificate around a placeholder signature, the
//! to-be-signed bytes are hashed and signed by the CA key in the HSM, and the certificate is
//! reassembled with the real signature.

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use std::sync::Arc;

use openssl::bn::{BigNum, MsbOption};
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Extension, X509Name, X509};
use time::OffsetDateTime;

use super::dn::{rfc4514, Subject};
use super::{Ca, CaError};
use crate::config::CaConfig;
use crate::der;
use crate::hsm::{HashAlg, Hsm, SignAlgo};
use crate::model::Purpose;

/// What a credential certificate says.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub given_name: String,
    pub surname: String,
    pub fiscal_code: String,
    pub organization: Option<String>,
    pub purpose: Purpose,
    /// SubjectPublicKeyInfo DER of the credential's key (generated in the HSM).
    pub spki: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// An issued certificate and its chain.
#[derive(Debug, Clone)]
pub struct Issued {
    /// leaf, issuing CA, root: DER.
    pub chain: Vec<Vec<u8>>,
    /// Upper-case hex.
    pub serial_number: String,
    pub subject_dn: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

pub(super) fn random_serial() -> Result<(Asn1Integer, String), CaError> {
    let mut bn = BigNum::new()?;
    // 127 random bits, top bit clear: positive, and never zero in practice.
    bn.rand(127, MsbOption::ONE, false)?;
    let hex = bn.to_hex_str()?.to_string();
    Ok((bn.to_asn1_integer()?, hex))
}

pub(super) fn asn1_time(t: OffsetDateTime) -> Result<Asn1Time, CaError> {
    Ok(Asn1Time::from_unix(t.unix_timestamp())?)
}

/// ETSI EN 319 412-5 QCStatements: QcCompliance, QcSSCD, QcType = esign, QcPDS (`pds_url`,
/// English), and the EN 319 412-1 semantics identifier of a natural person (the subject's
/// serialNumber is `TINIT-<fiscal code>`).
fn qc_statements(pds_url: &str) -> Result<X509Extension, CaError> {
    let etsi = |tail: &[u64]| der::oid(&[&[0, 4, 0, 1862, 1][..], tail].concat());
    let pds = der::tlv(
        0x30,
        &der::tlv(
            0x30,
            &[der::tlv(0x16, pds_url.as_bytes()), der::tlv(0x13, b"en")].concat(),
        ),
    );
    let natural_person = der::tlv(0x30, &der::oid(&[0, 4, 0, 194121, 1, 1]));
    let statements = der::tlv(
        0x30,
        &[
            der::tlv(0x30, &etsi(&[1])),
            der::tlv(0x30, &etsi(&[4])),
            der::tlv(0x30, &[etsi(&[6]), der::tlv(0x30, &etsi(&[6, 1]))].concat()),
            der::tlv(0x30, &[etsi(&[5]), pds].concat()),
            der::tlv(
                0x30,
                &[der::oid(&[1, 3, 6, 1, 5, 5, 7, 11, 2]), natural_person].concat(),
            ),
        ]
        .concat(),
    );
    raw_extension("1.3.6.1.5.5.7.1.3", false, &statements)
}

/// An extension from its DER value.
pub(super) fn raw_extension(
    oid: &str,
    critical: bool,
    value: &[u8],
) -> Result<X509Extension, CaError> {
    let oid = Asn1Object::from_str(oid)?;
    let value = Asn1OctetString::new_from_bytes(value)?;
    Ok(X509Extension::new_from_der(&oid, critical, &value)?)
}

/// authorityInfoAccess: the OCSP responder (when the issuer runs one for this certificate)
/// and the issuer's certificate.
fn authority_info_access(ocsp: Option<&str>, ca_issuers: &str) -> Result<X509Extension, CaError> {
    let access = |method: u64, url: &str| {
        der::tlv(
            0x30,
            &[
                der::oid(&[1, 3, 6, 1, 5, 5, 7, 48, method]),
                der::tlv(0x86, url.as_bytes()),
            ]
            .concat(),
        )
    };
    let mut methods = ocsp.map(|url| access(1, url)).unwrap_or_default();
    methods.extend(access(2, ca_issuers));
    raw_extension("1.3.6.1.5.5.7.1.1", false, &der::tlv(0x30, &methods))
}

/// cRLDistributionPoints: one point, the issuer's CRL (fullName URI).
fn crl_distribution_points(url: &str) -> Result<X509Extension, CaError> {
    let full_name = der::tlv(0xa0, &der::tlv(0x86, url.as_bytes()));
    let value = der::tlv(0x30, &der::tlv(0x30, &der::tlv(0xa0, &full_name)));
    raw_extension("2.5.29.31", false, &value)
}

/// certificatePolicies: the configured policy OIDs (no qualifiers).
fn certificate_policies(oids: &[Vec<u64>]) -> Result<X509Extension, CaError> {
    let policies: Vec<u8> = oids
        .iter()
        .flat_map(|arcs| der::tlv(0x30, &der::oid(arcs)))
        .collect();
    raw_extension("2.5.29.32", false, &der::tlv(0x30, &policies))
}

/// The URLs the CA's certificates name, from `pki.base_url`: those of the issuing CA (in
/// subscriber certificates) and those of the root (in the issuing CA's certificate).
#[derive(Debug, Clone)]
pub struct PkiUrls {
    pub ocsp: String,
    pub ca_issuers: String,
    pub crl: String,
    pub root_cer: String,
    pub root_crl: String,
}

impl PkiUrls {
    pub fn new(base_url: &str) -> PkiUrls {
        let base = base_url.trim_end_matches('/');
        PkiUrls {
            ocsp: format!("{base}/pki/ocsp"),
            ca_issuers: format!("{base}/pki/ca/{}.cer", super::ISSUING_NAME),
            crl: format!("{base}/pki/crl/{}.crl", super::ISSUING_NAME),
            root_cer: format!("{base}/pki/ca/{}.cer", super::ROOT_NAME),
            root_crl: format!("{base}/pki/crl/{}.crl", super::ROOT_NAME),
        }
    }
}

/// A builder for a CA certificate (root when `issuer` is `None`). A subordinate CA names where
/// its issuer's certificate and CRL are (`urls`: the root's), so that a relying party can check
/// the issuing CA's own status and anchor trust at the root.
pub(super) fn ca_builder(
    common_name: &str,
    config: &CaConfig,
    issuer: Option<(&X509, &PkiUrls)>,
    spki: &[u8],
    years: i64,
) -> Result<X509Builder, CaError> {
    let urls = issuer.map(|(_, urls)| urls);
    let issuer = issuer.map(|(cert, _)| cert);
    let mut name = X509Name::builder()?;
    name.append_entry_by_text("C", &config.country)?;
    name.append_entry_by_text("O", &config.organization)?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let now = OffsetDateTime::now_utc();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    b.set_serial_number(&random_serial()?.0)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(issuer.map_or(&*name, |i| i.subject_name()))?;
    let pubkey = PKey::public_key_from_der(spki)?;
    b.set_pubkey(&pubkey)?;
    let (from, to) = (
        asn1_time(now)?,
        asn1_time(now + time::Duration::days(365 * years))?,
    );
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    let mut constraints = BasicConstraints::new();
    constraints.critical().ca();
    if issuer.is_some() {
        constraints.pathlen(0);
    }
    b.append_extension(constraints.build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(issuer.map(|i| &**i), None))?;
    b.append_extension(ski)?;
    if let Some(issuer) = issuer {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(issuer), None))?;
        b.append_extension(aki)?;
    }
    if let Some(urls) = urls {
        b.append_extension(authority_info_access(None, &urls.root_cer)?)?;
        b.append_extension(crl_distribution_points(&urls.root_crl)?)?;
    }
    Ok(b)
}

/// Finishes `builder` with a signature of the CA key `key_id` made in the HSM.
pub(super) async fn sign_in_hsm(
    hsm: &Hsm,
    key_id: Vec<u8>,
    builder: X509Builder,
    placeholder: &PKey<Private>,
) -> Result<Vec<u8>, CaError> {
    let (tbs, alg) = to_be_signed(builder, placeholder)?;
    finish_in_hsm(hsm, key_id, &tbs, &alg).await
}

/// Signs `tbs` (SHA-384, ECDSA) with the CA key `key_id` and assembles the certificate.
pub(super) async fn finish_in_hsm(
    hsm: &Hsm,
    key_id: Vec<u8>,
    tbs: &[u8],
    alg: &[u8],
) -> Result<Vec<u8>, CaError> {
    let digest = hash(MessageDigest::sha384(), tbs)?.to_vec();
    let signature = hsm
        .sign_batch(
            key_id.into(),
            SignAlgo::Ecdsa(HashAlg::Sha384),
            Arc::new(vec![digest]),
        )
        .await?
        .pop()
        .ok_or(CaError::Der)?;
    Ok(der::assemble_certificate(tbs, alg, &signature))
}

/// The TBSCertificate and signature AlgorithmIdentifier (ecdsa-with-SHA384) of `builder`.
pub(super) fn to_be_signed(
    mut builder: X509Builder,
    placeholder: &PKey<Private>,
) -> Result<(Vec<u8>, Vec<u8>), CaError> {
    builder.sign(placeholder, MessageDigest::sha384())?;
    let cert = builder.build().to_der()?;
    let (tbs, alg) = der::split_certificate(&cert).ok_or(CaError::Der)?;
    Ok((tbs.to_vec(), alg.to_vec()))
}

/// What a subscriber certificate names beyond its subject: the status URLs and the qualified
/// profile's PDS and policies.
#[derive(Debug, Clone)]
pub struct Profile {
    pub urls: PkiUrls,
    pub pds_url: String,
    pub policies: Vec<Vec<u64>>,
}

/// A builder for a subscriber certificate issued by `issuing`.
fn leaf_builder(
    req: &IssueRequest,
    config: &CaConfig,
    profile: &Profile,
    issuing: &X509,
) -> Result<(X509Builder, String, String), CaError> {
    let subject = Subject {
        given_name: &req.given_name,
        surname: &req.surname,
        fiscal_code: &req.fiscal_code,
        organization: req.organization.as_deref(),
        country: &config.country,
    }
    .to_name()?;
    let subject_dn = rfc4514(&subject);
    let (serial, serial_hex) = random_serial()?;
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(issuing.subject_name())?;
    let pubkey = PKey::public_key_from_der(&req.spki)?;
    b.set_pubkey(&pubkey)?;
    let (from, to) = (asn1_time(req.not_before)?, asn1_time(req.not_after)?);
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    match req.purpose {
        Purpose::Signing => {
            // A signing certificate is for non-repudiation only: it cannot authenticate.
            b.append_extension(KeyUsage::new().critical().non_repudiation().build()?)?;
            b.append_extension(qc_statements(&profile.pds_url)?)?;
            if !profile.policies.is_empty() {
                b.append_extension(certificate_policies(&profile.policies)?)?;
            }
        }
        Purpose::Authentication => {
            b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        }
    }
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(issuing), None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(issuing), None))?;
    b.append_extension(aki)?;
    // Where relying parties learn the status and find the issuer.
    let urls = &profile.urls;
    b.append_extension(authority_info_access(Some(&urls.ocsp), &urls.ca_issuers)?)?;
    b.append_extension(crl_distribution_points(&urls.crl)?)?;
    Ok((b, serial_hex, subject_dn))
}

impl Ca {
    /// Issues a credential certificate signed by the issuing CA key in the HSM.
    pub async fn issue(&self, req: IssueRequest) -> Result<Issued, CaError> {
        let config = self.config.clone();
        let profile = self.profile.clone();
        let issuing = self.issuing.clone();
        let placeholder = self.placeholder.clone();
        let request = req.clone();
        // Building and encoding is CPU work: keep it off the async executor.
        let (tbs, alg, serial_number, subject_dn) = tokio::task::spawn_blocking(move || {
            let (builder, serial, dn) = leaf_builder(&request, &config, &profile, &issuing)?;
            let (tbs, alg) = to_be_signed(builder, &placeholder)?;
            Ok::<_, CaError>((tbs, alg, serial, dn))
        })
        .await
        .map_err(|e| CaError::Task(e.to_string()))??;
        let leaf = finish_in_hsm(&self.hsm, self.issuing_key_id.clone(), &tbs, &alg).await?;
        Ok(Issued {
            chain: vec![leaf, self.issuing.to_der()?, self.root.to_der()?],
            serial_number,
            subject_dn,
            not_before: req.not_before,
            not_after: req.not_after,
        })
    }
}
