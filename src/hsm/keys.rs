//! Key objects: generation (sensitive, non-extractable token keys labelled by their id),
//! lookup by `CKA_ID` through the handle cache, signing, HMAC and AES-GCM sealing.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use zeroize::Zeroizing;

use super::error::{classify, HsmError};
use super::mechanism::SignAlgo;
use super::pool::{Backlog, HandleCache, Hsm};

/// Key algorithms a credential (or the CA) can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgo {
    EcP256,
    EcP384,
    Rsa2048,
    Rsa3072,
}

impl KeyAlgo {
    pub const ALL: [KeyAlgo; 4] = [
        KeyAlgo::EcP256,
        KeyAlgo::EcP384,
        KeyAlgo::Rsa2048,
        KeyAlgo::Rsa3072,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgo::EcP256 => "ec-p256",
            KeyAlgo::EcP384 => "ec-p384",
            KeyAlgo::Rsa2048 => "rsa-2048",
            KeyAlgo::Rsa3072 => "rsa-3072",
        }
    }

    /// Key length in bits (the CSC `key/len`).
    pub fn bits(self) -> u32 {
        match self {
            KeyAlgo::EcP256 => 256,
            KeyAlgo::EcP384 => 384,
            KeyAlgo::Rsa2048 => 2048,
            KeyAlgo::Rsa3072 => 3072,
        }
    }

    pub fn is_ec(self) -> bool {
        matches!(self, KeyAlgo::EcP256 | KeyAlgo::EcP384)
    }

    /// DER of the named-curve OID (`CKA_EC_PARAMS`), for EC keys.
    fn ec_params(self) -> Option<&'static [u8]> {
        match self {
            // 1.2.840.10045.3.1.7 (P-256)
            KeyAlgo::EcP256 => Some(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            // 1.3.132.0.34 (P-384)
            KeyAlgo::EcP384 => Some(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
            KeyAlgo::Rsa2048 | KeyAlgo::Rsa3072 => None,
        }
    }

    fn curve_nid(self) -> Option<Nid> {
        match self {
            KeyAlgo::EcP256 => Some(Nid::X9_62_PRIME256V1),
            KeyAlgo::EcP384 => Some(Nid::SECP384R1),
            KeyAlgo::Rsa2048 | KeyAlgo::Rsa3072 => None,
        }
    }
}

impl fmt::Display for KeyAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgo {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        KeyAlgo::ALL.into_iter().find(|a| a.as_str() == s).ok_or(())
    }
}

/// Serialises every walk of the object store (search, creation, destruction) in this process.
/// SoftHSM2's file store answers a create racing another session's search or create with
/// CKR_GENERAL_ERROR. These are rare (enrolment, start-up, the first use of a key: handles are
/// cached), so the lock never touches the signing path.
static OBJECT_STORE: Mutex<()> = Mutex::new(());

fn object_store_lock() -> std::sync::MutexGuard<'static, ()> {
    OBJECT_STORE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `walk`, a search of the token by a session outside the pool (tests, tools in this
/// process), under the lock of the gateway's own walks, so that it cannot break a creation.
pub fn with_object_store<T>(walk: impl FnOnce() -> T) -> T {
    let _store = object_store_lock();
    walk()
}

const PRIVATE: u8 = 1;
const SECRET: u8 = 2;

/// Finds the one object of `class` with `CKA_ID = id`, through the cache.
fn find(
    session: &Session,
    cache: &HandleCache,
    class: ObjectClass,
    tag: u8,
    id: &[u8],
) -> Result<ObjectHandle, HsmError> {
    if let Some(handle) = cache.get(tag, id) {
        return Ok(handle);
    }
    let found = find_all(session, class, id)?;
    match found.as_slice() {
        [handle] => {
            cache.insert(tag, id, *handle);
            Ok(*handle)
        }
        [] => Err(HsmError::KeyNotFound(hex::encode(id))),
        many => Err(HsmError::AmbiguousKey {
            id: hex::encode(id),
            count: many.len(),
        }),
    }
}

/// Every object of `class` with `CKA_ID = id` (under the object-store lock).
fn find_all(
    session: &Session,
    class: ObjectClass,
    id: &[u8],
) -> Result<Vec<ObjectHandle>, HsmError> {
    let _store = object_store_lock();
    session
        .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])
        .map_err(|e| classify("C_FindObjects", e))
}

