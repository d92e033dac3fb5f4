//! The RFC 3161 structures of the TSA, in DER: reading a `TimeStampReq`, writing `TSTInfo`,
//! the CMS `SignedData` around it (RFC 5652, with the RFC 5816 `signingCertificateV2`
//! attribute) and the `TimeStampResp`.
//!
//! Invariant: a query is read strictly (one SEQUENCE and nothing after it, fields in their
//! order, an imprint of exactly its hash's length); whatever does not read is refused with the
//! `PKIFailureInfo` that names why, never with a token.

use time::OffsetDateTime;

use crate::der::{self, tlv};
use crate::hsm::HashAlg;

const OID_SHA256: [u64; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 1];
const OID_ECDSA_SHA256: [u64; 7] = [1, 2, 840, 10045, 4, 3, 2];
const OID_SIGNED_DATA: [u64; 7] = [1, 2, 840, 113549, 1, 7, 2];
const OID_TST_INFO: [u64; 9] = [1, 2, 840, 113549, 1, 9, 16, 1, 4];
const OID_CONTENT_TYPE: [u64; 7] = [1, 2, 840, 113549, 1, 9, 3];
const OID_MESSAGE_DIGEST: [u64; 7] = [1, 2, 840, 113549, 1, 9, 4];
const OID_SIGNING_TIME: [u64; 7] = [1, 2, 840, 113549, 1, 9, 5];
const OID_SIGNING_CERTIFICATE_V2: [u64; 9] = [1, 2, 840, 113549, 1, 9, 16, 2, 47];

/// Longest nonce accepted (bytes of its INTEGER content): far above the 64 to 160 bits clients
/// send, small enough that a nonce cannot inflate a token.
const MAX_NONCE: usize = 64;

/// Why a query is refused: the bits of `PKIFailureInfo` (RFC 3161 §2.4.2) the TSA uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    /// Unrecognized or unsupported hash algorithm.
    BadAlg = 0,
    /// Transaction not permitted or supported (a version other than v1, not a query).
    BadRequest = 2,
    /// The data submitted has the wrong format (not DER, wrong imprint length).
    BadDataFormat = 5,
    /// The requested TSA policy is not ours.
    UnacceptedPolicy = 15,
    /// A requested extension is not supported.
    UnacceptedExtension = 16,
    /// The TSA could not sign (the HSM is busy or gone).
    SystemFailure = 25,
}

impl FailInfo {
    /// DER of the `PKIFailureInfo` BIT STRING with this one bit set (trailing zero bits
    /// removed, as DER wants for a named bit list).
    fn bit_string(self) -> Vec<u8> {
        let bit = self as usize;
        let mut bytes = vec![0u8; bit / 8 + 1];
        if let Some(last) = bytes.last_mut() {
            *last = 0x80 >> (bit % 8);
        }
        let unused = 7 - (bit % 8) as u8;
        tlv(0x03, &[&[unused][..], &bytes].concat())
    }
}

/// A query that reads: what the token must repeat of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The `MessageImprint` element as sent (the token repeats it byte for byte).
    pub imprint: Vec<u8>,
    pub hash: HashAlg,
    /// The requested policy, dotted.
    pub policy: Option<String>,
    /// The nonce INTEGER element as sent.
    pub nonce: Option<Vec<u8>>,
    pub cert_req: bool,
}

