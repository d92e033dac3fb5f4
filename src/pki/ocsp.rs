//! OCSP (RFC 6960): the request parser, the response writer and the delegated responder.
//!
//! The responder's certificate is issued by the issuing CA (EKU id-kp-OCSPSigning only,
//! id-pkix-ocsp-nocheck) for a P-256 key in the HSM, created once across nodes at start-up
//! (under the bootstrap lock) and re-issued in its last third, at start-up or by a running
//! node's hourly check ([`super::Pki::renew_responder_if_due`]). Every response is
//! signed with that key in the HSM and carries the certificate, so a relying party that
//! trusts the CA verifies it without asking anything else.
//!
//! Invariants: a request that is not a well-formed OCSPRequest gets `malformedRequest` and
//! nothing is signed; a request none of whose certificates this CA issued gets
//! `unauthorized` (§2.3: we are not authoritative for it); a nonce is echoed unchanged.

use openssl::hash::{hash, MessageDigest};
use openssl::x509::X509;
use std::sync::Arc;
use time::OffsetDateTime;

use super::PkiError;
use crate::ca::{Ca, ISSUING_NAME};
use crate::config::PkiConfig;
use crate::db::{repo, Db};
use crate::der;
use crate::hsm::{HashAlg, Hsm, KeyAlgo, SignAlgo};

/// OCSPResponseStatus values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    Unauthorized = 6,
}

/// Most certificates asked about in one request.
pub const MAX_REQUESTS: usize = 16;
/// The largest nonce accepted (RFC 8954: 1 to 32 octets, plus the OCTET STRING header).
const MAX_NONCE: usize = 34;
const OID_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";
/// AlgorithmIdentifier ecdsa-with-SHA256, the responder key's algorithm.
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const OWN_KEY: &str = "pki-ocsp";
const OWN_CERT: &str = "ocsp";

/// The hash algorithms a CertID may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl IdHash {
    const ALL: [IdHash; 4] = [IdHash::Sha1, IdHash::Sha256, IdHash::Sha384, IdHash::Sha512];

    fn from_oid(oid: &str) -> Option<IdHash> {
        match oid {
            "1.3.14.3.2.26" => Some(IdHash::Sha1),
            "2.16.840.1.101.3.4.2.1" => Some(IdHash::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(IdHash::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(IdHash::Sha512),
            _ => None,
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            IdHash::Sha1 => MessageDigest::sha1(),
            IdHash::Sha256 => MessageDigest::sha256(),
            IdHash::Sha384 => MessageDigest::sha384(),
            IdHash::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// One certificate asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId<'a> {
    /// The CertID as sent (echoed in the answer).
    pub raw: &'a [u8],
    /// `None`: a hash algorithm we do not know (answered `unknown`).
    pub hash: Option<IdHash>,
    pub name_hash: &'a [u8],
    pub key_hash: &'a [u8],
    /// Upper-case hex of the serial, as the database stores it (leading zero bytes dropped).
    pub serial: String,
}

/// A parsed OCSPRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The requestList as sent: what a nonce-less answer is cached under.
    pub request_list: &'a [u8],
    pub ids: Vec<CertId<'a>>,
    /// The whole nonce Extension, echoed unchanged.
    pub nonce: Option<&'a [u8]>,
}

fn expect(element: &[u8], want: u8) -> Option<&[u8]> {
    (der::tag(element)? == want).then_some(element)
}

fn parse_cert_id(raw: &[u8]) -> Option<CertId<'_>> {
    let parts = der::elements(der::content(expect(raw, 0x30)?)?)?;
    let [alg, name_hash, key_hash, serial] = parts.as_slice() else {
        return None;
    };
    let alg_parts = der::elements(der::content(expect(alg, 0x30)?)?)?;
    let oid = der::oid_string(alg_parts.first()?)?;
    let serial = der::content(expect(serial, 0x02)?)?;
    if serial.is_empty() {
        return None;
    }
    let zeros = serial.iter().take_while(|b| **b == 0).count();
    let significant = serial.get(zeros..).unwrap_or_default();
    Some(CertId {
        raw,
        hash: IdHash::from_oid(&oid),
        name_hash: der::content(expect(name_hash, 0x04)?)?,
        key_hash: der::content(expect(key_hash, 0x04)?)?,
        serial: hex::encode_upper(significant),
    })
}

fn find_nonce(extensions: &[u8]) -> Option<Option<&[u8]>> {
    let list = der::content(expect(extensions, 0xa2)?)?;
    let seq = der::elements(der::content(expect(list, 0x30)?)?)?;
    for ext in seq {
        let parts = der::elements(der::content(expect(ext, 0x30)?)?)?;
        if der::oid_string(parts.first()?)?.as_str() == OID_NONCE {
            let value = der::content(expect(parts.last()?, 0x04)?)?;
            if value.is_empty() || value.len() > MAX_NONCE {
                return None;
            }
            return Some(Some(ext));
        }
    }
    Some(None)
}

/// Parses a DER OCSPRequest; `None` if it is malformed (or asks about nothing, or too much).
pub fn parse(request: &[u8]) -> Option<Request<'_>> {
    let (whole, rest) = der::split_first(request)?;
    if !rest.is_empty() {
        return None;
    }
    let outer = der::elements(der::content(expect(whole, 0x30)?)?)?;
    let tbs = expect(outer.first()?, 0x30)?;
    if outer.len() > 2 || outer.get(1).is_some_and(|sig| der::tag(sig) != Some(0xa0)) {
        return None;
    }
    let mut fields = der::elements(der::content(tbs)?)?.into_iter().peekable();
    if let Some(version) = fields.next_if(|f| der::tag(f) == Some(0xa0)) {
        // v1 (0) is the only version.
        if der::small_uint(der::content(version)?)? != 0 {
            return None;
        }
    }
    let _requestor = fields.next_if(|f| der::tag(f) == Some(0xa1));
    let request_list = expect(fields.next()?, 0x30)?;
    let nonce = match fields.next() {
        Some(extensions) => find_nonce(extensions)?,
        None => None,
    };
    if fields.next().is_some() {
        return None;
    }
    let requests = der::elements(der::content(request_list)?)?;
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return None;
    }
    let mut ids = Vec::with_capacity(requests.len());
    for single in requests {
        let parts = der::elements(der::content(expect(single, 0x30)?)?)?;
        match parts.as_slice() {
            [id] => ids.push(parse_cert_id(id)?),
            [id, ext] if der::tag(ext) == Some(0xa0) => ids.push(parse_cert_id(id)?),
            _ => return None,
        }
    }
    Some(Request {
        request_list,
        ids,
        nonce,
    })
}

