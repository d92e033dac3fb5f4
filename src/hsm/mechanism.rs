//! THE table from CSC (signAlgo, hashAlgorithmOID, signAlgoParams) to a PKCS#11 mechanism and
//! the input it signs. Every supported pair is here and unit-tested; anything else is refused.

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};

use super::KeyAlgo;
use crate::der;

/// Hash algorithms a client may have hashed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

pub const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
pub const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
pub const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";
pub const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
pub const OID_SHA256_RSA: &str = "1.2.840.113549.1.1.11";
pub const OID_SHA384_RSA: &str = "1.2.840.113549.1.1.12";
pub const OID_SHA512_RSA: &str = "1.2.840.113549.1.1.13";
pub const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
pub const OID_MGF1: &str = "1.2.840.113549.1.1.8";
pub const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
pub const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
pub const OID_ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
pub const OID_P256: &str = "1.2.840.10045.3.1.7";
pub const OID_P384: &str = "1.3.132.0.34";

impl HashAlg {
    pub const ALL: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

    pub fn oid(self) -> &'static str {
        match self {
            HashAlg::Sha256 => OID_SHA256,
            HashAlg::Sha384 => OID_SHA384,
            HashAlg::Sha512 => OID_SHA512,
        }
    }

    pub fn from_oid(oid: &str) -> Option<HashAlg> {
        HashAlg::ALL.into_iter().find(|h| h.oid() == oid)
    }

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The hash a digest of `len` bytes must be, if only one fits.
    pub fn from_len(len: usize) -> Option<HashAlg> {
        HashAlg::ALL.into_iter().find(|h| h.digest_len() == len)
    }

    /// DER of `DigestInfo { AlgorithmIdentifier(hash, NULL), OCTET STRING }` up to the digest.
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    fn mechanism_type(self) -> MechanismType {
        match self {
            HashAlg::Sha256 => MechanismType::SHA256,
            HashAlg::Sha384 => MechanismType::SHA384,
            HashAlg::Sha512 => MechanismType::SHA512,
        }
    }

    fn mgf1(self) -> PkcsMgfType {
        match self {
            HashAlg::Sha256 => PkcsMgfType::MGF1_SHA256,
            HashAlg::Sha384 => PkcsMgfType::MGF1_SHA384,
            HashAlg::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }
}

/// The kind of key a signature algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Ec,
    Rsa,
}

impl KeyFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFamily::Ec => "ec",
            KeyFamily::Rsa => "rsa",
        }
    }

    /// Every mechanism a key of this family may be used with (its `CKA_ALLOWED_MECHANISMS`):
    /// the mechanisms of every [`SignAlgo`] that fits it, and nothing else.
    pub fn allowed_mechanisms(self) -> &'static [MechanismType] {
        match self {
            KeyFamily::Ec => &[MechanismType::ECDSA],
            KeyFamily::Rsa => &[MechanismType::RSA_PKCS, MechanismType::RSA_PKCS_PSS],
        }
    }
}

impl KeyAlgo {
    pub fn family(self) -> KeyFamily {
        if self.is_ec() {
            KeyFamily::Ec
        } else {
            KeyFamily::Rsa
        }
    }

    /// The curve OID, for EC keys (credentials/info `key/curve`).
    pub fn curve_oid(self) -> Option<&'static str> {
        match self {
            KeyAlgo::EcP256 => Some(OID_P256),
            KeyAlgo::EcP384 => Some(OID_P384),
            KeyAlgo::Rsa2048 | KeyAlgo::Rsa3072 => None,
        }
    }

    /// Every signAlgo OID this key can sign with (credentials/info `key/algo`).
    pub fn sign_algo_oids(self) -> &'static [&'static str] {
        match self.family() {
            KeyFamily::Ec => &[
                OID_ECDSA_SHA256,
                OID_ECDSA_SHA384,
                OID_ECDSA_SHA512,
                OID_EC_PUBLIC_KEY,
            ],
            KeyFamily::Rsa => &[
                OID_SHA256_RSA,
                OID_SHA384_RSA,
                OID_SHA512_RSA,
                OID_RSA_ENCRYPTION,
                OID_RSASSA_PSS,
            ],
        }
    }
}

