//! Redis: short-lived security state (OTPs, attempt counters, rate limits). Every key carries
//! the configured prefix, so several gateways or tests can share one Redis.
//!
//! One Redis server (`redis.url`) or a Redis Cluster (`redis.cluster_urls`). Invariant for
//! the cluster: every Lua script, transaction and multi-key command touches keys of ONE hash
//! slot, the slot of the user it is about: such keys are named by [`Kv::user_key`], which puts
//! the user id in a hash tag (`{user_id}`); keys named by [`Kv::key`] are only ever used alone.
//! A script whose keys fell in two slots would be refused by the cluster (CROSSSLOT).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::OnceCell;

use crate::config::RedisConfig;

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct KvError(#[from] pub redis::RedisError);

/// A connection to the one Redis server or to the cluster; commands, scripts and pipelines
/// go through either alike (it is a [`ConnectionLike`]). Cheap to clone.
#[derive(Clone)]
pub enum KvConn {
    /// Multiplexed and auto-reconnecting.
    Single(ConnectionManager),
    /// Routes each command to the master of its keys' slot, follows MOVED/ASK, reconnects.
    Cluster(ClusterConnection),
}

impl ConnectionLike for KvConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            KvConn::Single(conn) => conn.req_packed_command(cmd),
            KvConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            KvConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            KvConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            KvConn::Single(conn) => conn.get_db(),
            KvConn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl KvConn {
    /// Waits for an answer from the server that holds `key`, over this connection: a PING to
    /// the one server, or to the master of `key`'s slot on a cluster (a plain PING would go
    /// to every master and wait for all of them).
    pub async fn ping_holder_of(&mut self, key: &str) -> Result<(), redis::RedisError> {
        match self {
            KvConn::Single(conn) => {
                let _: String = redis::cmd("PING").query_async(conn).await?;
            }
            KvConn::Cluster(conn) => {
                let route = Route::with_key(key, SlotAddr::Master);
                conn.route_command(
                    redis::cmd("PING"),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Opens connections of the configured kind.
#[derive(Clone)]
enum Opener {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

impl Opener {
    async fn open(&self, timeout: Duration) -> Result<KvConn, redis::RedisError> {
        match self {
            Opener::Single(client) => {
                ConnectionManager::new_with_config(client.as_ref().clone(), manager_config(timeout))
                    .await
                    .map(KvConn::Single)
            }
            // Each node's connection attempt is bounded by `timeout`; the whole opening (the
            // seed nodes, the slot map, a connection per master) by a few of them.
            Opener::Cluster(client) => {
                match tokio::time::timeout(timeout.saturating_mul(4), client.get_async_connection())
                    .await
                {
                    Ok(conn) => conn.map(KvConn::Cluster),
                    Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
                }
            }
        }
    }
}

/// A multiplexed, auto-reconnecting connection to Redis (one server or a cluster) plus the
/// key prefix.
#[derive(Clone)]
pub struct Kv {
    conn: KvConn,
    opener: Opener,
    /// Names this Kv (and its clones) among the loop-local connections of a thread.
    id: u64,
    prefix: std::sync::Arc<str>,
    /// Bounds every connection attempt and every command (`redis.timeout_ms`).
    timeout: Duration,
}

type LoopConnections = HashMap<(u64, tokio::runtime::Id), Rc<OnceCell<KvConn>>>;

thread_local! {
    /// The connections whose driver runs on this thread's single-threaded event loop.
    static LOOP_CONNECTIONS: RefCell<LoopConnections> = RefCell::new(HashMap::new());
}

impl Kv {
    /// Connects to `config.cluster_urls` if set, else to `config.url`.
    pub async fn connect(config: &RedisConfig) -> Result<Kv, KvError> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let opener = if config.cluster_urls.is_empty() {
            Opener::Single(Box::new(client(config)?))
        } else {
            Opener::Cluster(Box::new(cluster_client(config, timeout)?))
        };
        let conn = connect_at_start(&opener, timeout).await?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Kv {
            conn,
            opener,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            prefix: config.key_prefix.as_str().into(),
            timeout,
        })
    }

    /// The full key for `name` (e.g. `otp:sms:alice`).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A connection handle (cheap clone of the multiplexed connection).
    pub fn conn(&self) -> KvConn {
        self.conn.clone()
    }

    /// The hot path's connection. On a single-threaded event loop (each actix worker runs
    /// one), a connection of that loop, opened on first use: its driver runs on the same thread,
    /// so a round trip wakes no other thread (with the shared connection, whose driver runs on
    /// the main runtime, each one woke a thread there and then the worker again). Elsewhere,
    /// the shared connection. On a cluster alike: the loop's own cluster connection (one
    /// connection per master), opened on first use.
    pub async fn loop_conn(&self) -> Result<KvConn, KvError> {
        let Some(runtime) = Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread)
        else {
            return Ok(self.conn());
        };
        let cell = LOOP_CONNECTIONS.with(|all| {
            all.borrow_mut()
                .entry((self.id, runtime.id()))
                .or_default()
                .clone()
        });
        let conn = cell
            .get_or_try_init(|| self.opener.open(self.timeout))
            .await?;
        Ok(conn.clone())
    }

    /// Checks that Redis answers; on a cluster, every master (PING goes to each).
    pub async fn ping(&self) -> Result<(), KvError> {
        let mut conn = self.conn();
        let _: Value = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// The client for `config.url`; a `rediss://` URL with `ca_file` trusts that CA (besides the
/// system's) for the server's certificate, whose host name is checked as for any `rediss://`.
fn client(config: &RedisConfig) -> Result<redis::Client, KvError> {
    if config.ca_file.as_os_str().is_empty() {
        return Ok(redis::Client::open(config.url.expose())?);
    }
    let root_cert = std::fs::read(&config.ca_file).map_err(redis::RedisError::from)?;
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    };
    Ok(redis::Client::build_with_tls(
        config.url.expose(),
        certificates,
    )?)
}

/// The client of a Redis Cluster: `config.cluster_urls` are some of its nodes (the others are
/// learnt from them). The same bounds as for one server: each connection attempt and each
/// command (with its redirections and retries) gives up after `timeout`. `rediss://` URLs
/// trust the system's certificates (`redis.ca_file` is for one server; config refuses both).
fn cluster_client(config: &RedisConfig, timeout: Duration) -> Result<ClusterClient, KvError> {
    let urls: Vec<&str> = config.cluster_urls.iter().map(|u| u.expose()).collect();
    Ok(ClusterClientBuilder::new(urls)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()?)
}

/// How every connection is managed: each connection attempt and each command gives up after
/// `timeout`, and a lost connection is reopened by one attempt, not a series with backoff
/// (the redis crate's default, 6 attempts over about 6 s, held every request waiting on it
/// while Redis was down). A request that meets a dead Redis fails within about two
/// `timeout`s (503 with Retry-After); the next one tries again, so the gateway serves again
/// as soon as Redis is back, with no restart.
fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(0)
}

/// The first connection, at start-up: a few attempts over about 3 s (Redis may be starting
/// beside the gateway), each bounded by `timeout`.
async fn connect_at_start(opener: &Opener, timeout: Duration) -> Result<KvConn, KvError> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match opener.open(timeout).await {
            Ok(conn) => return Ok(conn),
            Err(e) if attempt >= 5 => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, attempt, "redis not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

impl Kv {
    /// A key in `user_id`'s hash slot, named by the concatenation of `name`: SADs, revoked
    /// tokens and refresh tokens of one user share the `{user_id}` hash tag, so one Lua script
    /// may touch them all on Redis Cluster too. Built without `format!`: signHash names five
    /// keys per request.
    pub fn user_key(&self, user_id: &str, name: &[&str]) -> String {
        let parts = [&*self.prefix, "u:{", user_id, "}:"];
        let len = parts.iter().chain(name).map(|p| p.len()).sum();
        let mut key = String::with_capacity(len);
        parts.iter().chain(name).for_each(|p| key.push_str(p));
        key
    }
}

#[cfg(test)]
impl Kv {
    /// A Kv that names keys as a gateway with `prefix` does and never reaches a server (its
    /// cluster connection waits for nodes that do not exist): for tests of key names. Needs a
    /// tokio runtime.
    pub(crate) fn detached(prefix: &str) -> Kv {
        let client = ClusterClientBuilder::new(["redis://127.0.0.1:1/"])
            .response_timeout(Duration::from_millis(1))
            .build()
            .expect("a valid URL");
        let conn =
            client.get_pending_async_connection_with_config(redis::cluster::ClusterConfig::new());
        Kv {
            conn: KvConn::Cluster(conn),
            opener: Opener::Cluster(Box::new(client)),
            id: u64::MAX,
            prefix: prefix.into(),
            timeout: Duration::from_millis(1),
        }
    }
}

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag, or of the whole key without
/// one, mod 16384 (the Redis Cluster specification).
#[cfg(test)]
pub(crate) fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = bytes.get(open + 1..)?;
        let close = rest.iter().position(|&b| b == b'}')?;
        rest.get(..close).filter(|tag| !tag.is_empty())
    });
    let crc = tagged.unwrap_or(bytes).iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    });
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_computed_as_redis_cluster_does() {
        // Values of CLUSTER KEYSLOT on a real cluster.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("somekey"), 11058);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_ne!(
            slot("foo{}{bar}"),
            slot("bar"),
            "an empty tag hashes the whole key"
        );
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
        for key in ["foo", "a{b}c", "x{}y", "{}", "{", "}"] {
            assert_eq!(
                redis::cluster_routing::Slot::new(slot(key)),
                Some(redis::cluster_routing::Slot::for_key(key)),
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn a_users_keys_share_one_slot_whatever_the_prefix_and_user() {
        for prefix in ["sigillo:", "t_0123456789ab:", ""] {
            let kv = Kv::detached(prefix);
            for user in ["alice", "user-0123456789ab", "mario.rossi@example.org"] {
                let first = slot(&kv.user_key(user, &["sad:", "00"]));
                assert_eq!(first, slot(user), "the user id is the tag");
                assert_eq!(first, slot(&kv.user_key(user, &["epoch"])));
                assert_ne!(kv.user_key(user, &["a"]), kv.user_key(user, &["b"]));
            }
        }
    }
}