type Refusal = (FailInfo, &'static str);

/// Reads a DER `TimeStampReq`.
pub fn parse_query(input: &[u8]) -> Result<Query, Refusal> {
    let malformed = (
        FailInfo::BadDataFormat,
        "the query is not a DER TimeStampReq",
    );
    let (whole, rest) = der::split_first(input).ok_or(malformed)?;
    if !rest.is_empty() || der::tag(whole) != Some(0x30) {
        return Err(malformed);
    }
    let fields = der::content(whole)
        .and_then(der::elements)
        .ok_or(malformed)?;
    let mut fields = fields.into_iter().peekable();
    let version = fields.next().ok_or(malformed)?;
    match der::small_uint(version) {
        Some(1) => {}
        Some(_) => return Err((FailInfo::BadRequest, "only TimeStampReq v1 is supported")),
        None => return Err(malformed),
    }
    let imprint = fields.next().ok_or(malformed)?;
    let hash = parse_imprint(imprint)?;
    let mut query = Query {
        imprint: imprint.to_vec(),
        hash,
        policy: None,
        nonce: None,
        cert_req: false,
    };
    if let Some(policy) = fields.next_if(|f| der::tag(f) == Some(0x06)) {
        query.policy = Some(der::oid_string(policy).ok_or(malformed)?);
    }
    if let Some(nonce) = fields.next_if(|f| der::tag(f) == Some(0x02)) {
        let content = der::content(nonce).ok_or(malformed)?;
        if content.is_empty() || content.len() > MAX_NONCE {
            return Err((FailInfo::BadDataFormat, "the nonce is empty or too long"));
        }
        query.nonce = Some(nonce.to_vec());
    }
    if let Some(cert_req) = fields.next_if(|f| der::tag(f) == Some(0x01)) {
        query.cert_req = match der::content(cert_req) {
            Some([0x00]) => false,
            Some([_]) => true,
            _ => return Err(malformed),
        };
    }
    if fields.next_if(|f| der::tag(f) == Some(0xa0)).is_some() {
        return Err((
            FailInfo::UnacceptedExtension,
            "this TSA supports no request extension",
        ));
    }
    if fields.next().is_some() {
        return Err(malformed);
    }
    Ok(query)
}

/// `MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET
/// STRING }`: the hash must be SHA-256/384/512 and the imprint exactly its length.
fn parse_imprint(imprint: &[u8]) -> Result<HashAlg, Refusal> {
    let malformed = (FailInfo::BadDataFormat, "the messageImprint does not read");
    if der::tag(imprint) != Some(0x30) {
        return Err(malformed);
    }
    let parts = der::content(imprint)
        .and_then(der::elements)
        .ok_or(malformed)?;
    let [algorithm, hashed] = parts.as_slice() else {
        return Err(malformed);
    };
    if der::tag(algorithm) != Some(0x30) || der::tag(hashed) != Some(0x04) {
        return Err(malformed);
    }
    let algorithm = der::content(algorithm)
        .and_then(der::elements)
        .ok_or(malformed)?;
    let (oid, params) = match algorithm.as_slice() {
        [oid] => (*oid, None),
        [oid, params] => (*oid, Some(*params)),
        _ => return Err(malformed),
    };
    let oid = der::oid_string(oid).ok_or(malformed)?;
    let hash = HashAlg::from_oid(&oid).ok_or((
        FailInfo::BadAlg,
        "unsupported hash algorithm: SHA-256, SHA-384 or SHA-512",
    ))?;
    // The SHA-2 AlgorithmIdentifier has absent or NULL parameters (RFC 5754 §2).
    if params.is_some_and(|p| p != [0x05, 0x00]) {
        return Err((FailInfo::BadAlg, "unexpected hash algorithm parameters"));
    }
    let digest = der::content(hashed).ok_or(malformed)?;
    if digest.len() != hash.digest_len() {
        return Err((
            FailInfo::BadDataFormat,
            "the hashedMessage length does not match its hash algorithm",
        ));
    }
    Ok(hash)
}

/// `MessageImprint` of `digest` (CSC `signatures/timestamp`); `digest` has `hash`'s length.
pub fn imprint(hash: HashAlg, digest: &[u8]) -> Vec<u8> {
    let oid = dotted_der(hash.oid()).unwrap_or_default();
    tlv(0x30, &[tlv(0x30, &oid), tlv(0x04, digest)].concat())
}

/// DER of a dotted OID string; `None` unless it is one (two arcs or more, first 0 to 2).
pub fn dotted_der(dotted: &str) -> Option<Vec<u8>> {
    let arcs = dotted
        .split('.')
        .map(|a| {
            (!a.is_empty() && a.len() <= 19 && a.bytes().all(|b| b.is_ascii_digit()))
                .then(|| a.parse::<u64>().ok())
                .flatten()
        })
        .collect::<Option<Vec<u64>>>()?;
    match arcs.as_slice() {
        [first, second, ..] if *first < 2 && *second < 40 => Some(der::oid(&arcs)),
        [2, second, ..] if *second < u64::MAX / 2 - 80 => Some(der::oid(&arcs)),
        _ => None,
    }
}

/// A non-negative INTEGER element from big-endian magnitude bytes.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let significant = magnitude.get(skip..).unwrap_or_default();
    let mut content = Vec::with_capacity(significant.len() + 1);
    if significant.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(significant);
    tlv(0x02, &content)
}

