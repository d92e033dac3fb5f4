//! OAuth2 clients: registered by the operator (admin API) with exact redirect URIs and the
//! scopes they may ask for; confidential ones authenticate with a secret (HTTP Basic or the
//! form's `client_secret`), public ones with their `client_id` alone (and PKCE, required of
//! every client).
//!
//! Invariants: a secret is 256 random bits shown once at registration and stored only as its
//! SHA-256, compared in constant time; a redirect URI is an absolute `https` URL (or `http` to
//! a loopback host) with no fragment, and is matched byte for byte.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openssl::sha::sha256;
use rand::RngCore;
use serde_json::json;
use time::OffsetDateTime;

use super::{OAuth2Error, SCOPE_CREDENTIAL, SCOPE_SERVICE};
use crate::db::repo::oauth2_clients::{self as repo, ClientRow};
use crate::db::DbError;
use crate::model::Operator;
use crate::secrets::ct_eq;
use crate::services::Services;

/// Most redirect URIs per client.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI.
const MAX_URI_LEN: usize = 2000;

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
    pub(crate) secret_sha256: Option<Vec<u8>>,
}

impl From<ClientRow> for Client {
    fn from(row: ClientRow) -> Self {
        Client {
            client_id: row.client_id,
            confidential: row.secret_sha256.is_some(),
            redirect_uris: row.redirect_uris,
            scopes: row.scopes,
            created_at: row.created_at,
            secret_sha256: row.secret_sha256,
        }
    }
}

impl Client {
    /// May this client ask for `scope`?
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A client to register.
pub struct NewClient {
    pub client_id: String,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

/// A registered client, with its secret (confidential clients) shown this once.
pub struct Registered {
    pub client: Client,
    pub secret: Option<String>,
}

fn digest(secret: &str) -> [u8; 32] {
    sha256(
        &[
            b"sigillo-oauth2-client-secret\0".as_slice(),
            secret.as_bytes(),
        ]
        .concat(),
    )
}

/// Checks a redirect URI a client registers.
pub fn check_redirect_uri(uri: &str) -> Result<(), OAuth2Error> {
    let bad = |why: &str| OAuth2Error::InvalidRequest(format!("redirect_uris: {uri:?} {why}"));
    if uri.len() > MAX_URI_LEN || uri.chars().any(char::is_control) {
        return Err(bad("is too long or holds control characters"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| bad("is not an absolute URL"))?;
    if parsed.fragment().is_some() {
        return Err(bad("has a fragment"));
    }
    let loopback = matches!(parsed.host(), Some(url::Host::Domain("localhost")))
        || matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad("must be https (or http to a loopback host)")),
    }
}

/// Registers a client (audited as `oauth2.client.register` with the operator's name).
pub async fn register(
    services: &Services,
    new: NewClient,
    operator: &Operator,
) -> Result<Registered, OAuth2Error> {
    let id_ok = (1..=128).contains(&new.client_id.len())
        && new
            .client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-~".contains(&b));
    if !id_ok {
        return Err(OAuth2Error::InvalidRequest(
            "client_id: 1 to 128 of A-Z a-z 0-9 . _ - ~".into(),
        ));
    }
    if new.redirect_uris.is_empty() || new.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuth2Error::InvalidRequest(format!(
            "redirect_uris: 1 to {MAX_REDIRECT_URIS}"
        )));
    }
    new.redirect_uris
        .iter()
        .try_for_each(|u| check_redirect_uri(u))?;
    let known = [SCOPE_SERVICE, SCOPE_CREDENTIAL];
    if new.scopes.is_empty() || new.scopes.iter().any(|s| !known.contains(&s.as_str())) {
        return Err(OAuth2Error::InvalidRequest(
            "scopes: one or both of \"service\" and \"credential\"".into(),
        ));
    }
    let secret = new.confidential.then(|| {
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        URL_SAFE_NO_PAD.encode(random)
    });
    let hashed = secret.as_deref().map(digest);
    let row = repo::insert(
        &services.db,
        &new.client_id,
        hashed.as_ref().map(|h| h.as_slice()),
        &new.redirect_uris,
        &new.scopes,
    )
    .await
    .map_err(|e| match e {
        DbError::UniqueViolation { .. } => OAuth2Error::ClientExists,
        other => other.into(),
    })?;
    let mut detail = operator.origin.audit_fields();
    detail.insert("client_id".into(), json!(new.client_id));
    detail.insert("confidential".into(), json!(new.confidential));
    detail.insert("redirect_uris".into(), json!(new.redirect_uris));
    detail.insert("scopes".into(), json!(new.scopes));
    services
        .audit
        .record(
            &operator.name,
            "oauth2.client.register",
            None,
            "ok",
            detail.into(),
        )
        .await?;
    Ok(Registered {
        client: row.into(),
        secret,
    })
}

