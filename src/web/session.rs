//! The browser session of the pages: a random id in a cookie, its SHA-256 in Redis with the
//! user id and the session epoch of the sign-in, refreshed on each use and gone after
//! `web.session_idle_secs` without one.
//!
//! Invariants: the id is never stored (only its digest); a session is over when the user's
//! session epoch moves (password or OTP device change, refresh replay: `auth::session`), so
//! whatever ends every token also ends every page session; ending a session deletes it on
//! every node at once.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::sha::sha256;
use rand::RngCore;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::auth::{session, AuthError};
use crate::kv::{Kv, KvError};

/// A signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebSession {
    pub user_id: String,
    /// The user's session epoch when they signed in.
    pub epoch: u64,
}

/// How a session cookie is sent: `Strict` for pages reached only from the service itself (the
/// portal); `Lax` for pages a browser reaches by a top-level link from another site (the
/// OAuth2 authorization page, which is reached from the client application's site and must
/// see the session on that very navigation). Forms are CSRF-protected either way.
#[derive(Debug, Clone, Copy)]
pub struct SessionCookie {
    pub name: &'static str,
    pub same_site: SameSite,
    pub idle_secs: u64,
}

fn key(kv: &Kv, id: &str) -> String {
    kv.key(&format!(
        "web:session:{}",
        hex::encode(sha256(id.as_bytes()))
    ))
}

impl SessionCookie {
    /// Starts a session of `user_id` at `epoch`; returns the cookie to set.
    pub async fn start(
        &self,
        kv: &Kv,
        user_id: &str,
        epoch: u64,
        secure: bool,
    ) -> Result<Cookie<'static>, KvError> {
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let id = URL_SAFE_NO_PAD.encode(random);
        let value = serde_json::to_string(&WebSession {
            user_id: user_id.to_owned(),
            epoch,
        })
        .unwrap_or_default();
        let mut conn = kv.conn();
        let () = conn.set_ex(key(kv, &id), value, self.idle_secs).await?;
        Ok(Cookie::build(self.name, id)
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(self.same_site)
            .finish())
    }

    /// The live session of `req`, its idle timer restarted; `None` without one, after its
    /// idle timeout, or once the user's session epoch moved on.
    pub async fn find(&self, kv: &Kv, req: &HttpRequest) -> Result<Option<WebSession>, AuthError> {
        let Some(cookie) = req.cookie(self.name) else {
            return Ok(None);
        };
        if cookie.value().len() != 43 {
            return Ok(None);
        }
        let mut conn = kv.conn();
        let stored: Option<String> = redis::cmd("GETEX")
            .arg(key(kv, cookie.value()))
            .arg("EX")
            .arg(self.idle_secs)
            .query_async(&mut conn)
            .await
            .map_err(KvError)?;
        let Some(found) = stored.and_then(|s| serde_json::from_str::<WebSession>(&s).ok()) else {
            return Ok(None);
        };
        if session::current_epoch(kv, &found.user_id).await? != found.epoch {
            return Ok(None);
        }
        Ok(Some(found))
    }

    /// Ends the session of `req` (if any) on every node; returns the cookie that clears it.
    pub async fn end(&self, kv: &Kv, req: &HttpRequest) -> Result<Cookie<'static>, KvError> {
        if let Some(cookie) = req.cookie(self.name) {
            let mut conn = kv.conn();
            let _: u64 = conn.del(key(kv, cookie.value())).await?;
        }
        let mut gone = Cookie::build(self.name, "")
            .path("/")
            .http_only(true)
            .same_site(self.same_site)
            .finish();
        gone.make_removal();
        Ok(gone)
    }
}
