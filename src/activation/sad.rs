//! Signature Activation Data: what `credentials/authorize` issues and `signatures/signHash`
//! consumes. A SAD lives in Redis under the owner's hash slot: a hash with the credential, the
//! signatures left, the key's family and purpose, the hash algorithm, the absolute deadline and
//! (SCAL2) a set of tags of the exact hashes it may sign. The SAD itself is never stored: keys
//! are named by its SHA-256.
//!
//! Invariants:
//! - Consuming is ONE Lua script that checks everything (token not revoked, SAD bound to this
//!   credential, count left, key family, purpose, every hash authorised) and only then
//!   decrements, so concurrent requests on any number of nodes can never sign more than
//!   authorised, and a refused request consumes nothing.
//! - Redis cannot mint a SAD: its binding (user, credential, authorised count, key, hash
//!   algorithm, deadline, generation, certificate serial) carries an HMAC under a key derived
//!   inside the HSM at start-up ([`SadSeal`]), checked before the HSM signs; the hash set holds
//!   HMAC tags of the hashes, not the hashes, so nobody without that key can add one.
//! - Redis is the fast first check, not the authority: every SAD is also recorded in
//!   PostgreSQL (`repo::sads`) and the audit commit of each signHash spends it there, so a
//!   Redis rollback (failover, restored snapshot) cannot make a spent SAD sign again.
//! - A SAD never lives past the absolute deadline set at authorize (`sad_max_lifetime_secs`,
//!   and never past the certificate's notAfter), whatever extendTransaction does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::LazyLock;

use base64::Engine;
use openssl::sha::sha256;
use rand::RngCore;
use redis::Script;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::hsm::{HashAlg, Hsm, HsmError, KeyAlgo, KeyFamily};
use crate::kv::{Kv, KvConn, KvError};
use crate::model::Purpose;
use crate::secrets::DerivedKey;

/// Why a SAD does not allow a signHash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SadError {
    #[error("the access token was revoked")]
    TokenRevoked,
    #[error("the session ended (password or OTP device changed): log in again")]
    SessionEnded,
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
    /// The SAD in Redis does not carry a valid HMAC of its binding: written by someone else.
    #[error("Invalid parameter SAD: unknown or expired")]
    Forged,
    /// The durable record refused: the SAD's signatures are spent, its deadline passed, or
    /// the credential no longer signs (a Redis rollback is the usual cause).
    #[error("Invalid parameter SAD: its signatures are spent, it expired, or the credential can no longer sign")]
    Spent,
}

/// What a consumed SAD tells about the credential.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub key_algo: KeyAlgo,
    pub left: u32,
    /// The SAD's stable id (its durable record).
    pub sad_id: Uuid,
    /// The serial number of the certificate it was issued for.
    pub serial_number: String,
}

/// The key that authenticates SADs in Redis, derived in the HSM ([`DerivedKey`]): it exists
/// only in the gateway's memory, never in Redis nor in its configuration.
pub struct SadSeal(DerivedKey);

impl SadSeal {
    /// Creates the HSM key on first start (callers hold the bootstrap lock) and derives the
    /// SAD key from it.
    pub async fn ensure(hsm: &Hsm) -> Result<SadSeal, HsmError> {
        DerivedKey::ensure(hsm, "sad-hmac", b"sigillo-sad-binding-key\0v1")
            .await
            .map(SadSeal)
    }

    /// A seal over `key` (tests; `ensure` in the gateway).
    pub fn from_key(key: &[u8]) -> SadSeal {
        SadSeal(DerivedKey::from_key(key))
    }

    fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.0.mac(parts)
    }

    /// The HMAC of a SAD's binding, hex.
    fn binding(&self, b: &Binding<'_>) -> String {
        hex::encode(self.hmac(&[
            b"sad",
            b.sad_id.as_bytes(),
            b.user_id.as_bytes(),
            b.credential_id.as_bytes(),
            b.authorised.as_bytes(),
            b.key_algo.as_bytes(),
            b.purpose.as_bytes(),
            b.hash_oid.as_bytes(),
            b.bound.as_bytes(),
            b.deadline.as_bytes(),
            b.generation.as_bytes(),
            b.serial_number.as_bytes(),
        ]))
    }

    /// The tag that stands for `hash` in the SAD's set of authorised hashes (128 bits, hex).
    pub fn hash_tag(&self, sad_id: Uuid, hash: &[u8]) -> String {
        let tag = self.hmac(&[b"sad-hash", sad_id.as_bytes(), hash]);
        hex::encode(tag.get(..16).unwrap_or_default())
    }
}

/// What a SAD's HMAC binds, as stored in Redis (decimal numbers, OIDs, names).
struct Binding<'a> {
    sad_id: Uuid,
    user_id: &'a str,
    credential_id: &'a str,
    authorised: &'a str,
    key_algo: &'a str,
    purpose: &'a str,
    hash_oid: &'a str,
    bound: &'a str,
    deadline: &'a str,
    generation: &'a str,
    serial_number: &'a str,
}

/// A SAD to create.
pub struct NewSad<'a> {
    pub user_id: &'a str,
    pub credential_id: Uuid,
    /// Its durable record's id (`repo::sads`), carried inside the SAD.
    pub sad_id: Uuid,
    pub count: u32,
    pub key_algo: KeyAlgo,
    pub purpose: Purpose,
    /// The hash algorithm the SAD is bound to, if any.
    pub hash_alg: Option<HashAlg>,
    /// SCAL2: the exact hashes it may sign (distinct).
    pub hashes: Option<&'a [Vec<u8>]>,
    /// The absolute deadline (unix seconds): no extension goes past it.
    pub deadline: i64,
    /// The credential's generation in PostgreSQL when the SAD was recorded.
    pub generation: i64,
    pub serial_number: &'a str,
    pub ttl_secs: u64,
}

/// One signHash's claim on a SAD.
pub struct Claim<'a> {
    pub user_id: &'a str,
    pub jti: &'a str,
    /// The session epoch the access token carries (`auth::session`): a token of an ended
    /// session signs nothing, checked in the same round trip.
    pub epoch: u64,
    pub sad: &'a str,
    /// The record id inside `sad` ([`sad_id_of`]); `None` if it is not one of ours.
    pub sad_id: Option<Uuid>,
    pub credential_id: Uuid,
    pub family: KeyFamily,
    pub hash_alg: HashAlg,
    /// The tags of the hashes to sign ([`SadSeal::hash_tag`]), in request order.
    pub tags: &'a [String],
}

impl Claim<'_> {
    /// The tags of `hashes` for the SAD whose record is `sad_id` (none without a record).
    pub fn tags(seal: &SadSeal, sad_id: Option<Uuid>, hashes: &[Vec<u8>]) -> Vec<String> {
        match sad_id {
            Some(id) => hashes.iter().map(|h| seal.hash_tag(id, h)).collect(),
            None => Vec::new(),
        }
    }
}

fn keys(kv: &Kv, user_id: &str, sad: &str) -> (String, String) {
    let id = hex::encode(sha256(sad.as_bytes()));
    (
        kv.user_key(user_id, &["sad:", &id]),
        kv.user_key(user_id, &["sad:", &id, ":h"]),
    )
}

/// Bytes of a SAD: its 16-byte id, then 32 random bytes.
const SAD_LEN: usize = 48;

