//! Authorization requests: the parameters of `/oauth2/authorize` or of a pushed request
//! (RFC 9126), checked once into an [`AuthorizationRequest`]; stored in Redis under a
//! `request_uri` (pushed) and, while the subscriber is on the page, under an interaction id.
//!
//! A request asks for scope `service`, or for a credential: scope `credential` with
//! `credentialID`, `numSignatures`, `hashes` (base64url, comma separated) and
//! `hashAlgorithmOID`, or `authorization_details` (RFC 9396) of type `credential` or
//! `https://cloudsignatureconsortium.org/2025/credential` with `credentialID`,
//! `numSignatures`, `documentDigests[{hash, label}]` and `hashAlgorithmOID`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::sha::sha256;
use rand::RngCore;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::clients::Client;
use super::{OAuth2Error, SCOPE_CREDENTIAL, SCOPE_SERVICE};
use crate::config::CscConfig;
use crate::csc::common::{decode_hashes, distinct, num_signatures};
use crate::hsm::HashAlg;
use crate::kv::{Kv, KvError};
use crate::text;

/// The `type`s of RFC 9396 authorization details that authorise signatures.
pub const DETAIL_TYPES: [&str; 2] = [
    "credential",
    "https://cloudsignatureconsortium.org/2025/credential",
];
/// Prefix of every `request_uri` (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Largest `authorization_details` or `hashes` parameter.
const MAX_DETAILS: usize = 256 * 1024;

/// The raw parameters of an authorization request (query string or form), all optional here.
#[derive(Debug, Default, Deserialize)]
pub struct RawRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub authorization_details: Option<String>,
    #[serde(rename = "credentialID")]
    pub credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    pub num_signatures: Option<String>,
    pub hashes: Option<String>,
    #[serde(rename = "hashAlgorithmOID")]
    pub hash_algorithm_oid: Option<String>,
    pub request_uri: Option<String>,
    /// The page's own: an interaction in progress, and the language.
    pub ix: Option<String>,
    pub lang: Option<String>,
}

/// What a credential authorisation allows: this many signatures with this credential, of
/// exactly these hashes when given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialGrant {
    pub credential_id: Uuid,
    pub num_signatures: u32,
    /// The hashes, base64url without padding; empty: any hashes (SCAL1).
    pub hashes: Vec<String>,
    pub hash_oid: Option<String>,
    /// The documents' labels (authorization details), for the page.
    pub labels: Vec<String>,
}

impl CredentialGrant {
    /// The hashes, decoded.
    pub fn decoded_hashes(&self) -> Option<Vec<Vec<u8>>> {
        if self.hashes.is_empty() {
            return None;
        }
        self.hashes
            .iter()
            .map(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .collect()
    }

    pub fn hash_alg(&self) -> Option<HashAlg> {
        self.hash_oid.as_deref().and_then(HashAlg::from_oid)
    }
}

/// A checked authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (then the token request must name it too).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub code_challenge: String,
    /// `service` or `credential`.
    pub scope: String,
    pub grant: Option<CredentialGrant>,
    /// The authorization details as sent, echoed by the token endpoint.
    pub authorization_details: Option<Value>,
}

fn check(field: &str, value: Option<&String>, max: usize) -> Result<(), OAuth2Error> {
    match value {
        Some(v) => {
            text::check(v, max).map_err(|e| OAuth2Error::InvalidRequest(format!("{field}: {e}")))
        }
        None => Ok(()),
    }
}

/// The redirect URI of `raw` for `client`: the one given, if registered exactly; else the only
/// registered one. An error here must never be redirected anywhere.
pub fn redirect_target(raw: &RawRequest, client: &Client) -> Result<(String, bool), OAuth2Error> {
    check("redirect_uri", raw.redirect_uri.as_ref(), 2000)?;
    match &raw.redirect_uri {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok((uri.clone(), true)),
        Some(_) => Err(OAuth2Error::InvalidRequest(
            "redirect_uri is not one of the client's registered redirect URIs".into(),
        )),
        None => match client.redirect_uris.as_slice() {
            [only] => Ok((only.clone(), false)),
            _ => Err(OAuth2Error::InvalidRequest(
                "redirect_uri is required: the client has several".into(),
            )),
        },
    }
}

/// The base64 or base64url text of a hash as the standard alphabet with padding, which
/// `decode_hashes` reads.
fn standard_b64(text: &str) -> String {
    let mut s: String = text
        .trim()
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .filter(|c| *c != '=')
        .collect();
    while s.len() % 4 != 0 {
        s.push('=');
    }
    s
}