/// Every signAlgo OID the gateway supports (info `signAlgorithms/algos`).
pub const SIGN_ALGO_OIDS: [&str; 9] = [
    OID_SHA256_RSA,
    OID_SHA384_RSA,
    OID_SHA512_RSA,
    OID_RSA_ENCRYPTION,
    OID_RSASSA_PSS,
    OID_ECDSA_SHA256,
    OID_ECDSA_SHA384,
    OID_ECDSA_SHA512,
    OID_EC_PUBLIC_KEY,
];

/// A resolved signature algorithm: what to sign, with which mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignAlgo {
    /// RSASSA-PKCS1-v1_5: `CKM_RSA_PKCS` over DigestInfo(hash).
    RsaPkcs1(HashAlg),
    /// RSASSA-PSS: `CKM_RSA_PKCS_PSS` over the hash, MGF1 with the same hash.
    RsaPss { hash: HashAlg, salt_len: u32 },
    /// ECDSA: `CKM_ECDSA` over the hash; r||s re-encoded as DER.
    Ecdsa(HashAlg),
}

/// Why a (signAlgo, hash, params) triple is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MechanismError {
    #[error("unsupported signAlgo {0}")]
    UnknownSignAlgo(String),
    #[error("unsupported hashAlgorithmOID {0}")]
    UnknownHash(String),
    #[error("hashAlgorithmOID is required with signAlgo {0}")]
    HashRequired(String),
    #[error("hashAlgorithmOID {hash} contradicts signAlgo {sign_algo}")]
    HashMismatch { sign_algo: String, hash: String },
    #[error("signAlgoParams: {0}")]
    BadParams(&'static str),
}

impl SignAlgo {
    /// Resolves the CSC parameters (`hash_oid` and `params` as sent, if sent).
    pub fn resolve(
        sign_algo: &str,
        hash_oid: Option<&str>,
        params: Option<&[u8]>,
    ) -> Result<SignAlgo, MechanismError> {
        let given = hash_oid
            .map(|oid| {
                HashAlg::from_oid(oid).ok_or_else(|| MechanismError::UnknownHash(oid.into()))
            })
            .transpose()?;
        let named = |hash: HashAlg| match given {
            Some(g) if g != hash => Err(MechanismError::HashMismatch {
                sign_algo: sign_algo.into(),
                hash: g.oid().into(),
            }),
            _ => Ok(hash),
        };
        let required = || given.ok_or_else(|| MechanismError::HashRequired(sign_algo.into()));
        match sign_algo {
            OID_SHA256_RSA => Ok(SignAlgo::RsaPkcs1(named(HashAlg::Sha256)?)),
            OID_SHA384_RSA => Ok(SignAlgo::RsaPkcs1(named(HashAlg::Sha384)?)),
            OID_SHA512_RSA => Ok(SignAlgo::RsaPkcs1(named(HashAlg::Sha512)?)),
            OID_RSA_ENCRYPTION => Ok(SignAlgo::RsaPkcs1(required()?)),
            OID_ECDSA_SHA256 => Ok(SignAlgo::Ecdsa(named(HashAlg::Sha256)?)),
            OID_ECDSA_SHA384 => Ok(SignAlgo::Ecdsa(named(HashAlg::Sha384)?)),
            OID_ECDSA_SHA512 => Ok(SignAlgo::Ecdsa(named(HashAlg::Sha512)?)),
            OID_EC_PUBLIC_KEY => Ok(SignAlgo::Ecdsa(required()?)),
            OID_RSASSA_PSS => {
                let params = params.ok_or(MechanismError::BadParams(
                    "RSASSA-PSS needs its parameters (hash, MGF1, salt length)",
                ))?;
                let (hash, salt_len) = parse_pss_params(params)?;
                Ok(SignAlgo::RsaPss {
                    hash: named(hash)?,
                    salt_len,
                })
            }
            other => Err(MechanismError::UnknownSignAlgo(other.into())),
        }
    }

    /// True if `key` can produce this signature (same family; a PSS salt that fits the modulus).
    pub fn fits(self, key: KeyAlgo) -> bool {
        match self {
            SignAlgo::RsaPss { hash, salt_len } => {
                key.family() == KeyFamily::Rsa
                    && salt_len as usize + hash.digest_len() + 2
                        <= (key.bits() as usize).div_ceil(8)
            }
            other => other.family() == key.family(),
        }
    }

