//! `info`: what this service is and what it implements (GET or POST, no authentication).
//!
//! `methods` is read from the route table (`app::public_endpoints`), so that it names exactly
//! the methods served under each version: adding a route adds the method, and nothing is
//! listed that is not served. The OAuth2 endpoints (`oauth2/*`) are listed, with `oauth2code`
//! in `authType`, only while `oauth2.issuer` is set.

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use crate::hsm::mechanism::SIGN_ALGO_OIDS;
use crate::hsm::HashAlg;
use crate::services::Services;

/// CSC versions as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn prefix(self) -> &'static str {
        match self {
            Version::V1 => "/csc/v1/",
            Version::V2 => "/csc/v2/",
        }
    }
}

/// The route table's CSC methods under `prefix` (e.g. `credentials/list`) and its OAuth2
/// endpoints (e.g. `oauth2/token`), each once, in table order.
fn served(prefix: &str) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut csc: Vec<&'static str> = Vec::new();
    let mut oauth2: Vec<&'static str> = Vec::new();
    for e in crate::app::public_endpoints() {
        let (list, name) = match (e.path.strip_prefix(prefix), e.path.strip_prefix('/')) {
            (Some(method), _) => (&mut csc, method),
            (None, Some(path)) if path.starts_with("oauth2/") => (&mut oauth2, path),
            _ => continue,
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }
    (csc, oauth2)
}

static V2_METHODS: LazyLock<(Vec<&'static str>, Vec<&'static str>)> =
    LazyLock::new(|| served(Version::V2.prefix()));
static V1_METHODS: LazyLock<(Vec<&'static str>, Vec<&'static str>)> =
    LazyLock::new(|| served(Version::V1.prefix()));

/// `methods` of one version's `info`: its CSC methods, and the OAuth2 ones when offered.
pub fn methods(v2: bool, oauth2_offered: bool) -> Vec<&'static str> {
    let (csc, oauth2) = if v2 { &*V2_METHODS } else { &*V1_METHODS };
    let mut all = csc.clone();
    if oauth2_offered {
        all.extend(oauth2.iter().copied());
    }
    all
}

/// The fields both versions share.
fn common(services: &Services, version: Version) -> Map<String, Value> {
    let c = &services.config.csc;
    let issuer = services.config.oauth2.issuer();
    let mut auth_type = vec!["basic"];
    if issuer.is_some() {
        auth_type.push("oauth2code");
    }
    let specs = match version {
        Version::V1 => "1.0.4.0",
        Version::V2 => "2.0.0.2",
    };
    let mut info = Map::new();
    info.insert("specs".into(), specs.into());
    info.insert("name".into(), c.name.clone().into());
    info.insert("logo".into(), c.logo.clone().into());
    info.insert("region".into(), c.region.clone().into());
    info.insert("lang".into(), c.lang.clone().into());
    info.insert("description".into(), c.description.clone().into());
    info.insert("authType".into(), json!(auth_type));
    if let Some(issuer) = issuer {
        // The base URI of the authorization server: its endpoints are {oauth2}/oauth2/….
        info.insert("oauth2".into(), issuer.into());
    }
    info.insert(
        "methods".into(),
        json!(methods(version == Version::V2, issuer.is_some())),
    );
    info
}

/// `GET|POST /csc/v2/info`: every field v2.0.0.2 marks required. This service signs hashes
/// only (no `signatures/signDoc`): it declares no AdES format and no conformance level, as
/// the spec's required `signature_formats` and `conformance_levels` then say.
pub async fn info_v2(services: web::Data<Services>) -> HttpResponse {
    let mut info = common(&services, Version::V2);
    if let Some(issuer) = services.config.oauth2.issuer() {
        // RFC 8414 discovery for clients that look for it; `oauth2` (above) for those that
        // take the base URI. Both name the same server.
        info.insert("oauth2Issuer".into(), issuer.into());
    }
    info.insert("asynchronousOperationMode".into(), false.into());
    info.insert("validationInfo".into(), false.into());
    info.insert("signAlgorithms".into(), json!({ "algos": SIGN_ALGO_OIDS }));
    info.insert(
        "signature_formats".into(),
        json!({ "formats": [], "envelope_properties": [] }),
    );
    info.insert("conformance_levels".into(), json!([]));
    // v2.2: the hash algorithms signHash accepts.
    info.insert(
        "supportedHashTypes".into(),
        json!(HashAlg::ALL.map(HashAlg::oid)),
    );
    HttpResponse::Ok().json(Value::Object(info))
}

/// `GET|POST /csc/v1/info`.
pub async fn info_v1(services: web::Data<Services>) -> HttpResponse {
    HttpResponse::Ok().json(Value::Object(common(&services, Version::V1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_the_routes_of_each_version() {
        let v2 = methods(true, false);
        for m in [
            "info",
            "auth/login",
            "auth/revoke",
            "credentials/list",
            "credentials/info",
            "credentials/getChallenge",
            "credentials/authorize",
            "credentials/extendTransaction",
            "signatures/signHash",
        ] {
            assert!(v2.contains(&m), "{m} missing from {v2:?}");
        }
        let v1 = methods(false, false);
        assert!(v1.contains(&"credentials/sendOTP"));
        assert!(!v1.contains(&"credentials/getChallenge"), "{v1:?}");
        assert!(!v2.contains(&"signatures/signDoc"), "not served: {v2:?}");
        let unique: std::collections::BTreeSet<_> = v2.iter().collect();
        assert_eq!(
            unique.len(),
            v2.len(),
            "info is served by GET and POST: listed once"
        );
        assert!(v2.iter().all(|m| !m.starts_with("oauth2/")));
    }
}