/// Checks the credential part (from `scope=credential` or the authorization details).
fn credential_grant(
    csc: &CscConfig,
    credential_id: &str,
    num: i64,
    hashes: &[String],
    hash_oid: Option<&str>,
    labels: Vec<String>,
    invalid: impl Fn(String) -> OAuth2Error,
) -> Result<CredentialGrant, OAuth2Error> {
    let credential_id = Uuid::parse_str(credential_id)
        .map_err(|_| invalid("credentialID: not a credential id".into()))?;
    let alg = match hash_oid {
        Some(oid) => Some(
            HashAlg::from_oid(oid)
                .ok_or_else(|| invalid(format!("hashAlgorithmOID: unsupported {oid}")))?,
        ),
        None => None,
    };
    let max = usize::try_from(csc.max_signatures).unwrap_or(usize::MAX);
    let decoded = if hashes.is_empty() {
        Vec::new()
    } else {
        if alg.is_none() {
            return Err(invalid(
                "hashAlgorithmOID is required with the hashes".into(),
            ));
        }
        let standard: Vec<String> = hashes.iter().map(|h| standard_b64(h)).collect();
        let (decoded, _) =
            decode_hashes("hashes", &standard, alg, max).map_err(|e| invalid(e.description))?;
        distinct("hashes", &decoded).map_err(|e| invalid(e.description))?;
        decoded
    };
    if csc.scal == "2" && decoded.is_empty() {
        return Err(invalid(
            "SCAL2: the hashes to sign are required (hashes or documentDigests)".into(),
        ));
    }
    let bound = (!decoded.is_empty()).then_some(decoded.len());
    let num_signatures =
        num_signatures(num, bound, csc.max_signatures).map_err(|e| invalid(e.description))?;
    Ok(CredentialGrant {
        credential_id,
        num_signatures,
        hashes: decoded.iter().map(|h| URL_SAFE_NO_PAD.encode(h)).collect(),
        hash_oid: alg.map(|a| a.oid().to_owned()),
        labels,
    })
}

/// The credential grant of RFC 9396 authorization details (exactly one of a CSC type).
fn details_grant(csc: &CscConfig, details: &Value) -> Result<CredentialGrant, OAuth2Error> {
    let invalid = OAuth2Error::InvalidAuthorizationDetails;
    let [detail] = details.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(invalid(
            "authorization_details: a JSON array of exactly one object".into(),
        ));
    };
    let kind = detail.get("type").and_then(Value::as_str).unwrap_or("");
    if !DETAIL_TYPES.contains(&kind) {
        return Err(invalid(format!(
            "authorization_details: type must be one of {DETAIL_TYPES:?}"
        )));
    }
    let field = |name: &str| detail.get(name);
    let credential_id = field("credentialID")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("authorization_details: credentialID is required".into()))?;
    let num = field("numSignatures")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("authorization_details: numSignatures is required".into()))?;
    let hash_oid = field("hashAlgorithmOID").and_then(Value::as_str);
    let mut hashes = Vec::new();
    let mut labels = Vec::new();
    if let Some(digests) = field("documentDigests") {
        let digests = digests
            .as_array()
            .ok_or_else(|| invalid("documentDigests: an array".into()))?;
        for d in digests {
            let hash = d
                .get("hash")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("documentDigests: every entry needs a hash".into()))?;
            hashes.push(hash.to_owned());
            if let Some(label) = d.get("label").and_then(Value::as_str) {
                text::check(label, text::ID * 2)
                    .map_err(|e| invalid(format!("documentDigests label: {e}")))?;
                labels.push(label.to_owned());
            }
        }
    }
    credential_grant(csc, credential_id, num, &hashes, hash_oid, labels, invalid)
}