/// A new SAD for the record `sad_id`: the id travels inside it (so the hash tags can be
/// computed before Redis is asked), the random part makes it unguessable.
fn new_token(sad_id: Uuid) -> String {
    let mut bytes = [0u8; SAD_LEN];
    let (id, random) = bytes.split_at_mut(16);
    id.copy_from_slice(sad_id.as_bytes());
    rand::rngs::OsRng.fill_bytes(random);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The record id inside a SAD; `None` if it is not one of ours.
pub fn sad_id_of(sad: &str) -> Option<Uuid> {
    let mut bytes = [0u8; SAD_LEN];
    match URL_SAFE_NO_PAD.decode_slice(sad, &mut bytes) {
        Ok(SAD_LEN) => Uuid::from_slice(bytes.get(..16)?).ok(),
        _ => None,
    }
}

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The Redis lifetime of a SAD: its TTL, cut at the absolute deadline. `None` once past it.
pub fn lifetime(ttl_secs: u64, deadline: i64) -> Option<u64> {
    let left = deadline.saturating_sub(now_unix());
    u64::try_from(left)
        .ok()
        .filter(|&l| l > 0)
        .map(|l| l.min(ttl_secs))
}

/// KEYS: sad hash, hash-tag set, the credential's hold generation.
/// ARGV: ttl, credential, count, key algo, key family, purpose, hash OID, bound flag, SAD id,
/// deadline, database generation, certificate serial, binding HMAC, hash tags…
/// The SAD records the credential's Redis generation: a later suspension or revocation bumps
/// it, and the SAD never signs again, even after a resumption.
const CREATE: &str = r"
local g = redis.call('GET', KEYS[3]) or '0'
redis.call('HSET', KEYS[1], 'cred', ARGV[2], 'n', ARGV[3], 'N', ARGV[3], 'key', ARGV[4],
  'kt', ARGV[5], 'pu', ARGV[6], 'alg', ARGV[7], 'bound', ARGV[8], 'g', g, 'sid', ARGV[9],
  'dl', ARGV[10], 'dg', ARGV[11], 'sn', ARGV[12], 'm', ARGV[13])
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[8] == '1' then
  for i = 14, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
";

/// Stores a new SAD, sealed with `seal`; returns it.
pub async fn create(kv: &Kv, seal: &SadSeal, new: NewSad<'_>) -> Result<String, KvError> {
    static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CREATE));
    let token = new_token(new.sad_id);
    let (main, bound) = keys(kv, new.user_id, &token);
    let credential = new.credential_id.to_string();
    let count = new.count.to_string();
    let hash_oid = new.hash_alg.map(|h| h.oid()).unwrap_or_default();
    let flag = if new.hashes.is_some() { "1" } else { "0" };
    let deadline = new.deadline.to_string();
    let generation = new.generation.to_string();
    let mac = seal.binding(&Binding {
        sad_id: new.sad_id,
        user_id: new.user_id,
        credential_id: &credential,
        authorised: &count,
        key_algo: new.key_algo.as_str(),
        purpose: new.purpose.as_str(),
        hash_oid,
        bound: flag,
        deadline: &deadline,
        generation: &generation,
        serial_number: new.serial_number,
    });
    let mut invocation = SCRIPT.prepare_invoke();
    invocation
        .key(&main)
        .key(&bound)
        .key(generation_key(kv, new.user_id, new.credential_id))
        .arg(new.ttl_secs)
        .arg(&credential)
        .arg(&count)
        .arg(new.key_algo.as_str())
        .arg(new.key_algo.family().as_str())
        .arg(new.purpose.as_str())
        .arg(hash_oid)
        .arg(flag)
        .arg(new.sad_id.to_string())
        .arg(&deadline)
        .arg(&generation)
        .arg(new.serial_number)
        .arg(&mac);
    for hash in new.hashes.unwrap_or_default() {
        invocation.arg(seal.hash_tag(new.sad_id, hash));
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

/// KEYS: sad hash, hash-tag set, revoked-token marker, credential hold, generation, session
/// epoch (the last four read by one MGET: three Redis calls in all on the hot path).
/// ARGV: credential, count, key family, hash OID, the token's session epoch, hash tags…
/// The epoch is compared as `auth::session` does: the stored decimal string, missing = '0'.
/// Returns {'1', left, key algo, SAD id, authorised, hash OID, bound, deadline, database
/// generation, serial, HMAC} or {error code, detail}.
const CONSUME: &str = r"
local held = redis.call('MGET', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if held[1] then return {'-1', '0'} end
if (held[4] or '0') ~= ARGV[5] then return {'-10', '0'} end
if held[2] then return {'-9', '0'} end
local sad = redis.call('HMGET', KEYS[1], 'cred', 'n', 'alg', 'bound', 'kt', 'pu', 'key', 'g',
  'sid', 'N', 'dl', 'dg', 'sn', 'm')
if not sad[1] then return {'-2', '0'} end
if (held[3] or '0') ~= sad[8] then return {'-9', '0'} end
if sad[1] ~= ARGV[1] then return {'-3', '0'} end
if sad[5] ~= ARGV[3] then return {'-7', '0'} end
if sad[6] ~= 'signing' then return {'-8', '0'} end
local left = tonumber(sad[2])
local asked = tonumber(ARGV[2])
if not left or asked > left then return {'-4', tostring(left or 0)} end
if sad[3] ~= '' and sad[3] ~= ARGV[4] then return {'-5', '0'} end
if sad[4] == '1' then
  local seen = {}
  for i = 6, #ARGV do
    if seen[ARGV[i]] or redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then
      return {'-6', tostring(i - 5)}
    end
    seen[ARGV[i]] = true
  end
  for i = 6, #ARGV do redis.call('SREM', KEYS[2], ARGV[i]) end
end
redis.call('HSET', KEYS[1], 'n', left - asked)
return {'1', tostring(left - asked), sad[7] or '', sad[9] or '', sad[10] or '', sad[3] or '',
  sad[4] or '', sad[11] or '', sad[12] or '', sad[13] or '', sad[14] or ''}
";

static CONSUME_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CONSUME));

