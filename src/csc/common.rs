//! What the two CSC versions share: input checks that turn wire values into domain values
//! (enforcing every limit before Redis or the HSM is touched) and the credential descriptors.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::x509::X509;
use serde::Serialize;
use time::OffsetDateTime;

use crate::ca::rfc4514;
use crate::config::CscConfig;
use crate::credentials::CertStatus;
use crate::error::ApiError;
use crate::hsm::HashAlg;
use crate::model::{Credential, CredentialStatus, OtpMethod, Purpose};

/// Longest base64 text accepted for one hash (a SHA-512 digest is 88 characters).
const MAX_HASH_B64: usize = 128;

/// Decodes `hashes`: at most `max`, each valid base64 of a digest of `alg` (or, when no
/// algorithm is named, of one SHA-2 length shared by all). `field` names the parameter.
pub fn decode_hashes(
    field: &str,
    hashes: &[String],
    alg: Option<HashAlg>,
    max: usize,
) -> Result<(Vec<Vec<u8>>, Option<HashAlg>), ApiError> {
    if hashes.is_empty() {
        return Err(ApiError::invalid_request(format!(
            "Invalid parameter {field}: empty"
        )));
    }
    if hashes.len() > max {
        return Err(ApiError::invalid_request(format!(
            "Invalid parameter {field}: {} hashes, at most {max} per request",
            hashes.len()
        )));
    }
    let mut out = Vec::with_capacity(hashes.len());
    let mut seen_alg = alg;
    for (i, text) in hashes.iter().enumerate() {
        let bad = |why: &str| {
            ApiError::invalid_request(format!("Invalid parameter {field}: hash {} {why}", i + 1))
        };
        if text.len() > MAX_HASH_B64 {
            return Err(bad("is too long"));
        }
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| bad("is not valid base64"))?;
        match seen_alg {
            Some(a) if a.digest_len() != bytes.len() => {
                return Err(bad(&format!(
                    "has {} bytes; {} needs {}",
                    bytes.len(),
                    a.oid(),
                    a.digest_len()
                )))
            }
            Some(_) => {}
            None => {
                seen_alg = Some(
                    HashAlg::from_len(bytes.len())
                        .ok_or_else(|| bad("is not a SHA-256/384/512 digest"))?,
                );
            }
        }
        out.push(bytes);
    }
    Ok((out, seen_alg))
}

/// A hash algorithm OID, if given.
pub fn hash_alg(field: &str, oid: Option<&str>) -> Result<Option<HashAlg>, ApiError> {
    oid.map(|o| {
        HashAlg::from_oid(o).ok_or_else(|| {
            ApiError::invalid_request(format!("Invalid parameter {field}: unsupported {o}"))
        })
    })
    .transpose()
}

/// Base64 `signAlgoParams`, if given.
pub fn sign_algo_params(params: Option<&str>) -> Result<Option<Vec<u8>>, ApiError> {
    params
        .map(|p| {
            if p.len() > 1024 {
                return Err(ApiError::invalid_request(
                    "Invalid parameter signAlgoParams: too long",
                ));
            }
            STANDARD.decode(p).map_err(|_| {
                ApiError::invalid_request("Invalid parameter signAlgoParams: not base64")
            })
        })
        .transpose()
}

/// `numSignatures`: 1 to the configured maximum, and (when hashes are bound) their count.
pub fn num_signatures(n: i64, bound: Option<usize>, max: u32) -> Result<u32, ApiError> {
    let n = u32::try_from(n)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_request(format!("Invalid parameter numSignatures: 1 to {max}"))
        })?;
    if let Some(count) = bound {
        if usize::try_from(n).ok() != Some(count) {
            return Err(ApiError::invalid_request(
                "Invalid parameter numSignatures: must equal the number of hashes",
            ));
        }
    }
    Ok(n)
}

/// Hashes bound to a SAD must be distinct.
pub fn distinct(field: &str, hashes: &[Vec<u8>]) -> Result<(), ApiError> {
    let mut sorted: Vec<&Vec<u8>> = hashes.iter().collect();
    sorted.sort();
    if sorted.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(ApiError::invalid_request(format!(
            "Invalid parameter {field}: the same hash appears twice"
        )));
    }
    Ok(())
}

/// `certificates`: "none", "single" (default) or "chain" → how many of the chain to return.
pub fn certificates_wanted(value: Option<&str>) -> Result<usize, ApiError> {
    match value.unwrap_or("single") {
        "none" => Ok(0),
        "single" => Ok(1),
        "chain" => Ok(usize::MAX),
        _ => Err(ApiError::invalid_request(
            "Invalid parameter certificates: none, single or chain",
        )),
    }
}

/// CSC `key` object.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    pub status: &'static str,
    pub algo: Vec<&'static str>,
    pub len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<&'static str>,
}