/// Checks every parameter of `raw` for `client` (RFC 6749 §4.1.1, RFC 7636, RFC 9396, CSC
/// v2 §8.3.2).
pub fn validate(
    raw: &RawRequest,
    client: &Client,
    csc: &CscConfig,
) -> Result<AuthorizationRequest, OAuth2Error> {
    let (redirect_uri, redirect_uri_given) = redirect_target(raw, client)?;
    for (field, value, max) in [
        ("response_type", &raw.response_type, text::ID),
        ("scope", &raw.scope, text::ID),
        ("state", &raw.state, text::ID * 4),
        ("code_challenge", &raw.code_challenge, text::ID),
        (
            "code_challenge_method",
            &raw.code_challenge_method,
            text::ID,
        ),
        ("credentialID", &raw.credential_id, text::ID),
        ("numSignatures", &raw.num_signatures, text::ID),
        ("hashAlgorithmOID", &raw.hash_algorithm_oid, text::ID),
        ("hashes", &raw.hashes, MAX_DETAILS),
        (
            "authorization_details",
            &raw.authorization_details,
            MAX_DETAILS,
        ),
    ] {
        check(field, value.as_ref(), max)?;
    }
    if raw.response_type.as_deref() != Some("code") {
        return Err(OAuth2Error::UnsupportedResponseType);
    }
    // PKCE with S256 only: "plain" (also the default of a missing method) would hand the
    // challenge's secret to whoever sees the authorization request.
    let challenge = raw.code_challenge.as_deref().unwrap_or("");
    if raw.code_challenge_method.as_deref() != Some("S256") {
        return Err(OAuth2Error::InvalidRequest(
            "code_challenge_method must be S256 (PKCE is required)".into(),
        ));
    }
    if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
        return Err(OAuth2Error::InvalidRequest(
            "code_challenge: BASE64URL(SHA256(code_verifier)), 43 characters".into(),
        ));
    }
    let details = raw
        .authorization_details
        .as_deref()
        .map(serde_json::from_str::<Value>)
        .transpose()
        .map_err(|_| {
            OAuth2Error::InvalidAuthorizationDetails("authorization_details: not JSON".into())
        })?;
    let scope = raw.scope.as_deref().unwrap_or("");
    let asked = if details.is_some() {
        SCOPE_CREDENTIAL
    } else {
        scope
    };
    if [SCOPE_SERVICE, SCOPE_CREDENTIAL].contains(&asked) && !client.allows(asked) {
        return Err(OAuth2Error::InvalidScope(format!(
            "the client may not ask for scope {asked}"
        )));
    }
    let (scope, grant) = match (scope, &details) {
        (SCOPE_SERVICE, None) => (SCOPE_SERVICE, None),
        (SCOPE_CREDENTIAL, None) => {
            let hashes: Vec<String> = raw
                .hashes
                .as_deref()
                .map(|h| h.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            let num = raw
                .num_signatures
                .as_deref()
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0);
            let grant = credential_grant(
                csc,
                raw.credential_id.as_deref().unwrap_or(""),
                num,
                &hashes,
                raw.hash_algorithm_oid.as_deref(),
                Vec::new(),
                OAuth2Error::InvalidRequest,
            )?;
            (SCOPE_CREDENTIAL, Some(grant))
        }
        ("", Some(details)) => (SCOPE_CREDENTIAL, Some(details_grant(csc, details)?)),
        (_, Some(_)) => {
            return Err(OAuth2Error::InvalidRequest(
                "authorization_details go without a scope".into(),
            ))
        }
        (other, None) => {
            return Err(OAuth2Error::InvalidScope(format!(
                "scope {other:?}: \"service\" or \"credential\""
            )))
        }
    };
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_given,
        state: raw.state.clone(),
        code_challenge: challenge.to_owned(),
        scope: scope.to_owned(),
        grant,
        authorization_details: details,
    })
}

fn random_id() -> String {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    URL_SAFE_NO_PAD.encode(random)
}

fn stored_key(kv: &Kv, kind: &str, id: &str) -> String {
    kv.key(&format!(
        "oauth2:{kind}:{}",
        hex::encode(sha256(id.as_bytes()))
    ))
}

async fn store(
    kv: &Kv,
    kind: &str,
    id: &str,
    request: &AuthorizationRequest,
    ttl: u64,
) -> Result<(), KvError> {
    let value = serde_json::to_string(request).unwrap_or_default();
    let mut conn = kv.conn();
    let () = conn.set_ex(stored_key(kv, kind, id), value, ttl).await?;
    Ok(())
}

/// Stores a pushed request; returns its `request_uri`.
pub async fn push(kv: &Kv, request: &AuthorizationRequest, ttl: u64) -> Result<String, KvError> {
    let uri = format!("{REQUEST_URI_PREFIX}{}", random_id());
    store(kv, "par", &uri, request, ttl).await?;
    Ok(uri)
}

/// Takes a pushed request (once: a `request_uri` is single-use).
pub async fn take_pushed(kv: &Kv, uri: &str) -> Result<Option<AuthorizationRequest>, KvError> {
    let mut conn = kv.conn();
    let stored: Option<String> = redis::cmd("GETDEL")
        .arg(stored_key(kv, "par", uri))
        .query_async(&mut conn)
        .await?;
    Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
}

/// Starts an interaction (the subscriber on the page) for `request`; returns its id.
pub async fn begin(kv: &Kv, request: &AuthorizationRequest, ttl: u64) -> Result<String, KvError> {
    let id = random_id();
    store(kv, "ix", &id, request, ttl).await?;
    Ok(id)
}