fn two(n: u8) -> String {
    format!("{n:02}")
}

/// GeneralizedTime with milliseconds, trailing zeros of the fraction dropped (RFC 3161 §2.4.2).
fn generalized_time(t: OffsetDateTime) -> Vec<u8> {
    let mut text = format!(
        "{:04}{}{}{}{}{}",
        t.year(),
        two(u8::from(t.month())),
        two(t.day()),
        two(t.hour()),
        two(t.minute()),
        two(t.second())
    );
    let millis = t.millisecond();
    if millis > 0 {
        let fraction = format!("{millis:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    tlv(0x18, text.as_bytes())
}

/// signingTime: UTCTime up to 2049, GeneralizedTime after (RFC 5652 §11.3), whole seconds.
fn signing_time(t: OffsetDateTime) -> Vec<u8> {
    let seconds = t.replace_millisecond(0).unwrap_or(t);
    if (1950..2050).contains(&t.year()) {
        let text = format!(
            "{}{}{}{}{}{}Z",
            two(t.year().rem_euclid(100) as u8),
            two(u8::from(t.month())),
            two(t.day()),
            two(t.hour()),
            two(t.minute()),
            two(t.second())
        );
        tlv(0x17, text.as_bytes())
    } else {
        generalized_time(seconds)
    }
}

/// `Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER (1..999) OPTIONAL }`.
fn accuracy(ms: u32) -> Vec<u8> {
    let (seconds, millis) = (ms / 1000, ms % 1000);
    let mut content = Vec::new();
    if seconds > 0 {
        content.extend(unsigned_integer(&seconds.to_be_bytes()));
    }
    if millis > 0 {
        let mut millis = unsigned_integer(&millis.to_be_bytes());
        if let Some(tag) = millis.first_mut() {
            *tag = 0x80;
        }
        content.extend(millis);
    }
    tlv(0x30, &content)
}

/// What a token states besides the query's imprint and nonce.
pub struct TstFields<'a> {
    /// DER of the policy OID.
    pub policy: &'a [u8],
    /// Magnitude bytes of the serial number.
    pub serial: &'a [u8],
    pub gen_time: OffsetDateTime,
    pub accuracy_ms: u32,
    /// DER of the TSA's `Name` (its certificate's subject).
    pub tsa_name: &'a [u8],
}

/// `TSTInfo` DER.
pub fn tst_info(query: &Query, fields: &TstFields<'_>) -> Vec<u8> {
    let mut content = Vec::with_capacity(256);
    content.extend(tlv(0x02, &[1]));
    content.extend_from_slice(fields.policy);
    content.extend_from_slice(&query.imprint);
    content.extend(unsigned_integer(fields.serial));
    content.extend(generalized_time(fields.gen_time));
    content.extend(accuracy(fields.accuracy_ms));
    if let Some(nonce) = &query.nonce {
        content.extend_from_slice(nonce);
    }
    // tsa [0] GeneralName: directoryName [4] (EXPLICIT: Name is a CHOICE).
    content.extend(tlv(0xa0, &tlv(0xa4, fields.tsa_name)));
    tlv(0x30, &content)
}

fn attribute(oid: &[u64], value: Vec<u8>) -> Vec<u8> {
    tlv(0x30, &[der::oid(oid), tlv(0x31, &value)].concat())
}

/// The `signingCertificateV2` attribute naming the TSA certificate: ESSCertIDv2 with the
/// default hash (SHA-256, so its AlgorithmIdentifier is left out) and the issuer and serial.
pub fn signing_certificate_v2(cert_sha256: &[u8], issuer: &[u8], serial: &[u8]) -> Vec<u8> {
    let issuer_serial = tlv(
        0x30,
        &[tlv(0x30, &tlv(0xa4, issuer)), serial.to_vec()].concat(),
    );
    let cert_id = tlv(0x30, &[tlv(0x04, cert_sha256), issuer_serial].concat());
    let signing_certificate = tlv(0x30, &tlv(0x30, &cert_id));
    attribute(&OID_SIGNING_CERTIFICATE_V2, signing_certificate)
}

/// The signed attributes' content (the attributes, sorted as a DER SET OF wants).
pub fn signed_attributes(
    tst_info_sha256: &[u8],
    at: OffsetDateTime,
    signing_certificate: &[u8],
) -> Vec<u8> {
    let mut attributes = [
        attribute(&OID_CONTENT_TYPE, der::oid(&OID_TST_INFO)),
        attribute(&OID_SIGNING_TIME, signing_time(at)),
        attribute(&OID_MESSAGE_DIGEST, tlv(0x04, tst_info_sha256)),
        signing_certificate.to_vec(),
    ];
    attributes.sort();
    attributes.concat()
}

/// The `SET OF Attribute` whose DER the signature covers (RFC 5652 §5.4).
pub fn signed_attributes_to_sign(attributes: &[u8]) -> Vec<u8> {
    tlv(0x31, attributes)
}

/// The pieces of a token fixed by the TSA certificate.
pub struct Signer<'a> {
    /// `IssuerAndSerialNumber` DER.
    pub sid: &'a [u8],
    /// The certificates (DER, concatenated) sent when the query asks for them.
    pub certificates: &'a [u8],
}

