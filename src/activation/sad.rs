//! Signature Activation Data: what `credentials/authorize` issues and `signatures/signHash`
//! consumes. A SAD lives in Redis under the owner's hash slot: a hash with the credential, the
//! signatures left, the key's family and purpose, the hash algorithm, and (SCAL2) a set of the
//! exact hashes it may sign. The SAD itself is never stored: keys are named by its SHA-256.
//!
//! Invariant: consuming is ONE Lua script that checks everything (token not revoked, SAD bound
//! to this credential, count left, key family, purpose, every hash authorised) and only then
//! decrements, so concurrent requests on any number of nodes can never sign more than
//! authorised, and a refused request consumes nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::LazyLock;

use base64::Engine;
use openssl::sha::sha256;
use rand::RngCore;
use redis::Script;
use uuid::Uuid;

use crate::hsm::{HashAlg, KeyAlgo, KeyFamily};
use crate::kv::{Kv, KvError};
use crate::model::Purpose;

/// Why a SAD does not allow a signHash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SadError {
    #[error("the access token was revoked")]
    TokenRevoked,
    #[error("Invalid parameter SAD: unknown or expired")]
    Unknown,
    #[error("Invalid parameter SAD: it was issued for another credential")]
    OtherCredential,
    #[error("Invalid parameter SAD: {left} signatures left, {asked} asked")]
    Exhausted { left: u32, asked: u32 },
    #[error("Invalid parameter SAD: it authorised another hash algorithm")]
    HashAlgorithm,
    #[error("Invalid parameter hashes: hash {position} is not authorised by the SAD")]
    HashNotAuthorised { position: usize },
    #[error("signAlgo does not match the credential's key")]
    KeyMismatch,
    #[error(
        "the certificate of this credential is not a signing certificate: it cannot sign documents"
    )]
    NotSigning,
    #[error("the credential is suspended or revoked")]
    CredentialHeld,
}

/// What a consumed SAD tells about the credential.
#[derive(Debug, Clone, Copy)]
pub struct Consumed {
    pub key_algo: KeyAlgo,
    pub left: u32,
}

/// A SAD to create.
pub struct NewSad<'a> {
    pub user_id: &'a str,
    pub credential_id: Uuid,
    pub count: u32,
    pub key_algo: KeyAlgo,
    pub purpose: Purpose,
    /// The hash algorithm the SAD is bound to, if any.
    pub hash_alg: Option<HashAlg>,
    /// SCAL2: the exact hashes it may sign (distinct).
    pub hashes: Option<&'a [Vec<u8>]>,
    pub ttl_secs: u64,
}

/// One signHash's claim on a SAD.
pub struct Claim<'a> {
    pub user_id: &'a str,
    pub jti: &'a str,
    pub sad: &'a str,
    pub credential_id: Uuid,
    pub family: KeyFamily,
    pub hash_alg: HashAlg,
    pub hashes: &'a [Vec<u8>],
}

fn keys(kv: &Kv, user_id: &str, sad: &str) -> (String, String) {
    let id = hex::encode(sha256(sad.as_bytes()));
    (
        kv.user_key(user_id, &["sad:", &id]),
        kv.user_key(user_id, &["sad:", &id, ":h"]),
    )
}

fn new_token() -> String {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    URL_SAFE_NO_PAD.encode(random)
}

/// KEYS: sad hash, bound-hash set, the credential's hold generation.
/// ARGV: ttl, credential, count, key algo, key family, purpose, hash OID, bound flag, hashes…
/// The SAD records the credential's generation: a later suspension or revocation bumps it,
/// and the SAD never signs again, even after a resumption.
const CREATE: &str = r"
local g = redis.call('GET', KEYS[3]) or '0'
redis.call('HSET', KEYS[1], 'cred', ARGV[2], 'n', ARGV[3], 'key', ARGV[4], 'kt', ARGV[5],
  'pu', ARGV[6], 'alg', ARGV[7], 'bound', ARGV[8], 'g', g)
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[8] == '1' then
  for i = 9, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