/// An OCSPResponse without responseBytes (every status but successful).
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    der::tlv(0x30, &[0x0a, 0x01, status as u8])
}

/// What the responder says about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// Revoked at, with the CRLReason (6: certificateHold, a suspension).
    Revoked(OffsetDateTime, i16),
    Unknown,
}

/// The issuer's identity as CertIDs name it, precomputed for every hash we accept.
struct IssuerHashes(Vec<(IdHash, Vec<u8>, Vec<u8>)>);

impl IssuerHashes {
    fn of(issuer: &X509) -> Result<IssuerHashes, PkiError> {
        let name = issuer.subject_name().to_der()?;
        let spki = issuer.public_key()?.public_key_to_der()?;
        let key = der::spki_key_bits(&spki).ok_or(PkiError::NoKeyId)?;
        let mut all = Vec::new();
        for h in IdHash::ALL {
            all.push((
                h,
                hash(h.digest(), &name)?.to_vec(),
                hash(h.digest(), key)?.to_vec(),
            ));
        }
        Ok(IssuerHashes(all))
    }

    fn names(&self, id: &CertId<'_>) -> bool {
        self.0
            .iter()
            .any(|(h, name, key)| Some(*h) == id.hash && name == id.name_hash && key == id.key_hash)
    }
}

/// The delegated OCSP responder: its certificate, its key's id in the HSM, and the issuer it
/// answers for.
pub struct Responder {
    hsm: Hsm,
    key_id: Arc<[u8]>,
    cert: Vec<u8>,
    /// SHA-1 of the responder's public key (ResponderID byKey).
    key_hash: Vec<u8>,
    issuer: IssuerHashes,
    /// The issuer's name in `issued_certificates`.
    pub issuer_name: &'static str,
    validity: time::Duration,
    /// When the certificate enters its last third and is re-issued.
    renew_at: std::time::Instant,
}