/// Every registered client.
pub async fn list(services: &Services) -> Result<Vec<Client>, OAuth2Error> {
    Ok(repo::list(&services.db)
        .await?
        .into_iter()
        .map(Client::from)
        .collect())
}

/// Removes a client (audited as `oauth2.client.delete`); its tokens live out their lifetime.
pub async fn delete(
    services: &Services,
    client_id: &str,
    operator: &Operator,
) -> Result<(), OAuth2Error> {
    if !repo::delete(&services.db, client_id).await? {
        return Err(OAuth2Error::ClientNotFound);
    }
    let mut detail = operator.origin.audit_fields();
    detail.insert("client_id".into(), json!(client_id));
    services
        .audit
        .record(
            &operator.name,
            "oauth2.client.delete",
            None,
            "ok",
            detail.into(),
        )
        .await?;
    Ok(())
}

/// The registered client `client_id`, if any.
pub async fn find(services: &Services, client_id: &str) -> Result<Option<Client>, OAuth2Error> {
    Ok(repo::find(&services.db, client_id).await?.map(Client::from))
}

/// How a request to the token, PAR or revocation endpoint names its client.
#[derive(Default)]
pub struct ClientCredentials {
    /// The decoded `Authorization: Basic` pair, if sent.
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl ClientCredentials {
    /// Parses the value after `Basic ` (RFC 6749 §2.3.1: both parts form-urlencoded).
    pub fn parse_basic(encoded: &str) -> Option<(String, String)> {
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((unescape(id), unescape(secret)))
    }
}

/// Authenticates the client of a token, PAR or revocation request: a confidential client by
/// its secret (exactly one method), a public one by its id alone. Any failure is
/// `invalid_client`, whatever went wrong.
pub async fn authenticate(
    services: &Services,
    credentials: &ClientCredentials,
) -> Result<Client, OAuth2Error> {
    let (id, secret) = match (&credentials.basic, &credentials.client_secret) {
        (Some(_), Some(_)) => return Err(OAuth2Error::InvalidClient),
        (Some((id, secret)), None) => {
            if credentials.client_id.as_ref().is_some_and(|c| c != id) {
                return Err(OAuth2Error::InvalidClient);
            }
            (id.as_str(), Some(secret.as_str()))
        }
        (None, secret) => (
            credentials
                .client_id
                .as_deref()
                .ok_or(OAuth2Error::InvalidClient)?,
            secret.as_deref(),
        ),
    };
    if id.is_empty() || id.len() > 128 {
        return Err(OAuth2Error::InvalidClient);
    }
    let client = find(services, id)
        .await?
        .ok_or(OAuth2Error::InvalidClient)?;
    let ok = match (&client.secret_sha256, secret) {
        (Some(stored), Some(given)) => ct_eq(stored, &digest(given)),
        (None, None) => true,
        _ => false,
    };
    if ok {
        Ok(client)
    } else {
        Err(OAuth2Error::InvalidClient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragment() {
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8123/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]:9/cb").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#x").is_err());
        assert!(check_redirect_uri("/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        let encoded = STANDARD.encode("my%20app:s%3Acret");
        assert_eq!(
            ClientCredentials::parse_basic(&encoded),
            Some(("my app".into(), "s:cret".into()))
        );
        assert_eq!(ClientCredentials::parse_basic("!!"), None);
    }
}