    /// A metric label: `ecdsa_sha256`, `rsa_pkcs1_sha384`, `rsa_pss_sha512`, ...
    pub fn name(self) -> &'static str {
        use HashAlg::{Sha256, Sha384, Sha512};
        match self {
            SignAlgo::Ecdsa(Sha256) => "ecdsa_sha256",
            SignAlgo::Ecdsa(Sha384) => "ecdsa_sha384",
            SignAlgo::Ecdsa(Sha512) => "ecdsa_sha512",
            SignAlgo::RsaPkcs1(Sha256) => "rsa_pkcs1_sha256",
            SignAlgo::RsaPkcs1(Sha384) => "rsa_pkcs1_sha384",
            SignAlgo::RsaPkcs1(Sha512) => "rsa_pkcs1_sha512",
            SignAlgo::RsaPss { hash: Sha256, .. } => "rsa_pss_sha256",
            SignAlgo::RsaPss { hash: Sha384, .. } => "rsa_pss_sha384",
            SignAlgo::RsaPss { hash: Sha512, .. } => "rsa_pss_sha512",
        }
    }

    pub fn hash(self) -> HashAlg {
        match self {
            SignAlgo::RsaPkcs1(h) | SignAlgo::Ecdsa(h) | SignAlgo::RsaPss { hash: h, .. } => h,
        }
    }

    pub fn family(self) -> KeyFamily {
        match self {
            SignAlgo::Ecdsa(_) => KeyFamily::Ec,
            SignAlgo::RsaPkcs1(_) | SignAlgo::RsaPss { .. } => KeyFamily::Rsa,
        }
    }

    /// The PKCS#11 mechanism.
    pub(super) fn mechanism(self) -> Mechanism<'static> {
        match self {
            SignAlgo::RsaPkcs1(_) => Mechanism::RsaPkcs,
            SignAlgo::Ecdsa(_) => Mechanism::Ecdsa,
            SignAlgo::RsaPss { hash, salt_len } => Mechanism::RsaPkcsPss(PkcsPssParams {
                hash_alg: hash.mechanism_type(),
                mgf: hash.mgf1(),
                s_len: u64::from(salt_len).into(),
            }),
        }
    }

    /// Writes the mechanism input for `digest` into `out` (cleared first).
    pub(super) fn input_into(self, digest: &[u8], out: &mut Vec<u8>) {
        out.clear();
        if let SignAlgo::RsaPkcs1(hash) = self {
            out.extend_from_slice(hash.digest_info_prefix());
        }
        out.extend_from_slice(digest);
    }
}

/// `AlgorithmIdentifier` → (OID, parameters element if any).
fn algorithm_identifier(element: &[u8]) -> Option<(String, Option<&[u8]>)> {
    if der::tag(element)? != 0x30 {
        return None;
    }
    let parts = der::elements(der::content(element)?)?;
    let oid = der::oid_string(parts.first()?)?;
    Some((oid, parts.get(1).copied()))
}

/// RSASSA-PSS-params (RFC 4055): hash and MGF1 hash must be the same SHA-2, trailer 1.
fn parse_pss_params(params: &[u8]) -> Result<(HashAlg, u32), MechanismError> {
    let bad = MechanismError::BadParams;
    if der::tag(params) != Some(0x30) {
        return Err(bad("not a DER SEQUENCE"));
    }
    let body = der::content(params).ok_or(bad("malformed DER"))?;
    let fields = der::elements(body).ok_or(bad("malformed DER"))?;
    let (mut hash, mut mgf_hash, mut salt) = (None, None, 20u64);
    for field in fields {
        let inner = der::content(field).ok_or(bad("malformed DER"))?;
        match der::tag(field) {
            Some(0xa0) => {
                let (oid, _) = algorithm_identifier(inner).ok_or(bad("malformed hashAlgorithm"))?;
                hash = Some(HashAlg::from_oid(&oid).ok_or(bad("hash must be SHA-256/384/512"))?);
            }
            Some(0xa1) => {
                let (oid, inner_params) =
                    algorithm_identifier(inner).ok_or(bad("malformed maskGenAlgorithm"))?;
                if oid != OID_MGF1 {
                    return Err(bad("mask generation must be MGF1"));
                }
                let (h, _) = inner_params
                    .and_then(algorithm_identifier)
                    .ok_or(bad("malformed MGF1 hash"))?;
                mgf_hash = Some(HashAlg::from_oid(&h).ok_or(bad("MGF1 hash must be SHA-2"))?);
            }
            Some(0xa2) => salt = der::small_uint(inner).ok_or(bad("malformed saltLength"))?,
            Some(0xa3) => {
                if der::small_uint(inner) != Some(1) {
                    return Err(bad("trailerField must be 1"));
                }
            }
            _ => return Err(bad("unexpected field")),
        }
    }
    // The defaults (SHA-1, MGF1-SHA-1) are not accepted: SHA-1 is not allowed for signatures.
    let hash = hash.ok_or(bad("hashAlgorithm missing (SHA-1 default refused)"))?;
    if mgf_hash != Some(hash) {
        return Err(bad("MGF1 must use the same hash as the signature"));
    }
    // RFC 8017 allows up to emLen - hLen - 2 (pyHanko uses the maximum); the key's size is
    // checked against `SignAlgo::fits` once the key is known.
    if salt > 1024 {
        return Err(bad("saltLength too long"));
    }
    Ok((hash, u32::try_from(salt).map_err(|_| bad("saltLength"))?))
}