";

/// Stores a new SAD; returns it.
pub async fn create(kv: &Kv, new: NewSad<'_>) -> Result<String, KvError> {
    static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CREATE));
    let token = new_token();
    let (main, bound) = keys(kv, new.user_id, &token);
    let mut invocation = SCRIPT.prepare_invoke();
    invocation
        .key(&main)
        .key(&bound)
        .key(generation_key(kv, new.user_id, new.credential_id))
        .arg(new.ttl_secs)
        .arg(new.credential_id.to_string())
        .arg(new.count)
        .arg(new.key_algo.as_str())
        .arg(new.key_algo.family().as_str())
        .arg(new.purpose.as_str())
        .arg(new.hash_alg.map(|h| h.oid()).unwrap_or_default())
        .arg(if new.hashes.is_some() { "1" } else { "0" });
    for hash in new.hashes.unwrap_or_default() {
        invocation.arg(hex::encode(hash));
    }
    let mut conn = kv.conn();
    let _: i64 = invocation.invoke_async(&mut conn).await?;
    Ok(token)
}

/// Bumped by every suspension or revocation of the credential.
fn generation_key(kv: &Kv, user_id: &str, credential_id: Uuid) -> String {
    kv.user_key(
        user_id,
        &[
            "gen:",
            credential_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
        ],
    )
}

/// The marker that stops every SAD of a suspended or revoked credential, on every node.
fn hold_key(kv: &Kv, user_id: &str, credential_id: Uuid) -> String {
    kv.user_key(
        user_id,
        &[
            "hold:",
            credential_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
        ],
    )
}

/// Stops every outstanding SAD of `credential_id` at once (suspension, revocation).
pub async fn hold(kv: &Kv, user_id: &str, credential_id: Uuid) -> Result<(), KvError> {
    let mut conn = kv.conn();
    let () = redis::pipe()
        .atomic()
        .set(hold_key(kv, user_id, credential_id), "1")
        .ignore()
        .incr(generation_key(kv, user_id, credential_id), 1)
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// Lifts a hold (resumption).
pub async fn release(kv: &Kv, user_id: &str, credential_id: Uuid) -> Result<(), KvError> {
    let mut conn = kv.conn();
    let _: i64 = redis::cmd("DEL")
        .arg(hold_key(kv, user_id, credential_id))
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// KEYS: sad hash, bound-hash set, revoked-token marker, credential hold, generation (the
/// last three read by one MGET: three Redis calls in all on the hot path).
/// ARGV: credential, count, key family, hash OID, hex hashes…
/// Returns {1, left, key_algo} or {error code, detail}.
const CONSUME: &str = r"
local held = redis.call('MGET', KEYS[3], KEYS[4], KEYS[5])
if held[1] then return {-1, 0, ''} end
if held[2] then return {-9, 0, ''} end
local sad = redis.call('HMGET', KEYS[1], 'cred', 'n', 'alg', 'bound', 'kt', 'pu', 'key', 'g')
if not sad[1] then return {-2, 0, ''} end
if (held[3] or '0') ~= sad[8] then return {-9, 0, ''} end
if sad[1] ~= ARGV[1] then return {-3, 0, ''} end
if sad[5] ~= ARGV[3] then return {-7, 0, ''} end
if sad[6] ~= 'signing' then return {-8, 0, ''} end
local left = tonumber(sad[2])
local asked = tonumber(ARGV[2])
if asked > left then return {-4, left, ''} end
if sad[3] ~= '' and sad[3] ~= ARGV[4] then return {-5, 0, ''} end
if sad[4] == '1' then
  local seen = {}
  for i = 5, #ARGV do
    if seen[ARGV[i]] or redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then return {-6, i - 4, ''} end
    seen[ARGV[i]] = true
  end
  for i = 5, #ARGV do redis.call('SREM', KEYS[2], ARGV[i]) end
end
redis.call('HSET', KEYS[1], 'n', left - asked)
return {1, left - asked, sad[7]}
";

static CONSUME_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CONSUME));