/// Checks and consumes `claim.tags.len()` signatures of a SAD, atomically, then checks that
/// the SAD's binding carries the gateway's HMAC and that its deadline has not passed.
pub async fn consume(
    kv: &Kv,
    seal: &SadSeal,
    claim: &Claim<'_>,
) -> Result<Result<Consumed, SadError>, KvError> {
    let Some(sad_id) = claim.sad_id else {
        return Ok(Err(SadError::Unknown));
    };
    let (main, bound) = keys(kv, claim.user_id, claim.sad);
    let revoked = crate::auth::session::revoked_key(kv, claim.user_id, claim.jti);
    let asked = u32::try_from(claim.tags.len()).unwrap_or(u32::MAX);
    let credential = claim.credential_id.to_string();
    let mut invocation = CONSUME_SCRIPT.prepare_invoke();
    invocation
        .key(&main)
        .key(&bound)
        .key(&revoked)
        .key(hold_key(kv, claim.user_id, claim.credential_id))
        .key(generation_key(kv, claim.user_id, claim.credential_id))
        .key(crate::auth::session::epoch_key(kv, claim.user_id))
        .arg(&credential)
        .arg(asked)
        .arg(claim.family.as_str())
        .arg(claim.hash_alg.oid())
        .arg(claim.epoch);
    for tag in claim.tags {
        invocation.arg(tag);
    }
    let mut conn = kv.loop_conn().await?;
    let reply: Vec<String> = match invocation.invoke_async(&mut conn).await {
        Ok(reply) => reply,
        Err(e) => {
            // No reply is no refusal: the script may have run, or may still run.
            if e.is_timeout()
                || e.is_connection_dropped()
                || !e.is_connection_refusal() && e.is_io_error()
            {
                give_back_after_stall(conn, GiveBack::of(kv, claim, true));
            }
            return Err(e.into());
        }
    };
    let field = |i: usize| reply.get(i).map_or("", String::as_str);
    let detail = field(1).parse::<u32>().unwrap_or(0);
    Ok(match field(0) {
        "1" => verify(seal, claim, sad_id, &credential, &reply, detail),
        "-1" => Err(SadError::TokenRevoked),
        "-10" => Err(SadError::SessionEnded),
        "-3" => Err(SadError::OtherCredential),
        "-4" => Err(SadError::Exhausted {
            left: detail,
            asked,
        }),
        "-5" => Err(SadError::HashAlgorithm),
        "-6" => Err(SadError::HashNotAuthorised {
            position: usize::try_from(detail).unwrap_or(0),
        }),
        "-7" => Err(SadError::KeyMismatch),
        "-8" => Err(SadError::NotSigning),
        "-9" => Err(SadError::CredentialHeld),
        _ => Err(SadError::Unknown),
    })
}