/// The `TimeStampToken`: ContentInfo { signedData } around `tst_info`.
pub fn token(
    tst_info: &[u8],
    attributes: &[u8],
    signature: &[u8],
    signer: &Signer<'_>,
    with_certificates: bool,
) -> Vec<u8> {
    let sha256 = tlv(0x30, &der::oid(&OID_SHA256));
    let signer_info = tlv(
        0x30,
        &[
            tlv(0x02, &[1]),
            signer.sid.to_vec(),
            sha256.clone(),
            tlv(0xa0, attributes),
            tlv(0x30, &der::oid(&OID_ECDSA_SHA256)),
            tlv(0x04, signature),
        ]
        .concat(),
    );
    let encapsulated = tlv(
        0x30,
        &[der::oid(&OID_TST_INFO), tlv(0xa0, &tlv(0x04, tst_info))].concat(),
    );
    let mut signed_data = Vec::with_capacity(tst_info.len() + signer.certificates.len() + 512);
    signed_data.extend(tlv(0x02, &[3]));
    signed_data.extend(tlv(0x31, &sha256));
    signed_data.extend(encapsulated);
    if with_certificates {
        signed_data.extend(tlv(0xa0, signer.certificates));
    }
    signed_data.extend(tlv(0x31, &signer_info));
    tlv(
        0x30,
        &[
            der::oid(&OID_SIGNED_DATA),
            tlv(0xa0, &tlv(0x30, &signed_data)),
        ]
        .concat(),
    )
}

/// `TimeStampResp` granting `token`.
pub fn granted(token: &[u8]) -> Vec<u8> {
    let status = tlv(0x30, &tlv(0x02, &[0]));
    tlv(0x30, &[status, token.to_vec()].concat())
}