/// Checks and consumes `claim.hashes.len()` signatures of a SAD, atomically.
pub async fn consume(kv: &Kv, claim: &Claim<'_>) -> Result<Result<Consumed, SadError>, KvError> {
    let (main, bound) = keys(kv, claim.user_id, claim.sad);
    let revoked = crate::auth::session::revoked_key(kv, claim.user_id, claim.jti);
    let asked = u32::try_from(claim.hashes.len()).unwrap_or(u32::MAX);
    let mut invocation = CONSUME_SCRIPT.prepare_invoke();
    invocation
        .key(&main)
        .key(&bound)
        .key(&revoked)
        .key(hold_key(kv, claim.user_id, claim.credential_id))
        .key(generation_key(kv, claim.user_id, claim.credential_id))
        .arg(claim.credential_id.to_string())
        .arg(asked)
        .arg(claim.family.as_str())
        .arg(claim.hash_alg.oid());
    for hash in claim.hashes {
        invocation.arg(hex::encode(hash));
    }
    let mut conn = kv.loop_conn().await?;
    let reply: (i64, i64, String) = invocation.invoke_async(&mut conn).await?;
    let detail = u32::try_from(reply.1).unwrap_or(0);
    Ok(match reply.0 {
        1 => match reply.2.parse().ok() {
            Some(key_algo) => Ok(Consumed {
                key_algo,
                left: detail,
            }),
            None => Err(SadError::Unknown),
        },
        -1 => Err(SadError::TokenRevoked),
        -3 => Err(SadError::OtherCredential),
        -4 => Err(SadError::Exhausted {
            left: detail,
            asked,
        }),
        -5 => Err(SadError::HashAlgorithm),
        -6 => Err(SadError::HashNotAuthorised {
            position: usize::try_from(detail).unwrap_or(0),
        }),
        -7 => Err(SadError::KeyMismatch),
        -8 => Err(SadError::NotSigning),
        -9 => Err(SadError::CredentialHeld),
        _ => Err(SadError::Unknown),
    })
}

/// Gives back signatures consumed by a request that then failed (HSM or audit down), so the
/// subscriber loses nothing. Only while the SAD still exists.
pub async fn restore(kv: &Kv, claim: &Claim<'_>) -> Result<(), KvError> {
    const RESTORE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n', ARGV[1])
if redis.call('HGET', KEYS[1], 'bound') == '1' then
  for i = 2, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
end
return 1
";
    static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RESTORE));
    let (main, bound) = keys(kv, claim.user_id, claim.sad);
    let mut invocation = SCRIPT.prepare_invoke();
    invocation.key(&main).key(&bound).arg(claim.hashes.len());
    for hash in claim.hashes {
        invocation.arg(hex::encode(hash));
    }
    let mut conn = kv.conn();
    let _: i64 = invocation.invoke_async(&mut conn).await?;
    Ok(())
}

/// Replaces a live SAD of `credential_id` by a fresh one with what it has left and a full
/// lifetime; the old one stops working. `None` if it is unknown, expired or not this
/// credential's.
pub async fn extend(
    kv: &Kv,
    user_id: &str,
    credential_id: Uuid,
    sad: &str,
    ttl_secs: u64,
) -> Result<Option<String>, KvError> {
    const EXTEND: &str = r"
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if redis.call('HGET', KEYS[1], 'cred') ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[4])
  redis.call('EXPIRE', KEYS[4], ARGV[2])
end
return 1
";
    let token = new_token();
    let (old_main, old_bound) = keys(kv, user_id, sad);
    let (new_main, new_bound) = keys(kv, user_id, &token);
    static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(EXTEND));
    let mut conn = kv.conn();
    let done: i64 = SCRIPT
        .key(old_main)
        .key(old_bound)
        .key(new_main)
        .key(new_bound)
        .key(hold_key(kv, user_id, credential_id))
        .arg(credential_id.to_string())
        .arg(ttl_secs)
        .invoke_async(&mut conn)
        .await?;
    Ok((done == 1).then_some(token))
}