/// The checks of a consumed SAD that Redis cannot be trusted with: its HMAC and deadline.
fn verify(
    seal: &SadSeal,
    claim: &Claim<'_>,
    sad_id: Uuid,
    credential: &str,
    reply: &[String],
    left: u32,
) -> Result<Consumed, SadError> {
    let field = |i: usize| reply.get(i).map_or("", String::as_str);
    let (key_algo, stored_id, authorised, hash_oid, bound) =
        (field(2), field(3), field(4), field(5), field(6));
    let (deadline, generation, serial_number, mac) = (field(7), field(8), field(9), field(10));
    let expected = seal.binding(&Binding {
        sad_id,
        user_id: claim.user_id,
        credential_id: credential,
        authorised,
        key_algo,
        purpose: Purpose::Signing.as_str(),
        hash_oid,
        bound,
        deadline,
        generation,
        serial_number,
    });
    // The SAD's id is inside the SAD and under the HMAC; the stored copy must agree with it.
    if !crate::secrets::ct_eq(expected.as_bytes(), mac.as_bytes())
        || stored_id != sad_id.to_string()
    {
        tracing::warn!(user = claim.user_id, %sad_id, "a SAD in Redis failed its HMAC check");
        return Err(SadError::Forged);
    }
    match deadline.parse::<i64>() {
        Ok(d) if d > now_unix() => {}
        _ => return Err(SadError::Unknown),
    }
    Ok(Consumed {
        key_algo: key_algo.parse().map_err(|()| SadError::Forged)?,
        left,
        sad_id,
        serial_number: serial_number.to_owned(),
    })
}

/// KEYS: sad hash, hash-tag set, and (for a give-back after a Redis stall) a marker that makes
/// the give-back happen once however often it is sent. ARGV: count, hash tags…
const RESTORE: &str = r"
if KEYS[3] and not redis.call('SET', KEYS[3], '1', 'NX', 'EX', 300) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n', ARGV[1])
if redis.call('HGET', KEYS[1], 'bound') == '1' then
  for i = 2, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) else redis.call('DEL', KEYS[2]) end
end
return 1
";

static RESTORE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RESTORE));

/// What a give-back needs, owned (it may outlive the request).
struct GiveBack {
    main: String,
    bound: String,
    once: Option<String>,
    tags: Vec<String>,
}

impl GiveBack {
    fn of(kv: &Kv, claim: &Claim<'_>, once: bool) -> GiveBack {
        let (main, bound) = keys(kv, claim.user_id, claim.sad);
        let once = once.then(|| {
            let mut random = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut random);
            kv.user_key(claim.user_id, &["gb:", &hex::encode(random)])
        });
        GiveBack {
            main,
            bound,
            once,
            tags: claim.tags.to_vec(),
        }
    }

    async fn send(&self, conn: &mut KvConn) -> Result<(), redis::RedisError> {
        let mut invocation = RESTORE_SCRIPT.prepare_invoke();
        invocation.key(&self.main).key(&self.bound);
        if let Some(once) = &self.once {
            invocation.key(once);
        }
        invocation.arg(self.tags.len());
        for tag in &self.tags {
            invocation.arg(tag);
        }
        let _: i64 = invocation.invoke_async(conn).await?;
        Ok(())
    }
}