impl Responder {
    /// Loads the responder, creating its key and certificate on first start and re-issuing
    /// the certificate in its last third or when the issuing CA changed. Callers hold the
    /// start-up lock, as for [`Ca::ensure`].
    pub async fn ensure(
        db: &Db,
        hsm: &Hsm,
        ca: &Ca,
        config: &PkiConfig,
    ) -> Result<Responder, PkiError> {
        let spki = hsm.ensure_own_key_pair(OWN_KEY, KeyAlgo::EcP256).await?;
        let stored = repo::ca::find(db, OWN_CERT)
            .await?
            .map(|der| X509::from_der(&der))
            .transpose()?;
        let renew_days = config.ocsp_responder_days / 3;
        let renew_after = openssl::asn1::Asn1Time::days_from_now(renew_days)?;
        let issuing_key = ca.issuing().public_key()?;
        let usable = match &stored {
            Some(cert) => {
                cert.public_key()?.public_key_to_der()? == spki
                    && cert.issuer_name().to_der()? == ca.issuing().subject_name().to_der()?
                    && cert.verify(&issuing_key)?
                    && cert.not_after() > renew_after
            }
            None => false,
        };
        let cert = match stored {
            Some(cert) if usable => cert.to_der()?,
            _ => {
                let der = ca
                    .issue_ocsp_responder(&spki, config.ocsp_responder_days)
                    .await?;
                let label = String::from_utf8_lossy(&hsm.own_key_id(OWN_KEY)).into_owned();
                repo::pki::store_own_certificate(db, OWN_CERT, &label, &der).await?;
                tracing::info!("OCSP responder certificate issued");
                der
            }
        };
        let key = der::spki_key_bits(&spki).ok_or(PkiError::NoKeyId)?;
        // When the certificate enters its last third, from now (a monotonic clock).
        let left =
            openssl::asn1::Asn1Time::days_from_now(0)?.diff(X509::from_der(&cert)?.not_after())?;
        let left_secs =
            i64::from(left.days) * 86_400 + i64::from(left.secs) - i64::from(renew_days) * 86_400;
        let renew_at = std::time::Instant::now()
            + std::time::Duration::from_secs(u64::try_from(left_secs).unwrap_or(0));
        Ok(Responder {
            renew_at,
            hsm: hsm.clone(),
            key_id: hsm.own_key_id(OWN_KEY).into(),
            cert,
            key_hash: hash(MessageDigest::sha1(), key)?.to_vec(),
            issuer: IssuerHashes::of(ca.issuing())?,
            issuer_name: ISSUING_NAME,
            validity: time::Duration::seconds(
                i64::try_from(config.ocsp_validity_secs).unwrap_or(i64::MAX),
            ),
        })
    }

    /// The responder's certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.cert
    }

    /// Whether the certificate is in its last third and must be re-issued.
    pub fn renewal_due(&self) -> bool {
        std::time::Instant::now() >= self.renew_at
    }

    /// Whether `id` names a certificate of the issuer this responder answers for.
    pub fn serves(&self, id: &CertId<'_>) -> bool {
        self.issuer.names(id)
    }

    /// A signed successful OCSPResponse for `ids` with their `statuses`, at `now`.
    pub async fn sign(
        &self,
        request: &Request<'_>,
        statuses: &[CertStatus],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let tbs = response_data(&self.key_hash, request, statuses, now, now + self.validity);
        let digest = hash(MessageDigest::sha256(), &tbs)?.to_vec();
        let signature = self
            .hsm
            .sign_batch(
                self.key_id.clone(),
                SignAlgo::Ecdsa(HashAlg::Sha256),
                Arc::new(vec![digest]),
            )
            .await?
            .pop()
            .ok_or(PkiError::NoKeyId)?;
        let basic = der::tlv(
            0x30,
            &[
                tbs,
                ECDSA_SHA256.to_vec(),
                der::tlv(0x03, &[&[0u8][..], &signature].concat()),
                der::tlv(0xa0, &der::tlv(0x30, &self.cert)),
            ]
            .concat(),
        );
        let bytes = der::tlv(
            0x30,
            &[
                der::oid(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 1]),
                der::tlv(0x04, &basic),
            ]
            .concat(),
        );
        Ok(der::tlv(
            0x30,
            &[vec![0x0a, 0x01, 0x00], der::tlv(0xa0, &bytes)].concat(),
        ))
    }
}