impl KeyInfo {
    pub fn of(c: &Credential) -> KeyInfo {
        KeyInfo {
            status: if c.status == CredentialStatus::Active {
                "enabled"
            } else {
                "disabled"
            },
            algo: c.key_algo.sign_algo_oids().to_vec(),
            len: c.key_algo.bits(),
            curve: c.key_algo.curve_oid(),
        }
    }
}

/// CSC `cert` object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertInfo {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
    #[serde(rename = "issuerDN", skip_serializing_if = "Option::is_none")]
    pub issuer_dn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(rename = "subjectDN", skip_serializing_if = "Option::is_none")]
    pub subject_dn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ`.
pub fn generalized_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl CertInfo {
    pub fn of(c: &Credential, wanted: usize, details: bool) -> CertInfo {
        let certificates = (wanted > 0).then(|| {
            c.cert_chain
                .iter()
                .take(wanted)
                .map(|der| STANDARD.encode(der))
                .collect()
        });
        let issuer_dn = details
            .then(|| {
                c.cert_chain
                    .first()
                    .and_then(|der| X509::from_der(der).ok())
            })
            .flatten()
            .map(|leaf| rfc4514(leaf.issuer_name()));
        CertInfo {
            status: CertStatus::of(c, OffsetDateTime::now_utc()).as_str(),
            certificates,
            issuer_dn,
            serial_number: details.then(|| c.serial_number.clone()),
            subject_dn: details.then(|| c.subject_dn.clone()),
            valid_from: details.then(|| generalized_time(c.valid_from)),
            valid_to: details.then(|| generalized_time(c.valid_to)),
        }
    }
}

/// The credential's description.
pub fn description(c: &Credential) -> String {
    let purpose = match c.purpose {
        Purpose::Signing => "Qualified electronic signature",
        Purpose::Authentication => "Authentication",
    };
    format!("{purpose} ({}, {})", c.key_algo, c.subject_dn)
}

/// `signatureQualifier`: QES for signing credentials.
pub fn signature_qualifier(c: &Credential) -> Option<&'static str> {
    (c.purpose == Purpose::Signing).then_some("eu_eidas_qes")
}

/// How the OTP reaches the user: "online" (SMS, sent by the service) or "offline" (app).
pub fn otp_type(method: OtpMethod) -> &'static str {
    match method {
        OtpMethod::Sms => "online",
        OtpMethod::Totp => "offline",
    }
}

/// `SCAL` and `multisign` of every credential.
pub fn scal_and_multisign(config: &CscConfig) -> (String, usize) {
    (config.scal.clone(), config.max_hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(len: usize) -> String {
        STANDARD.encode(vec![7u8; len])
    }

    #[test]
    fn hashes_must_fit_their_algorithm() {
        let (hashes, alg) = decode_hashes("hashes", &[b64(32), b64(32)], None, 10).unwrap();
        assert_eq!((hashes.len(), alg), (2, Some(HashAlg::Sha256)));
        assert!(
            decode_hashes("hashes", &[b64(32), b64(48)], None, 10).is_err(),
            "mixed lengths"
        );
        assert!(decode_hashes("hashes", &[b64(32)], Some(HashAlg::Sha384), 10).is_err());
        assert!(
            decode_hashes("hashes", &[b64(20)], None, 10).is_err(),
            "SHA-1 length"
        );
        assert!(decode_hashes("hashes", &["***".into()], None, 10).is_err());
        assert!(decode_hashes("hashes", &[], None, 10).is_err());
        assert!(
            decode_hashes("hashes", &vec![b64(32); 11], None, 10).is_err(),
            "over the limit"
        );
        assert!(decode_hashes("hashes", &["A".repeat(200)], None, 10).is_err());
    }

    #[test]
    fn num_signatures_bounds() {
        assert_eq!(num_signatures(3, Some(3), 10).unwrap(), 3);
        assert!(num_signatures(0, None, 10).is_err());
        assert!(num_signatures(11, None, 10).is_err());
        assert!(num_signatures(-1, None, 10).is_err());
        assert!(num_signatures(2, Some(3), 10).is_err());
    }

    #[test]
    fn duplicates_and_certificate_modes() {
        assert!(distinct("hashes", &[vec![1], vec![2]]).is_ok());
        assert!(distinct("hashes", &[vec![1], vec![2], vec![1]]).is_err());
        assert_eq!(certificates_wanted(None).unwrap(), 1);
        assert_eq!(certificates_wanted(Some("chain")).unwrap(), usize::MAX);
        assert!(certificates_wanted(Some("all")).is_err());
    }

    #[test]
    fn generalized_time_format() {
        let t = time::macros::datetime!(2029-11-25 12:15:41 UTC);
        assert_eq!(generalized_time(t), "20291125121541Z");
    }
}