/// Gives back signatures consumed by a request that then failed (HSM or audit down), so the
/// subscriber loses nothing. Only while the SAD still exists; the tag set gets the SAD's
/// remaining lifetime (a set emptied by the consume is re-created, never without a TTL).
pub async fn restore(kv: &Kv, claim: &Claim<'_>) -> Result<(), KvError> {
    let mut conn = kv.conn();
    GiveBack::of(kv, claim, false).send(&mut conn).await?;
    Ok(())
}

/// Give-backs waiting for Redis to answer again; past this many, a stall's give-back is
/// dropped (and logged) rather than letting an outage grow the gateway's memory.
const MAX_PENDING_GIVE_BACKS: usize = 10_000;

/// A consume whose reply never came (Redis stalled or the connection dropped) may still run
/// when Redis answers again. Once Redis answers a PING on the same connection (commands on one
/// connection run in order, so the consume has run by then, if it ever will; on a cluster, the
/// PING goes to the master that holds the SAD, over that node's connection), give back what
/// it may have taken — once, however often the give-back is sent. If the consume never ran,
/// Redis is credited a little more than the truth; the SAD's durable record, which every
/// signHash's audit commit spends, still refuses any signature beyond what was authorised.
fn give_back_after_stall(conn: KvConn, give_back: GiveBack) {
    static PENDING: AtomicUsize = AtomicUsize::new(0);
    if PENDING.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_GIVE_BACKS {
        PENDING.fetch_sub(1, Ordering::Relaxed);
        tracing::error!("too many give-backs waiting for Redis: one SAD may lose signatures");
        return;
    }
    tokio::spawn(async move {
        let mut conn = conn;
        let mut delay = Duration::from_millis(200);
        let mut done = false;
        for _ in 0..40 {
            if conn.ping_holder_of(&give_back.main).await.is_ok() {
                // Other connections' queued commands run within the same moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if give_back.send(&mut conn).await.is_ok() {
                    done = true;
                    break;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        PENDING.fetch_sub(1, Ordering::Relaxed);
        if done {
            tracing::warn!("gave back the signatures of a signHash whose Redis call got no reply");
        } else {
            tracing::error!(
                "Redis did not come back: a timed-out signHash's signatures were not given back"
            );
        }
    });
}

/// An extended SAD.
#[derive(Debug)]
pub struct Extended {
    pub sad: String,
    pub sad_id: Uuid,
    /// Its new lifetime: the TTL, cut at the absolute deadline.
    pub expires_in: u64,
    /// How many hashes were given to bind it to (0: none; an unbound SAD ignores them).
    pub rebound: usize,
}

/// SCAL2 hashes for the SAD that an extendTransaction issues.
pub struct Rebind<'a> {
    /// Distinct, validated digests.
    pub hashes: &'a [Vec<u8>],
    /// Their algorithm as the client named it (`None`: not named).
    pub hash_alg: Option<HashAlg>,
}

/// KEYS: old sad hash, old hash-tag set, new sad hash, new hash-tag set, credential hold.
/// ARGV: credential, ttl, now, hash OID named by the client ('' if none), hash tags…
/// Returns the new TTL (> 0), 0 if the SAD is unknown, expired, past its deadline, held or
/// another credential's, -1 if the SAD is bound to another hash algorithm, or -2 - left if it
/// has fewer signatures left than hashes were given.
/// A SAD bound to hashes (SCAL2) and given hashes is bound to exactly those from now on: its
/// count is unchanged, so the hashes replace what it could still sign and never add to it.
/// An unbound (SCAL1) SAD ignores them, as CSC says.
const EXTEND: &str = r"
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'cred', 'dl', 'bound', 'alg', 'n')
if f[1] ~= ARGV[1] then return 0 end
local ttl = math.min(tonumber(ARGV[2]), (tonumber(f[2]) or 0) - tonumber(ARGV[3]))
if ttl <= 0 then return 0 end
local rebind = f[3] == '1' and #ARGV >= 5
if rebind then
  if ARGV[4] ~= '' and ARGV[4] ~= f[4] then return -1 end
  local left = tonumber(f[5]) or 0
  if #ARGV - 4 > left then return -2 - left end
