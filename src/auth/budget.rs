//! The wrong-password budget, shared by every place that checks a password (login, password
//! change, OTP device change).
//!
//! Invariant: an attempt is RESERVED in Redis, atomically, before Argon2 runs, and given back
//! only when the password was right (or was never checked). So however many requests arrive at
//! once, at most `login_max_failures` wrong passwords of one user id, and at most
//! `login_max_failures_per_addr` from one client address, are checked per window; past that the
//! answer is 429 with the window's remaining time, the right password included.

use std::net::IpAddr;
use std::sync::LazyLock;

use redis::Script;

use super::{verify_password_bounded, AuthError};
use crate::config::threads_or_cores;
use crate::kv::KvError;
use crate::services::Services;

/// KEYS[1] the counter, ARGV[1] the limit, ARGV[2] the window. Returns 0 when the attempt is
/// reserved, else the seconds until the window ends. The window starts at the first attempt.
const RESERVE: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return math.max(ttl, 1)
end
return 0
";

/// Gives an attempt back, without ever creating a counter (whose window may have ended).
const GIVE_BACK: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
";

static RESERVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RESERVE));
static GIVE_BACK_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GIVE_BACK));

/// Attempts taken from the budgets, to give back if the password turns out right.
#[must_use = "a reservation is settled: given back when the password was right"]
pub struct Reservation {
    counters: Vec<String>,
}

/// The counter of a client address: IPv6 by /64, the block one subscriber line gets.
pub(crate) fn addr_bucket(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

async fn reserve_one(
    services: &Services,
    counter: &str,
    limit: u32,
) -> Result<Option<u64>, AuthError> {
    let mut conn = services.kv.conn();
    let retry_after: u64 = RESERVE_SCRIPT
        .key(counter)
        .arg(limit)
        .arg(services.config.security.login_window_secs)
        .invoke_async(&mut conn)
        .await
        .map_err(KvError)?;
    Ok((retry_after > 0).then_some(retry_after))
}

/// Reserves one attempt from the budget of `user_id` (if it could be a user id) and of `addr`;
/// refuses with the window's remaining time when either is spent.
pub async fn reserve(
    services: &Services,
    user_id: Option<&str>,
    addr: Option<IpAddr>,
) -> Result<Reservation, AuthError> {
    let security = &services.config.security;
    let mut budgets = Vec::with_capacity(2);
    if let Some(user_id) = user_id.filter(|u| crate::enrolment::valid_user_id(u)) {
        budgets.push((
            services.kv.user_key(user_id, &["login-fail"]),
            security.login_max_failures,
        ));
    }
    if let Some(addr) = addr {
        budgets.push((
            services
                .kv
                .key(&format!("login-fail-addr:{}", addr_bucket(addr))),
            security.login_max_failures_per_addr,
        ));
    }
    let mut reservation = Reservation {
        counters: Vec::with_capacity(budgets.len()),
    };
    for (counter, limit) in budgets {
        if let Some(retry_after_secs) = reserve_one(services, &counter, limit).await? {
            reservation.give_back(services).await?;
            return Err(AuthError::TooManyAttempts { retry_after_secs });
        }
        reservation.counters.push(counter);
    }
    Ok(reservation)
}

impl Reservation {
    /// Returns the attempts: the password was right, or was never checked.
    pub async fn give_back(self, services: &Services) -> Result<(), AuthError> {
        let mut conn = services.kv.conn();
        for counter in &self.counters {
            let () = GIVE_BACK_SCRIPT
                .key(counter)
                .invoke_async(&mut conn)
                .await
                .map_err(KvError)?;
        }
        Ok(())
    }

    /// Keeps the attempts if the password was wrong; gives them back otherwise.
    pub async fn settle(
        self,
        services: &Services,
        checked: &Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        match checked {
            Ok(false) => Ok(()),
            Ok(true) | Err(_) => self.give_back(services).await,
        }
    }
}

/// How many password checks may wait for an Argon2 slot before more are refused.
pub fn argon2_queue(services: &Services) -> usize {
    match services.config.security.argon2_queue {
        0 => threads_or_cores(0).saturating_mul(8),
        n => n,
    }
}

/// True if `password` matches `phc`, the stored hash of `user_id`: checked within the user's
/// budget, so the portal's password change and the OTP device change cannot be used to guess
/// faster than login.
pub async fn check_user_password(
    services: &Services,
    user_id: &str,
    phc: &str,
    password: &str,
) -> Result<bool, AuthError> {
    let reservation = reserve(services, Some(user_id), None).await?;
    let checked =
        verify_password_bounded(password.to_owned(), phc.to_owned(), argon2_queue(services)).await;
    reservation.settle(services, &checked).await?;
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_bucketed_per_line() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(addr_bucket(v4), "203.0.113.7");
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(addr_bucket(a), addr_bucket(b));
        assert_eq!(addr_bucket(a), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(addr_bucket(mapped), "203.0.113.7");
    }
}
