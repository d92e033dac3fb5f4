//! Redis: short-lived security state (OTPs, attempt counters, rate limits). Every key carries
//! the configured prefix, so several gateways or tests can share one Redis.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::OnceCell;

use crate::config::RedisConfig;

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct KvError(#[from] pub redis::RedisError);

/// A multiplexed, auto-reconnecting Redis connection plus the key prefix.
#[derive(Clone)]
pub struct Kv {
    conn: ConnectionManager,
    client: redis::Client,
    /// Names this Kv (and its clones) among the loop-local connections of a thread.
    id: u64,
    prefix: std::sync::Arc<str>,
    /// Bounds every connection attempt and every command (`redis.timeout_ms`).
    timeout: Duration,
}

type LoopConnections = HashMap<(u64, tokio::runtime::Id), Rc<OnceCell<ConnectionManager>>>;

thread_local! {
    /// The connections whose driver runs on this thread's single-threaded event loop.
    static LOOP_CONNECTIONS: RefCell<LoopConnections> = RefCell::new(HashMap::new());
}

impl Kv {
    pub async fn connect(config: &RedisConfig) -> Result<Kv, KvError> {
        let client = client(config)?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let conn = connect_at_start(&client, timeout).await?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Kv {
            conn,
            client,
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
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The hot path's connection. On a single-threaded event loop (each actix worker runs
    /// one), a connection of that loop, opened on first use: its driver runs on the same thread,
    /// so a round trip wakes no other thread (with the shared connection, whose driver runs on
    /// the main runtime, each one woke a thread there and then the worker again). Elsewhere,
    /// the shared connection.
    pub async fn loop_conn(&self) -> Result<ConnectionManager, KvError> {
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
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(
                    self.client.clone(),
                    manager_config(self.timeout),
                )
            })
            .await?;
        Ok(conn.clone())
    }

    pub async fn ping(&self) -> Result<(), KvError> {
        let mut conn = self.conn();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
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
async fn connect_at_start(
    client: &redis::Client,
    timeout: Duration,
) -> Result<ConnectionManager, KvError> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match ConnectionManager::new_with_config(client.clone(), manager_config(timeout)).await {
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