/// `TimeStampResp` refusing, with the reason as text and as a failure bit.
pub fn rejection(failure: FailInfo, text: &str) -> Vec<u8> {
    let status = tlv(
        0x30,
        &[
            tlv(0x02, &[2]),
            tlv(0x30, &tlv(0x0c, text.as_bytes())),
            failure.bit_string(),
        ]
        .concat(),
    );
    tlv(0x30, &status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(fields: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &fields.concat())
    }

    fn v1() -> Vec<u8> {
        tlv(0x02, &[1])
    }

    #[test]
    fn failure_bits_encode_as_der_named_bits() {
        assert_eq!(FailInfo::BadAlg.bit_string(), [0x03, 0x02, 0x07, 0x80]);
        assert_eq!(FailInfo::BadRequest.bit_string(), [0x03, 0x02, 0x05, 0x20]);
        assert_eq!(
            FailInfo::BadDataFormat.bit_string(),
            [0x03, 0x02, 0x02, 0x04]
        );
        assert_eq!(
            FailInfo::UnacceptedPolicy.bit_string(),
            [0x03, 0x03, 0x00, 0x00, 0x01]
        );
        assert_eq!(
            FailInfo::SystemFailure.bit_string(),
            [0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40]
        );
    }

    #[test]
    fn a_full_query_reads() {
        let imprint = imprint(HashAlg::Sha384, &[7; 48]);
        let q = query(&[
            v1(),
            imprint.clone(),
            dotted_der("1.2.3.4").unwrap(),
            tlv(0x02, &[0x00, 0xff]),
            tlv(0x01, &[0xff]),
        ]);
        let parsed = parse_query(&q).unwrap();
        assert_eq!(parsed.imprint, imprint);
        assert_eq!(parsed.hash, HashAlg::Sha384);
        assert_eq!(parsed.policy.as_deref(), Some("1.2.3.4"));
        assert_eq!(parsed.nonce, Some(tlv(0x02, &[0x00, 0xff])));
        assert!(parsed.cert_req);
    }

    #[test]
    fn bad_queries_get_their_failure() {
        let good = imprint(HashAlg::Sha256, &[1; 32]);
        let refusal = |q: &[u8]| parse_query(q).unwrap_err().0;
        assert_eq!(refusal(b"not der"), FailInfo::BadDataFormat);
        assert_eq!(
            refusal(&[query(&[v1(), good.clone()]), vec![0]].concat()),
            FailInfo::BadDataFormat,
            "trailing bytes"
        );
        assert_eq!(
            refusal(&query(&[tlv(0x02, &[2]), good.clone()])),
            FailInfo::BadRequest
        );
        assert_eq!(
            refusal(&query(&[v1(), imprint(HashAlg::Sha256, &[1; 31])])),
            FailInfo::BadDataFormat
        );
        let md5 = tlv(
            0x30,
            &[
                tlv(0x30, &dotted_der("1.2.840.113549.2.5").unwrap()),
                tlv(0x04, &[0; 16]),
            ]
            .concat(),
        );
        assert_eq!(refusal(&query(&[v1(), md5])), FailInfo::BadAlg);
        assert_eq!(
            refusal(&query(&[v1(), good.clone(), tlv(0xa0, &[])])),
            FailInfo::UnacceptedExtension
        );
        assert_eq!(
            refusal(&query(&[v1(), good.clone(), tlv(0x02, &[0; 65])])),
            FailInfo::BadDataFormat,
            "oversized nonce"
        );
        assert_eq!(
            refusal(&query(&[v1(), good, tlv(0x01, &[0xff]), tlv(0x02, &[1])])),
            FailInfo::BadDataFormat,
            "fields out of order"
        );
    }

    #[test]
    fn integers_and_oids_encode_canonically() {
        assert_eq!(unsigned_integer(&[0, 0, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(unsigned_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(
            dotted_der("1.2.840.10045.4.3.2").unwrap(),
            der::oid(&OID_ECDSA_SHA256)
        );
        for bad in ["", "1", "1..2", "3.1", "1.40", "a.b", "1.2.-3"] {
            assert!(dotted_der(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn times_drop_trailing_zeros() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(generalized_time(t), tlv(0x18, b"20270115080000Z"));
        let t = t.replace_millisecond(120).unwrap();
        assert_eq!(generalized_time(t), tlv(0x18, b"20270115080000.12Z"));
        assert_eq!(signing_time(t), tlv(0x17, b"270115080000Z"));
        assert_eq!(
            accuracy(1500),
            [0x30, 0x07, 0x02, 0x01, 0x01, 0x80, 0x02, 0x01, 0xf4]
        );
        assert_eq!(accuracy(1000), [0x30, 0x03, 0x02, 0x01, 0x01]);
    }
}