/// The request of interaction `id`, while it lasts.
pub async fn interaction(kv: &Kv, id: &str) -> Result<Option<AuthorizationRequest>, KvError> {
    if id.len() != 43 {
        return Ok(None);
    }
    let mut conn = kv.conn();
    let stored: Option<String> = conn.get(stored_key(kv, "ix", id)).await?;
    Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
}

/// Ends interaction `id`; true if it was still there (so it ends once).
pub async fn end(kv: &Kv, id: &str) -> Result<bool, KvError> {
    let mut conn = kv.conn();
    let removed: i64 = conn.del(stored_key(kv, "ix", id)).await?;
    Ok(removed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn client(scopes: &[&str]) -> Client {
        Client {
            client_id: "app".into(),
            confidential: false,
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: time::OffsetDateTime::now_utc(),
            secret_sha256: None,
        }
    }

    fn raw(scope: &str) -> RawRequest {
        RawRequest {
            response_type: Some("code".into()),
            client_id: Some("app".into()),
            redirect_uri: Some("https://app.example/cb".into()),
            scope: Some(scope.into()),
            code_challenge: Some(URL_SAFE_NO_PAD.encode([1u8; 32])),
            code_challenge_method: Some("S256".into()),
            ..RawRequest::default()
        }
    }

    #[test]
    fn requests_need_pkce_s256_an_exact_redirect_and_an_allowed_scope() {
        let csc = Config::defaults().unwrap().csc;
        let c = client(&["service"]);
        assert_eq!(
            validate(&raw("service"), &c, &csc).unwrap().scope,
            "service"
        );
        let mut plain = raw("service");
        plain.code_challenge_method = Some("plain".into());
        assert_eq!(
            validate(&plain, &c, &csc).unwrap_err().code(),
            "invalid_request"
        );
        let mut elsewhere = raw("service");
        elsewhere.redirect_uri = Some("https://app.example/cb/".into());
        assert!(redirect_target(&elsewhere, &c).is_err());
        let grant = raw("credential");
        assert_eq!(
            validate(&grant, &c, &csc).unwrap_err().code(),
            "invalid_scope"
        );
        let mut token = raw("service");
        token.response_type = Some("token".into());
        assert_eq!(
            validate(&token, &c, &csc).unwrap_err().code(),
            "unsupported_response_type"
        );
    }

    #[test]
    fn credential_requests_bind_their_hashes_in_both_spellings() {
        let csc = Config::defaults().unwrap().csc;
        let c = client(&["service", "credential"]);
        let id = Uuid::new_v4();
        let (h1, h2) = ([1u8; 32], [2u8; 32]);
        let mut scoped = raw("credential");
        scoped.credential_id = Some(id.to_string());
        scoped.num_signatures = Some("2".into());
        scoped.hashes = Some(format!(
            "{},{}",
            URL_SAFE_NO_PAD.encode(h1),
            URL_SAFE_NO_PAD.encode(h2)
        ));
        scoped.hash_algorithm_oid = Some("2.16.840.1.101.3.4.2.1".into());
        let g = validate(&scoped, &c, &csc).unwrap().grant.unwrap();
        assert_eq!((g.credential_id, g.num_signatures), (id, 2));
        assert_eq!(g.decoded_hashes().unwrap(), vec![h1.to_vec(), h2.to_vec()]);
        scoped.num_signatures = Some("3".into());
        assert!(validate(&scoped, &c, &csc).is_err(), "count must match");

        for kind in DETAIL_TYPES {
            let mut rich = raw("");
            rich.scope = None;
            rich.authorization_details = Some(
                serde_json::json!([{
                    "type": kind, "credentialID": id, "numSignatures": 1,
                    "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                    "documentDigests": [{ "hash": base64::engine::general_purpose::STANDARD.encode(h1), "label": "Contratto.pdf" }]
                }])
                .to_string(),
            );
            let r = validate(&rich, &c, &csc).unwrap();
            let g = r.grant.unwrap();
            assert_eq!(g.labels, vec!["Contratto.pdf".to_owned()]);
            assert_eq!(g.decoded_hashes().unwrap(), vec![h1.to_vec()]);
            assert!(r.authorization_details.is_some());
        }
        let mut odd = raw("");
        odd.scope = None;
        odd.authorization_details = Some(r#"[{"type":"payment"}]"#.into());
        assert_eq!(
            validate(&odd, &c, &csc).unwrap_err().code(),
            "invalid_authorization_details"
        );
    }
}