fn count(session: &Session, class: ObjectClass, id: &[u8]) -> Result<usize, HsmError> {
    find_all(session, class, id).map(|v| v.len())
}

/// Reads the public half of a key pair and returns it as DER SubjectPublicKeyInfo.
fn public_key_spki(session: &Session, algo: KeyAlgo, id: &[u8]) -> Result<Vec<u8>, HsmError> {
    let found = find_all(session, ObjectClass::PUBLIC_KEY, id)?;
    let handle = match found.as_slice() {
        [handle] => *handle,
        [] => return Err(HsmError::KeyNotFound(hex::encode(id))),
        many => {
            return Err(HsmError::AmbiguousKey {
                id: hex::encode(id),
                count: many.len(),
            })
        }
    };
    let bad = |_| HsmError::BadOutput("public key not convertible");
    if let Some(nid) = algo.curve_nid() {
        let attrs = session
            .get_attributes(handle, &[AttributeType::EcPoint])
            .map_err(|e| classify("C_GetAttributeValue", e))?;
        let Some(Attribute::EcPoint(point)) = attrs.into_iter().next() else {
            return Err(HsmError::BadOutput("no CKA_EC_POINT"));
        };
        let point = unwrap_octet_string(&point, algo);
        let group = EcGroup::from_curve_name(nid).map_err(bad)?;
        let mut ctx = BigNumContext::new().map_err(bad)?;
        let point = EcPoint::from_bytes(&group, point, &mut ctx).map_err(bad)?;
        let key = EcKey::from_public_key(&group, &point).map_err(bad)?;
        PKey::from_ec_key(key)
            .and_then(|k| k.public_key_to_der())
            .map_err(bad)
    } else {
        let attrs = session
            .get_attributes(
                handle,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(|e| classify("C_GetAttributeValue", e))?;
        let (mut n, mut e) = (None, None);
        for attr in attrs {
            match attr {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        let (Some(n), Some(e)) = (n, e) else {
            return Err(HsmError::BadOutput("no RSA modulus/exponent"));
        };
        let rsa = Rsa::from_public_components(
            BigNum::from_slice(&n).map_err(bad)?,
            BigNum::from_slice(&e).map_err(bad)?,
        )
        .map_err(bad)?;
        PKey::from_rsa(rsa)
            .and_then(|k| k.public_key_to_der())
            .map_err(bad)
    }
}

/// PKCS#11 `r || s` → DER `ECDSA-Sig-Value`.
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    let bad = |_| HsmError::BadOutput("ECDSA signature");
    let (r, s) = raw
        .split_at_checked(raw.len() / 2)
        .ok_or(HsmError::BadOutput("ECDSA signature"))?;
    EcdsaSig::from_private_components(
        BigNum::from_slice(r).map_err(bad)?,
        BigNum::from_slice(s).map_err(bad)?,
    )
    .and_then(|sig| sig.to_der())
    .map_err(bad)
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point (some modules return the bare point).
fn unwrap_octet_string(value: &[u8], algo: KeyAlgo) -> &[u8] {
    let bare_len = if algo == KeyAlgo::EcP256 { 65 } else { 97 };
    match value {
        [0x04, len, rest @ ..] if value.len() != bare_len && usize::from(*len) == rest.len() => {
            rest
        }
        _ => value,
    }
}

/// Generates the pair; returns the private key's handle.
fn generate_pair(
    session: &Session,
    algo: KeyAlgo,
    id: &[u8],
    label: &str,
) -> Result<ObjectHandle, HsmError> {
    let common = |attrs: &mut Vec<Attribute>| {
        attrs.push(Attribute::Token(true));
        attrs.push(Attribute::Id(id.to_vec()));
        attrs.push(Attribute::Label(label.as_bytes().to_vec()));
    };
    // The public half verifies and does nothing else (no encryption or wrapping under it).
    let mut public = vec![
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Private(false),
    ];
    common(&mut public);
    // The private key never leaves the token: sensitive, not extractable, not wrappable out.
    // It signs and does nothing else: no decryption, unwrapping or key derivation with it.
    let mut private = vec![
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::SignRecover(false),
    ];
    common(&mut private);
    let _store = object_store_lock();
    let mechanism = if let Some(params) = algo.ec_params() {
        public.push(Attribute::EcParams(params.to_vec()));
        Mechanism::EccKeyPairGen
    } else {
        public.push(Attribute::ModulusBits(u64::from(algo.bits()).into()));
        public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
        Mechanism::RsaPkcsKeyPairGen
    };
    // And only with the mechanisms of its signature algorithms (`hsm/mechanism.rs`), where
    // the token knows CKA_ALLOWED_MECHANISMS (SoftHSM2 ≥ 2.6 does and enforces it).
    let mut restricted = private.clone();
    restricted.push(Attribute::AllowedMechanisms(
        algo.family().allowed_mechanisms().to_vec(),
    ));
    match session.generate_key_pair(&mechanism, &public, &restricted) {
        Ok((_, private)) => Ok(private),
        Err(CkError::Pkcs11(RvError::AttributeTypeInvalid, _)) => {
            tracing::warn!("the token does not know CKA_ALLOWED_MECHANISMS; key left unrestricted");
            session
                .generate_key_pair(&mechanism, &public, &private)
                .map(|(_, private)| private)
                .map_err(|e| classify("C_GenerateKeyPair", e))
        }
        Err(e) => Err(classify("C_GenerateKeyPair", e)),
    }
}

/// The HSM jobs of a batch of `n` hashes, as consecutive ranges of it. One job per worker
/// would leave the request waiting on the slowest one: a worker that shares its core with the
/// HTTP threads, Redis or PostgreSQL falls behind, and at the end of a large batch the others
/// idle (half a batch of 1000 RSA-3072 hashes is 1.5 s of work). Up to 8 jobs per worker,
/// taken from one queue, let the faster workers take more; each job signs at least 16 hashes
/// (when there are that many per worker), so that its hand-off (a few µs) stays small next
/// to its signatures. Only while a worker is free: under load [`Hsm::sign_batch`] sends the
/// batch as one job.
fn batch_ranges(n: usize, workers: usize) -> impl Iterator<Item = Range<usize>> {
    const MIN_PER_JOB: usize = 16;
    const JOBS_PER_WORKER: usize = 8;
    let workers = workers.max(1);
    let jobs = (n / MIN_PER_JOB)
        .clamp(workers, workers * JOBS_PER_WORKER)
        .min(n)
        .max(1);
    (0..jobs).map(move |j| j * n / jobs..(j + 1) * n / jobs)
}

impl Hsm {
    /// Generates a key pair with `CKA_ID = id`, labelled `label`; returns the SPKI DER.
    pub async fn generate_key_pair(
        &self,
        algo: KeyAlgo,
        id: Vec<u8>,
        label: String,
    ) -> Result<Vec<u8>, HsmError> {
        self.run("generate_key_pair", move |session, cache| {
            // Cached at once: the key's first signature never searches the token.
            let private = generate_pair(session, algo, &id, &label)?;
            cache.insert(PRIVATE, &id, private);
            public_key_spki(session, algo, &id)
        })
        .await
    }

    /// The gateway's own key pair named `name` (CA keys): found if it exists, else generated.
    /// Callers serialise this across nodes (start-up holds a database lock).
    pub async fn ensure_own_key_pair(
        &self,
        name: &str,
        algo: KeyAlgo,
    ) -> Result<Vec<u8>, HsmError> {
        let label = format!("{}{name}", self.label_prefix());
        self.run("ensure_key_pair", move |session, _| {
            let id = label.as_bytes();
            if count(session, ObjectClass::PRIVATE_KEY, id)? == 0 {
                generate_pair(session, algo, id, &label)?;
            }
            public_key_spki(session, algo, id)
        })
        .await
    }

    /// The id of the gateway's own object `name`.
    pub fn own_key_id(&self, name: &str) -> Vec<u8> {
        format!("{}{name}", self.label_prefix()).into_bytes()
    }

    /// Creates the gateway's own HMAC secret key `name` if it does not exist: a 256-bit
    /// generic secret, sensitive and non-extractable, usable only for HMAC inside the token.
    pub async fn ensure_hmac_key(&self, name: &str) -> Result<(), HsmError> {
        let label = format!("{}{name}", self.label_prefix());
        self.run("ensure_hmac_key", move |session, _| {
            let id = label.as_bytes();
            if count(session, ObjectClass::SECRET_KEY, id)? > 0 {
                return Ok(());
            }
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(32u64.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Id(id.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
            ];
            let _store = object_store_lock();
            session
                .generate_key(&Mechanism::GenericSecretKeyGen, &template)
                .map(|_| ())
                .map_err(|e| classify("C_GenerateKey", e))
        })
        .await
    }

    /// Creates the gateway's own AES-256 key `name` if it does not exist: sensitive,
    /// non-extractable, usable only to encrypt and decrypt inside the token (sealing).
    pub async fn ensure_aes_key(&self, name: &str) -> Result<(), HsmError> {
        let label = format!("{}{name}", self.label_prefix());
        self.run("ensure_aes_key", move |session, _| {
            let id = label.as_bytes();
            if count(session, ObjectClass::SECRET_KEY, id)? > 0 {
                return Ok(());
            }
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32u64.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Sign(false),
                Attribute::Verify(false),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                Attribute::Id(id.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
            ];
            let _store = object_store_lock();
            session
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map(|_| ())
                .map_err(|e| classify("C_GenerateKey(AES)", e))
        })
        .await
    }

    /// AES-256-GCM encryption of `plain` inside the token with the key `key_id`, under the
    /// 12-byte `nonce` and the additional data `aad`: `ciphertext || tag` (16 bytes).
    pub async fn aes_gcm_encrypt(
        &self,
        key_id: Vec<u8>,
        nonce: [u8; 12],
        aad: Vec<u8>,
        plain: Zeroizing<Vec<u8>>,
    ) -> Result<Vec<u8>, HsmError> {
        self.run("aes_gcm_encrypt", move |session, cache| {
            let key = find(session, cache, ObjectClass::SECRET_KEY, SECRET, &key_id)?;
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, &aad, 128u64.into())
                .map_err(|_| HsmError::BadOutput("GCM parameters"))?;
            session
                .encrypt(&Mechanism::AesGcm(params), key, &plain)
                .map_err(|e| classify("C_Encrypt(AES-GCM)", e))
        })
        .await
    }

    /// Opens what [`Hsm::aes_gcm_encrypt`] made; `None` when the token finds it not
    /// authentic (another key, nonce or `aad`, or tampered with).
    pub async fn aes_gcm_decrypt(
        &self,
        key_id: Vec<u8>,
        nonce: [u8; 12],
        aad: Vec<u8>,
        sealed: Vec<u8>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, HsmError> {
        self.run("aes_gcm_decrypt", move |session, cache| {
            let key = find(session, cache, ObjectClass::SECRET_KEY, SECRET, &key_id)?;
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, &aad, 128u64.into())
                .map_err(|_| HsmError::BadOutput("GCM parameters"))?;
            match session.decrypt(&Mechanism::AesGcm(params), key, &sealed) {
                Ok(plain) => Ok(Some(Zeroizing::new(plain))),
                // SoftHSM2 answers a wrong GCM tag with CKR_GENERAL_ERROR; other modules
                // with CKR_ENCRYPTED_DATA_INVALID. Either way the value does not open (and a
                // real fault would fail the next job too, where it is classified).
                Err(CkError::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::DataInvalid
                    | RvError::DataLenRange
                    | RvError::GeneralError,
                    _,
                )) => Ok(None),
                Err(e) => Err(classify("C_Decrypt(AES-GCM)", e)),
            }
        })
        .await
    }

    /// HMAC-SHA256 of `data` with the secret key of id `key_id`, computed inside the token.
    pub async fn hmac_sha256(&self, key_id: Vec<u8>, data: Vec<u8>) -> Result<Vec<u8>, HsmError> {
        self.run("hmac", move |session, cache| {
            let key = find(session, cache, ObjectClass::SECRET_KEY, SECRET, &key_id)?;
            session
                .sign(&Mechanism::Sha256Hmac, key, &data)
                .map_err(|e| classify("C_Sign(HMAC)", e))
        })
        .await
    }

    /// Signs every digest with the private key `key_id` under `algo`; the batch is split
    /// into jobs for the workers (see [`batch_ranges`]) and the signatures come back in the
    /// order of `digests`. ECDSA signatures are DER `SEQUENCE {r, s}` (PKCS#11 returns
    /// `r || s`).
    pub async fn sign_batch(
        &self,
        key_id: Arc<[u8]>,
        algo: SignAlgo,
        digests: Arc<Vec<Vec<u8>>>,
    ) -> Result<Vec<Vec<u8>>, HsmError> {
        // Under load the queue already holds a job for every worker: splitting this batch would
        // buy no parallelism, only hand-offs and wake-ups. It goes as one job.
        let n = digests.len();
        let ranges: Vec<Range<usize>> = if self.queue_depth() >= self.workers() {
            std::iter::once(0..n).collect()
        } else {
            batch_ranges(n, self.workers()).collect()
        };
        let jobs = ranges.into_iter().map(|range| {
            let (key_id, digests) = (key_id.clone(), digests.clone());
            let queued = Queued::new(self.signing_backlog(), range.len());
            self.run("sign", move |session, cache| {
                queued.start();
                let started = Instant::now();
                let key = find(session, cache, ObjectClass::PRIVATE_KEY, PRIVATE, &key_id)?;
                let mechanism = algo.mechanism();
                let mut input = Vec::with_capacity(128);
                let mut out = Vec::with_capacity(range.len());
                for digest in digests.get(range.clone()).unwrap_or_default() {
                    algo.input_into(digest, &mut input);
                    let raw = session
                        .sign(&mechanism, key, &input)
                        .map_err(|e| classify("C_Sign", e))?;
                    out.push(match algo {
                        SignAlgo::Ecdsa(_) => ecdsa_der(&raw)?,
                        _ => raw,
                    });
                }
                queued.signed(started.elapsed());
                Ok(out)
            })
        });
        let parts = futures_util::future::try_join_all(jobs).await?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// Fills the handle cache with every private key of the token in ONE search, so that no
    /// request ever pays a `C_FindObjects` (a linear scan: ~70 ms with 2,000 keys in
    /// SoftHSM2, serialised by the object-store lock). Returns how many keys it cached.
    pub async fn preload_keys(&self) -> Result<usize, HsmError> {
        self.run("preload_keys", |session, cache| {
            let handles = {
                let _store = object_store_lock();
                session
                    .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
                    .map_err(|e| classify("C_FindObjects", e))?
            };
            let mut by_id: HashMap<Vec<u8>, Option<ObjectHandle>> = HashMap::new();
            for handle in handles {
                let attrs = session
                    .get_attributes(handle, &[AttributeType::Id])
                    .map_err(|e| classify("C_GetAttributeValue", e))?;
                if let Some(Attribute::Id(id)) = attrs.into_iter().next() {
                    // An id held by two keys is left out: the lazy lookup reports it.
                    by_id
                        .entry(id)
                        .and_modify(|h| *h = None)
                        .or_insert(Some(handle));
                }
            }
            let mut cached = 0;
            for (id, handle) in by_id {
                if let Some(handle) = handle {
                    cache.insert(PRIVATE, &id, handle);
                    cached += 1;
                }
            }
            Ok(cached)
        })
        .await
    }

    /// Drops the cached handles of key `id` in this process (suspension, revocation).
    pub fn forget_key(&self, id: &[u8]) {
        self.handles().remove(id);
    }

    /// True if this process holds a handle of the private key `id` (after [`Hsm::preload_keys`]
    /// at start-up: every private key of the token).
    pub fn caches_private_key(&self, id: &[u8]) -> bool {
        self.handles().get(PRIVATE, id).is_some()
    }

    /// Destroys the private key `id` (revocation: the public key may stay, it certifies
    /// nothing the certificate does not already say). Returns how many objects were destroyed;
    /// 0 when there was none left, so a retry is harmless. The cached handle is dropped before
    /// and after, so that a signature racing the destruction cannot leave it behind.
    pub async fn destroy_private_key(&self, id: Vec<u8>) -> Result<usize, HsmError> {
        self.run_to_end("destroy_private_key", move |session, cache| {
            cache.remove(&id);
            let found = find_all(session, ObjectClass::PRIVATE_KEY, &id)?;
            let destroyed = {
                let _store = object_store_lock();
                for handle in &found {
                    session
                        .destroy_object(*handle)
                        .map_err(|e| classify("C_DestroyObject", e))?;
                }
                found.len()
            };
            cache.remove(&id);
            Ok(destroyed)
        })
        .await
    }

    /// Destroys both halves of the key pair `id` (undoing an enrolment that failed later).
    pub async fn destroy_key_pair(&self, id: Vec<u8>) -> Result<(), HsmError> {
        self.run_to_end("destroy_key_pair", move |session, cache| {
            cache.remove(&id);
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                let found = find_all(session, class, &id)?;
                let _store = object_store_lock();
                for handle in found {
                    session
                        .destroy_object(handle)
                        .map_err(|e| classify("C_DestroyObject", e))?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// A sign job's signatures, counted in the HSM's backlog from queueing until a worker starts
/// the job (or the job is dropped without running).
struct Queued {
    backlog: Arc<Backlog>,
    n: usize,
    waiting: Cell<bool>,
}

impl Queued {
    fn new(backlog: Arc<Backlog>, n: usize) -> Queued {
        backlog.queued(n);
        Queued {
            backlog,
            n,
            waiting: Cell::new(true),
        }
    }

    fn start(&self) {
        if self.waiting.replace(false) {
            self.backlog.started(self.n);
        }
    }

    fn signed(&self, took: Duration) {
        self.backlog.signed(self.n, took);
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_ordered_jobs_of_sixteen_hashes_or_more() {
        for workers in 1..=4 {
            for n in 1..=2100 {
                let ranges: Vec<_> = batch_ranges(n, workers).collect();
                let flat: Vec<usize> = ranges.iter().cloned().flatten().collect();
                assert_eq!(flat, (0..n).collect::<Vec<_>>(), "n={n} workers={workers}");
                assert!(ranges.len() <= 8 * workers && ranges.len() <= n);
                if n >= 16 * workers {
                    assert!(ranges.iter().all(|r| r.len() >= 16), "n={n} {ranges:?}");
                }
                if n >= workers {
                    assert!(ranges.len() >= workers, "n={n} workers={workers}");
                }
            }
        }
        let sizes = |n| batch_ranges(n, 2).map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(10), [5, 5]);
        assert_eq!(sizes(100), [16, 17, 17, 16, 17, 17]);
        assert_eq!(sizes(1000).len(), 16);
    }

    #[test]
    fn key_algo_names_round_trip() {
        for algo in KeyAlgo::ALL {
            assert_eq!(algo.as_str().parse::<KeyAlgo>(), Ok(algo));
        }
        assert!("rsa-1024".parse::<KeyAlgo>().is_err());
    }

    #[test]
    fn ec_point_is_unwrapped_from_its_octet_string() {
        let mut bare = vec![0x04];
        bare.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&bare);
        assert_eq!(unwrap_octet_string(&wrapped, KeyAlgo::EcP256), &bare[..]);
        assert_eq!(unwrap_octet_string(&bare, KeyAlgo::EcP256), &bare[..]);
    }
}
