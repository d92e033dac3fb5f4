//! The CRLs (RFC 5280 §5) of the issuing CA and of the root: v2, crlNumber, authorityKeyIdentifier, thisUpdate and
//! nextUpdate, one entry per revoked or held certificate with its reasonCode
//! (certificateHold for a suspension; none for `unspecified`, as §5.3.1 asks).
//!
//! The to-be-signed part is written here with `der`; the signature is the issuing CA key's,
//! made in the HSM.

use time::OffsetDateTime;

use super::PkiError;
use crate::ca::{Ca, ECDSA_SHA384};
use crate::db::repo::pki::CertificateStatus;
use crate::der;

/// The TBSCertList of `issuer` listing `revoked`.
pub fn tbs_cert_list(
    issuer_name: &[u8],
    authority_key_id: &[u8],
    crl_number: i64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: &[CertificateStatus],
) -> Result<Vec<u8>, PkiError> {
    let mut entries = Vec::new();
    for status in revoked {
        let Some((at, reason)) = status.revoked else {
            continue;
        };
        let serial = hex::decode(&status.serial_number).map_err(|_| PkiError::BadSerial)?;
        let mut entry = [der::uint(&serial), der::x509_time(at)].concat();
        if reason != 0 {
            let code = u8::try_from(reason).map_err(|_| PkiError::BadSerial)?;
            // reasonCode: CRLReason ::= ENUMERATED
            let ext = der::extension(&[2, 5, 29, 21], false, &[0x0a, 0x01, code]);
            entry.extend(der::tlv(0x30, &ext));
        }
        entries.extend(der::tlv(0x30, &entry));
    }
    let number = der::uint(&crl_number.max(0).to_be_bytes());
    let aki = der::tlv(0x30, &der::tlv(0x80, authority_key_id));
    let extensions = der::tlv(
        0xa0,
        &der::tlv(
            0x30,
            &[
                der::extension(&[2, 5, 29, 35], false, &aki),
                der::extension(&[2, 5, 29, 20], false, &number),
            ]
            .concat(),
        ),
    );
    let mut body = [
        vec![0x02, 0x01, 0x01], // v2
        ECDSA_SHA384.to_vec(),
        issuer_name.to_vec(),
        der::x509_time(this_update),
        der::x509_time(next_update),
    ]
    .concat();
    if !entries.is_empty() {
        body.extend(der::tlv(0x30, &entries));
    }
    body.extend(extensions);
    Ok(der::tlv(0x30, &body))
}

/// Whose CRL: the issuing CA's (subscriber certificates) or the root's (CA certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlIssuer {
    Issuing,
    Root,
}

/// Builds and signs (in the HSM, with that CA's key) the CRL of `issuer`.
pub async fn sign_crl(
    ca: &Ca,
    issuer: CrlIssuer,
    crl_number: i64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: &[CertificateStatus],
) -> Result<Vec<u8>, PkiError> {
    let cert = match issuer {
        CrlIssuer::Issuing => ca.issuing(),
        CrlIssuer::Root => ca.root(),
    };
    let name = cert.subject_name().to_der()?;
    let key_id = cert
        .subject_key_id()
        .map(|id| id.as_slice().to_vec())
        .ok_or(PkiError::NoKeyId)?;
    let tbs = tbs_cert_list(
        &name,
        &key_id,
        crl_number,
        this_update,
        next_update,
        revoked,
    )?;
    let signature = match issuer {
        CrlIssuer::Issuing => ca.sign_as_issuing(&tbs).await?,
        CrlIssuer::Root => ca.sign_as_root(&tbs).await?,
    };
    Ok(der::assemble_certificate(&tbs, ECDSA_SHA384, &signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_crl_lists_serials_with_their_reason_and_openssl_reads_it() {
        let revoked = vec![
            CertificateStatus {
                serial_number: "4A0B".into(),
                issuer: "issuing".into(),
                revoked: Some((datetime!(2026-12-01 10:00 UTC), 1)),
            },
            CertificateStatus {
                serial_number: "7F".into(),
                issuer: "issuing".into(),
                revoked: Some((datetime!(2026-12-01 11:00 UTC), 6)),
            },
            CertificateStatus {
                serial_number: "01".into(),
                issuer: "issuing".into(),
                revoked: Some((datetime!(2026-12-01 12:00 UTC), 0)),
            },
        ];
        let mut name = openssl::x509::X509Name::builder().unwrap();
        name.append_entry_by_text("CN", "Test CA").unwrap();
        let name = name.build().to_der().unwrap();
        let tbs = tbs_cert_list(
            &name,
            &[1, 2, 3, 4],
            42,
            datetime!(2026-12-01 12:00 UTC),
            datetime!(2026-12-02 12:00 UTC),
            &revoked,
        )
        .unwrap();
        // A dummy signature: openssl parses what it cannot verify.
        let crl = der::assemble_certificate(&tbs, ECDSA_SHA384, &[0x30, 0x06, 2, 1, 1, 2, 1, 1]);
        let parsed = openssl::x509::X509Crl::from_der(&crl).unwrap();
        let listed = parsed.get_revoked().unwrap();
        let serials: Vec<String> = listed
            .iter()
            .map(|r| {
                r.serial_number()
                    .to_bn()
                    .unwrap()
                    .to_hex_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(serials, ["4A0B", "7F", "01"]);
        assert_eq!(parsed.issuer_name().to_der().unwrap(), name);
    }
}