/// ResponseData (v1, ResponderID byKey).
fn response_data(
    key_hash: &[u8],
    request: &Request<'_>,
    statuses: &[CertStatus],
    now: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Vec<u8> {
    let mut singles = Vec::new();
    for (id, status) in request.ids.iter().zip(statuses) {
        let status = match status {
            CertStatus::Good => vec![0x80, 0x00],
            CertStatus::Unknown => vec![0x82, 0x00],
            CertStatus::Revoked(at, reason) => {
                let mut info = der::generalized_time(*at);
                if *reason != 0 {
                    let code = u8::try_from(*reason).unwrap_or(0);
                    info.extend(der::tlv(0xa0, &[0x0a, 0x01, code]));
                }
                der::tlv(0xa1, &info)
            }
        };
        singles.extend(der::tlv(
            0x30,
            &[
                id.raw.to_vec(),
                status,
                der::generalized_time(now),
                der::tlv(0xa0, &der::generalized_time(next_update)),
            ]
            .concat(),
        ));
    }
    let mut body = [
        der::tlv(0xa2, &der::tlv(0x04, key_hash)),
        der::generalized_time(now),
        der::tlv(0x30, &singles),
    ]
    .concat();
    if let Some(nonce) = request.nonce {
        body.extend(der::tlv(0xa1, &der::tlv(0x30, nonce)));
    }
    der::tlv(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_id(serial: &[u8]) -> Vec<u8> {
        der::tlv(
            0x30,
            &[
                der::tlv(
                    0x30,
                    &[der::oid(&[1, 3, 14, 3, 2, 26]), vec![0x05, 0x00]].concat(),
                ),
                der::tlv(0x04, &[1; 20]),
                der::tlv(0x04, &[2; 20]),
                der::tlv(0x02, serial),
            ]
            .concat(),
        )
    }

    fn request(ids: &[Vec<u8>], extensions: Option<Vec<u8>>) -> Vec<u8> {
        let list: Vec<u8> = ids.iter().flat_map(|id| der::tlv(0x30, id)).collect();
        let mut tbs = der::tlv(0x30, &list);
        if let Some(ext) = extensions {
            tbs.extend(der::tlv(0xa2, &der::tlv(0x30, &ext)));
        }
        der::tlv(0x30, &der::tlv(0x30, &tbs))
    }

    #[test]
    fn requests_parse_with_serial_and_nonce() {
        let nonce = der::extension(
            &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2],
            false,
            &der::tlv(0x04, &[7; 16]),
        );
        let req = request(&[cert_id(&[0x00, 0x9a, 0x01])], Some(nonce.clone()));
        let parsed = parse(&req).unwrap();
        assert_eq!(parsed.ids.len(), 1);
        assert_eq!(parsed.ids[0].serial, "9A01");
        assert_eq!(parsed.ids[0].hash, Some(IdHash::Sha1));
        assert_eq!(parsed.ids[0].name_hash, &[1; 20]);
        assert_eq!(parsed.nonce, Some(&nonce[..]));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let good = request(&[cert_id(&[0x01])], None);
        assert!(parse(&good).is_some());
        assert!(parse(&good[..good.len() - 1]).is_none(), "truncated");
        assert!(
            parse(&[good.clone(), vec![0]].concat()).is_none(),
            "trailing bytes"
        );
        assert!(parse(b"not der at all").is_none());
        assert!(parse(&request(&[], None)).is_none(), "asks about nothing");
        let many: Vec<Vec<u8>> = (0..=MAX_REQUESTS as u8)
            .map(|i| cert_id(&[i + 1]))
            .collect();
        assert!(parse(&request(&many, None)).is_none(), "too many");
        let long_nonce = der::extension(
            &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2],
            false,
            &der::tlv(0x04, &[7; 64]),
        );
        assert!(parse(&request(&[cert_id(&[1])], Some(long_nonce))).is_none());
        assert!(
            parse(&request(&[cert_id(&[])], None)).is_none(),
            "empty serial"
        );
    }

    #[test]
    fn error_responses_carry_only_their_status() {
        assert_eq!(
            error_response(ResponseStatus::MalformedRequest),
            [0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        assert_eq!(
            error_response(ResponseStatus::Unauthorized),
            [0x30, 0x03, 0x0a, 0x01, 0x06]
        );
    }
}
