//! CSRF protection of every form: a double-submit token. The browser holds a random token in a
//! cookie (HttpOnly, SameSite=Strict, Secure and `__Host-` prefixed under TLS); each form
//! carries the same token in a hidden field; a POST whose field does not equal its cookie is
//! refused before anything else runs.
//!
//! Why double-submit rather than a token stored with a server session: it needs no server
//! state, so any gateway node serves the form's POST, the same check serves pages before and
//! after sign-in (the OAuth2 login form has no session yet), and the portal reuses it beside
//! its own session cookie. A cross-site page can neither read the cookie nor set it (the
//! `__Host-` prefix stops a sibling subdomain from planting one under TLS), and SameSite=Strict
//! keeps the browser from sending it with a cross-site POST at all.

use std::future::{ready, Ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::error::ApiError;
use crate::secrets::ct_eq;
use crate::services::Services;

/// The cookie's name over plain HTTP (development, tests behind loopback).
const PLAIN_NAME: &str = "sigillo_csrf";
/// The cookie's name under TLS: the `__Host-` prefix makes the browser refuse it unless it is
/// Secure, has no Domain and has Path=/.
const TLS_NAME: &str = "__Host-sigillo_csrf";
/// Characters of a token: 32 random bytes, base64url.
const TOKEN_LEN: usize = 43;

/// The CSRF token of this browser: the one its cookie holds, or a new one (then set on the
/// response by [`Csrf::apply`]).
#[derive(Debug, Clone)]
pub struct Csrf {
    token: String,
    fresh: bool,
    tls: bool,
}

impl Csrf {
    /// The token to put in the form's hidden `csrf` field.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// True iff `submitted` (a form's `csrf` field) equals the token of the cookie the browser
    /// sent. A browser that sent no cookie never passes.
    pub fn verify(&self, submitted: &str) -> bool {
        !self.fresh && ct_eq(submitted.as_bytes(), self.token.as_bytes())
    }

    /// Sets the cookie on `response` when the token is new.
    pub fn apply(&self, response: &mut HttpResponse) {
        if !self.fresh {
            return;
        }
        let cookie = Cookie::build(self.name(), self.token.clone())
            .path("/")
            .http_only(true)
            .secure(self.tls)
            .same_site(SameSite::Strict)
            .finish();
        if let Err(e) = response.add_cookie(&cookie) {
            tracing::warn!(error = %e, "could not set the CSRF cookie");
        }
    }

    fn name(&self) -> &'static str {
        if self.tls {
            TLS_NAME
        } else {
            PLAIN_NAME
        }
    }

    fn of(req: &HttpRequest) -> Csrf {
        let tls = req
            .app_data::<web::Data<Services>>()
            .is_some_and(|s| s.config.tls.enabled());
        let name = if tls { TLS_NAME } else { PLAIN_NAME };
        match req.cookie(name) {
            Some(c) if is_token(c.value()) => Csrf {
                token: c.value().to_owned(),
                fresh: false,
                tls,
            },
            _ => {
                let mut random = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut random);
                Csrf {
                    token: URL_SAFE_NO_PAD.encode(random),
                    fresh: true,
                    tls,
                }
            }
        }
    }
}

fn is_token(value: &str) -> bool {
    value.len() == TOKEN_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FromRequest for Csrf {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Csrf::of(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_token_never_verifies_and_a_sent_one_must_match() {
        let fresh = Csrf {
            token: "a".repeat(TOKEN_LEN),
            fresh: true,
            tls: false,
        };
        assert!(!fresh.verify(&"a".repeat(TOKEN_LEN)), "no cookie, no pass");
        let sent = Csrf {
            fresh: false,
            ..fresh
        };
        assert!(sent.verify(&"a".repeat(TOKEN_LEN)));
        assert!(!sent.verify(&"b".repeat(TOKEN_LEN)));
        assert!(!sent.verify(""));
        assert!(is_token(&URL_SAFE_NO_PAD.encode([7u8; 32])));
        assert!(!is_token("short"));
        assert!(!is_token(&format!("{};", "a".repeat(TOKEN_LEN - 1))));
    }
}