/// DER RSASSA-PSS-params for `hash`, MGF1(`hash`), `salt_len` (for clients and tests).
pub fn pss_params_der(hash: HashAlg, salt_len: u8) -> Vec<u8> {
    let oid_arcs =
        |oid: &str| -> Vec<u64> { oid.split('.').filter_map(|a| a.parse().ok()).collect() };
    let alg_id = |oid: &str| der::tlv(0x30, &[der::oid(&oid_arcs(oid)), vec![0x05, 0x00]].concat());
    let hash_id = alg_id(hash.oid());
    let mgf = der::tlv(
        0x30,
        &[der::oid(&oid_arcs(OID_MGF1)), hash_id.clone()].concat(),
    );
    der::tlv(
        0x30,
        &[
            der::tlv(0xa0, &hash_id),
            der::tlv(0xa1, &mgf),
            der::tlv(
                0xa2,
                &if salt_len < 0x80 {
                    vec![0x02, 0x01, salt_len]
                } else {
                    vec![0x02, 0x02, 0x00, salt_len]
                },
            ),
        ]
        .concat(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_pair_resolves() {
        let cases = [
            (OID_SHA256_RSA, None, SignAlgo::RsaPkcs1(HashAlg::Sha256)),
            (OID_SHA384_RSA, None, SignAlgo::RsaPkcs1(HashAlg::Sha384)),
            (OID_SHA512_RSA, None, SignAlgo::RsaPkcs1(HashAlg::Sha512)),
            (
                OID_RSA_ENCRYPTION,
                Some(OID_SHA384),
                SignAlgo::RsaPkcs1(HashAlg::Sha384),
            ),
            (OID_ECDSA_SHA256, None, SignAlgo::Ecdsa(HashAlg::Sha256)),
            (
                OID_ECDSA_SHA384,
                Some(OID_SHA384),
                SignAlgo::Ecdsa(HashAlg::Sha384),
            ),
            (OID_ECDSA_SHA512, None, SignAlgo::Ecdsa(HashAlg::Sha512)),
            (
                OID_EC_PUBLIC_KEY,
                Some(OID_SHA512),
                SignAlgo::Ecdsa(HashAlg::Sha512),
            ),
        ];
        for (sign_algo, hash, expected) in cases {
            assert_eq!(
                SignAlgo::resolve(sign_algo, hash, None),
                Ok(expected),
                "{sign_algo}"
            );
        }
    }

    #[test]
    fn pss_parameters_resolve_and_round_trip() {
        for hash in HashAlg::ALL {
            let params = pss_params_der(hash, hash.digest_len() as u8);
            assert_eq!(
                SignAlgo::resolve(OID_RSASSA_PSS, None, Some(&params)),
                Ok(SignAlgo::RsaPss {
                    hash,
                    salt_len: hash.digest_len() as u32
                })
            );
        }
        assert!(SignAlgo::resolve(OID_RSASSA_PSS, None, None).is_err());
        assert!(
            SignAlgo::resolve(OID_RSASSA_PSS, None, Some(&[0x30, 0x00])).is_err(),
            "SHA-1 defaults"
        );
        assert!(SignAlgo::resolve(OID_RSASSA_PSS, None, Some(&[0x30, 0x05, 0x01])).is_err());
        let params = pss_params_der(HashAlg::Sha256, 32);
        assert!(matches!(
            SignAlgo::resolve(OID_RSASSA_PSS, Some(OID_SHA512), Some(&params)),
            Err(MechanismError::HashMismatch { .. })
        ));
        let max_salt = SignAlgo::resolve(
            OID_RSASSA_PSS,
            None,
            Some(&pss_params_der(HashAlg::Sha256, 222)),
        )
        .unwrap();
        assert!(
            max_salt.fits(KeyAlgo::Rsa2048),
            "pyHanko's maximum salt for RSA-2048/SHA-256"
        );
        let too_long = SignAlgo::RsaPss {
            hash: HashAlg::Sha256,
            salt_len: 223,
        };
        assert!(!too_long.fits(KeyAlgo::Rsa2048));
        assert!(too_long.fits(KeyAlgo::Rsa3072));
        assert!(!SignAlgo::Ecdsa(HashAlg::Sha256).fits(KeyAlgo::Rsa2048));
        assert!(SignAlgo::Ecdsa(HashAlg::Sha512).fits(KeyAlgo::EcP256));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            SignAlgo::resolve(OID_RSA_ENCRYPTION, None, None),
            Err(MechanismError::HashRequired(_))
        ));
        assert!(matches!(
            SignAlgo::resolve(OID_EC_PUBLIC_KEY, None, None),
            Err(MechanismError::HashRequired(_))
        ));
        assert!(matches!(
            SignAlgo::resolve(OID_SHA256_RSA, Some(OID_SHA384), None),
            Err(MechanismError::HashMismatch { .. })
        ));
        assert!(matches!(
            SignAlgo::resolve("1.2.840.113549.1.1.5", None, None),
            Err(MechanismError::UnknownSignAlgo(_))
        ));
        assert!(matches!(
            SignAlgo::resolve(OID_EC_PUBLIC_KEY, Some("1.3.14.3.2.26"), None),
            Err(MechanismError::UnknownHash(_))
        ));
    }

    #[test]
    fn digest_info_prefixes_match_openssl() {
        use openssl::hash::{hash, MessageDigest};
        for (alg, md) in [
            (HashAlg::Sha256, MessageDigest::sha256()),
            (HashAlg::Sha384, MessageDigest::sha384()),
            (HashAlg::Sha512, MessageDigest::sha512()),
        ] {
            let digest = hash(md, b"abc").unwrap();
            assert_eq!(digest.len(), alg.digest_len());
            let mut input = Vec::new();
            SignAlgo::RsaPkcs1(alg).input_into(&digest, &mut input);
            // A DigestInfo is a well-formed SEQUENCE { AlgorithmIdentifier, OCTET STRING }.
            let body = der::content(&input).unwrap();
            let parts = der::elements(body).unwrap();
            assert_eq!(algorithm_identifier(parts[0]).unwrap().0, alg.oid());
            assert_eq!(der::content(parts[1]).unwrap(), &digest[..]);
        }
    }

    #[test]
    fn every_sign_algo_uses_a_mechanism_its_keys_allow() {
        let pss = |hash| SignAlgo::RsaPss { hash, salt_len: 32 };
        for hash in HashAlg::ALL {
            for algo in [SignAlgo::RsaPkcs1(hash), pss(hash), SignAlgo::Ecdsa(hash)] {
                let allowed = algo.family().allowed_mechanisms();
                assert!(
                    allowed.contains(&algo.mechanism().mechanism_type()),
                    "{}",
                    algo.name()
                );
            }
        }
        assert_eq!(KeyFamily::Ec.allowed_mechanisms(), [MechanismType::ECDSA]);
        assert_eq!(
            KeyFamily::Rsa.allowed_mechanisms(),
            [MechanismType::RSA_PKCS, MechanismType::RSA_PKCS_PSS]
        );
    }

    #[test]
    fn key_algorithms_list_what_they_can_do() {
        for algo in KeyAlgo::ALL {
            for oid in algo.sign_algo_oids() {
                assert!(SIGN_ALGO_OIDS.contains(oid));
            }
        }
        assert_eq!(KeyAlgo::EcP256.curve_oid(), Some(OID_P256));
        assert_eq!(KeyAlgo::Rsa2048.curve_oid(), None);
    }
}