end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('EXPIRE', KEYS[3], ttl)
if rebind then
  redis.call('DEL', KEYS[2])
  for i = 5, #ARGV do redis.call('SADD', KEYS[4], ARGV[i]) end
  redis.call('EXPIRE', KEYS[4], ttl)
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[4])
  redis.call('EXPIRE', KEYS[4], ttl)
end
return ttl
";

/// Replaces a live SAD of `credential_id` by a fresh one with what it has left and a renewed
/// lifetime, never past its absolute deadline; the old one stops working (one script: of
/// concurrent extensions of one SAD, one wins). With `rebind`, a SCAL2 SAD's new one signs
/// exactly those hashes (at most as many as it has signatures left). `Ok(None)` if the SAD is
/// unknown, expired, past its deadline, held or not this credential's.
pub async fn extend(
    kv: &Kv,
    seal: &SadSeal,
    user_id: &str,
    credential_id: Uuid,
    sad: &str,
    ttl_secs: u64,
    rebind: Option<Rebind<'_>>,
) -> Result<Result<Option<Extended>, SadError>, KvError> {
    static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(EXTEND));
    let Some(sad_id) = sad_id_of(sad) else {
        return Ok(Ok(None));
    };
    let token = new_token(sad_id);
    let (old_main, old_bound) = keys(kv, user_id, sad);
    let (new_main, new_bound) = keys(kv, user_id, &token);
    let mut invocation = SCRIPT.prepare_invoke();
    invocation
        .key(old_main)
        .key(old_bound)
        .key(new_main)
        .key(new_bound)
        .key(hold_key(kv, user_id, credential_id))
        .arg(credential_id.to_string())
        .arg(ttl_secs)
        .arg(now_unix())
        .arg(
            rebind
                .as_ref()
                .and_then(|r| r.hash_alg)
                .map(HashAlg::oid)
                .unwrap_or_default(),
        );
    let hashes = rebind.as_ref().map_or(&[][..], |r| r.hashes);
    for hash in hashes {
        invocation.arg(seal.hash_tag(sad_id, hash));
    }
    let mut conn = kv.conn();
    let ttl: i64 = invocation.invoke_async(&mut conn).await?;
    Ok(match ttl {
        -1 => Err(SadError::HashAlgorithm),
        t if t <= -2 => Err(SadError::Exhausted {
            left: u32::try_from(-2 - t).unwrap_or(0),
            asked: u32::try_from(hashes.len()).unwrap_or(u32::MAX),
        }),
        t => Ok(u64::try_from(t)
            .ok()
            .filter(|&t| t > 0)
            .map(|expires_in| Extended {
                sad: token,
                sad_id,
                expires_in,
                rebound: hashes.len(),
            })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sad_carries_its_record_id_and_nothing_else_parses() {
        let id = Uuid::new_v4();
        let sad = new_token(id);
        assert_eq!(sad_id_of(&sad), Some(id));
        assert_ne!(new_token(id), sad, "the random part differs");
        assert_eq!(sad_id_of("not-a-sad"), None);
        assert_eq!(sad_id_of(&sad[..sad.len() - 2]), None);
        assert_eq!(sad_id_of(&format!("{sad}AA")), None);
    }

    #[test]
    fn bindings_and_tags_depend_on_every_field_and_the_key() {
        let seal = SadSeal::from_key(b"k1");
        let id = Uuid::new_v4();
        let base = Binding {
            sad_id: id,
            user_id: "alice",
            credential_id: "c",
            authorised: "3",
            key_algo: "ec-p256",
            purpose: "signing",
            hash_oid: "",
            bound: "1",
            deadline: "100",
            generation: "0",
            serial_number: "01",
        };
        let mac = seal.binding(&base);
        assert_ne!(mac, SadSeal::from_key(b"k2").binding(&base));
        assert_ne!(
            mac,
            seal.binding(&Binding {
                authorised: "4",
                ..base
            })
        );
        assert_ne!(
            mac,
            seal.binding(&Binding {
                deadline: "101",
                ..base
            })
        );
        assert_ne!(
            mac,
            seal.binding(&Binding {
                generation: "1",
                ..base
            })
        );
        assert_ne!(
            mac,
            seal.binding(&Binding {
                user_id: "alicf",
                ..base
            })
        );
        // Length prefixes: moving a character from one field to the next changes the input.
        assert_ne!(
            mac,
            seal.binding(&Binding {
                user_id: "alic",
                credential_id: "ec",
                ..base
            })
        );
        let tag = seal.hash_tag(id, &[1; 32]);
        assert_eq!(tag.len(), 32);
        assert_ne!(tag, seal.hash_tag(Uuid::new_v4(), &[1; 32]));
        assert_ne!(tag, seal.hash_tag(id, &[2; 32]));
    }

    #[test]
    fn lifetimes_stop_at_the_deadline() {
        let now = now_unix();
        assert_eq!(lifetime(300, now + 900), Some(300));
        assert_eq!(
            lifetime(300, now + 100).map(|l| (99..=100).contains(&l)),
            Some(true)
        );
        assert_eq!(lifetime(300, now), None);
        assert_eq!(lifetime(300, now - 5), None);
    }

    /// Every key set a SAD script or transaction is given, built as `create`, `consume`,
    /// `restore`, `extend` and `hold` build it: one slot each, so Redis Cluster runs them.
    #[tokio::test]
    async fn every_sad_script_touches_one_slot() {
        use crate::auth::session::{epoch_key, revoked_key};
        use crate::kv::slot;
        let kv = Kv::detached("sigillo:");
        for user in ["alice", "user-0123456789ab", "mario.rossi@example.org"] {
            let credential = Uuid::new_v4();
            let sad = new_token(Uuid::new_v4());
            let (main, bound) = keys(&kv, user, &sad);
            let (new_main, new_bound) = keys(&kv, user, &new_token(Uuid::new_v4()));
            let hold = hold_key(&kv, user, credential);
            let generation = generation_key(&kv, user, credential);
            let tags = [String::from("t")];
            let claim = Claim {
                user_id: user,
                jti: "0123456789abcdef",
                epoch: 0,
                sad: &sad,
                sad_id: sad_id_of(&sad),
                credential_id: credential,
                family: KeyFamily::Ec,
                hash_alg: HashAlg::Sha256,
                tags: &tags,
            };
            let give_back = GiveBack::of(&kv, &claim, true);
            let once = give_back.once.clone().unwrap_or_default();
            let sets: [(&str, Vec<String>); 5] = [
                (
                    "create",
                    vec![main.clone(), bound.clone(), generation.clone()],
                ),
                (
                    "consume",
                    vec![
                        main.clone(),
                        bound.clone(),
                        revoked_key(&kv, user, claim.jti),
                        hold.clone(),
                        generation.clone(),
                        epoch_key(&kv, user),
                    ],
                ),
                ("restore", vec![give_back.main, give_back.bound, once]),
                (
                    "extend",
                    vec![main, bound, new_main, new_bound, hold.clone()],
                ),
                ("hold", vec![hold, generation]),
            ];
            for (script, set) in sets {
                let slots: Vec<u16> = set.iter().map(|k| slot(k)).collect();
                assert!(
                    slots.iter().all(|&s| s == slot(user)),
                    "{script} for {user}: {set:?} in slots {slots:?}"
                );
            }
        }
    }
}
