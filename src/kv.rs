//! Redis: short-lived security state (OTPs, attempt counters, rate limits). Every key carries
//! the configured prefix, so several gateways or tests can share one Redis.

use redis::aio::ConnectionManager;

use crate::config::RedisConfig;

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct KvError(#[from] pub redis::RedisError);

/// A multiplexed, auto-reconnecting Redis connection plus the key prefix.
#[derive(Clone)]
pub struct Kv {
    conn: ConnectionManager,
    prefix: std::sync::Arc<str>,
}

impl Kv {
    pub async fn connect(config: &RedisConfig) -> Result<Kv, KvError> {
        let client = redis::Client::open(config.url.expose())?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Kv {
            conn,
            prefix: config.key_prefix.as_str().into(),
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

    pub async fn ping(&self) -> Result<(), KvError> {
        let mut conn = self.conn();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

impl Kv {
    /// A key in `user_id`'s hash slot: SADs, revoked tokens and refresh tokens of one user share
    /// the `{user_id}` hash tag, so one Lua script may touch them all on Redis Cluster too.
    pub fn user_key(&self, user_id: &str, name: &str) -> String {
        format!("{}u:{{{user_id}}}:{name}", self.prefix)
    }
}
