//! The CSC v2 authorization server (CSC API v2 §8), on the public listener: clients registered
//! by the operator (`clients`), authorization requests pushed (RFC 9126) or sent on the page's
//! URL (`request`), the authorization page (`pages`, user id + password, then PIN + OTP for a
//! credential), single-use codes (`codes`), the token endpoint (`token`, authorization code
//! with PKCE S256 only), revocation (RFC 7009) and the metadata (RFC 8414) (`endpoints`).
//!
//! Invariants: a code is valid once, for `oauth2.code_ttl_secs`, for the client, redirect URI
//! and PKCE challenge it was issued for; redirect URIs are matched exactly against the
//! registered ones, and nothing is ever redirected to an unregistered URI; a `credential`
//! token carries a SAD issued by `activation::authorize` after the same PIN and OTP checks as
//! `credentials/authorize`, so signHash spends it under every rule of a SAD (count, hashes,
//! credential, one atomic consumption, durable record, audit); a `credential` token works for
//! nothing but signHash.

pub mod clients;
pub mod codes;
pub mod endpoints;
pub mod pages;
pub mod request;
pub mod token;

use crate::audit::AuditError;
use crate::auth::AuthError;
use crate::db::DbError;
use crate::kv::KvError;

/// The scope of a token that lists credentials and reads their info.
pub const SCOPE_SERVICE: &str = "service";
/// The scope of a token that signs what the subscriber authorised.
pub const SCOPE_CREDENTIAL: &str = "credential";

/// Why an OAuth2 request is refused; each variant is an RFC 6749 / 9396 error code.
#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    #[error("{0}")]
    InvalidRequest(String),
    /// Unknown client, wrong secret, or a public client sending one.
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    UnauthorizedClient(&'static str),
    #[error("only grant_type=authorization_code is supported")]
    UnsupportedGrantType,
    #[error("only response_type=code is supported")]
    UnsupportedResponseType,
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidAuthorizationDetails(String),
    /// The subscriber cancelled on the authorization page.
    #[error("the subscriber did not authorise the request")]
    AccessDenied,
    /// Admin API: a client with this id exists.
    #[error("a client with this client_id is already registered")]
    ClientExists,
    /// Admin API: no such client.
    #[error("no client with this client_id")]
    ClientNotFound,
    /// Sealing the SAD inside a code failed (OpenSSL).
    #[error("code sealing failed")]
    Seal,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl OAuth2Error {
    /// The `error` code of RFC 6749 §4.1.2.1 / §5.2 (and RFC 9396 §5).
    pub fn code(&self) -> &'static str {
        match self {
            OAuth2Error::InvalidRequest(_) => "invalid_request",
            OAuth2Error::InvalidClient => "invalid_client",
            OAuth2Error::InvalidGrant(_) => "invalid_grant",
            OAuth2Error::UnauthorizedClient(_) => "unauthorized_client",
            OAuth2Error::UnsupportedGrantType => "unsupported_grant_type",
            OAuth2Error::UnsupportedResponseType => "unsupported_response_type",
            OAuth2Error::InvalidScope(_) => "invalid_scope",
            OAuth2Error::InvalidAuthorizationDetails(_) => "invalid_authorization_details",
            OAuth2Error::AccessDenied => "access_denied",
            OAuth2Error::ClientExists | OAuth2Error::ClientNotFound => "invalid_request",
            OAuth2Error::Seal
            | OAuth2Error::Db(_)
            | OAuth2Error::Kv(_)
            | OAuth2Error::Auth(_)
            | OAuth2Error::Audit(_) => "server_error",
        }
    }
}
