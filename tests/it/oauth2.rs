//! The CSC v2 authorization server, driven over HTTP as a browser and an OAuth2 client would:
//! client registration, metadata, PAR, the authorization page (sign-in, then PIN and OTP for a
//! credential), the token endpoint, revocation, and signHash with a credential token and no
//! SAD. Every refusal is checked with its RFC 6749 code (or the CSC error on signHash).

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openssl::ecdsa::EcdsaSig;
use openssl::sha::sha256;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, b64, digests, Csc, TestApp, TestUser, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// An OAuth2 client written from RFC 6749/7636/9126, plus a cookie jar for the pages.
struct Client<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    id: String,
    secret: Option<String>,
    cookies: HashMap<String, String>,
}

/// What a page shows: status, body, and its form's hidden fields.
struct Shown {
    status: StatusCode,
    body: String,
    headers: HeaderMap,
}

impl Shown {
    fn hidden(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name}: {}", self.body))
            + needle.len();
        let len = self.body[start..].find('"').unwrap();
        self.body[start..start + len].to_owned()
    }

    /// The code (or error) the page redirected to the client with.
    fn redirected(&self) -> HashMap<String, String> {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        let location = self.headers[LOCATION].to_str().unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// A PKCE pair: (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    (verifier, challenge)
}

impl<'a> Client<'a> {
    async fn register(app: &'a TestApp, confidential: bool) -> Client<'a> {
        let id = format!("app-{}", crate::support::random_suffix());
        let (status, body) = app
            .admin_post(
                "/admin/v1/oauth2/clients",
                json!({
                    "client_id": id,
                    "client_type": if confidential { "confidential" } else { "public" },
                    "redirect_uris": [REDIRECT],
                    "scopes": ["service", "credential"],
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["client_secret"].is_string(), confidential, "{body}");
        Client {
            app,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            id,
            secret: body["client_secret"].as_str().map(str::to_owned),
            cookies: HashMap::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.public)
    }

    /// POSTs a form with this client's authentication (Basic for a confidential client).
    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut req = self.http.post(self.url(path));
        match &self.secret {
            Some(secret) => req = req.basic_auth(&self.id, Some(secret)),
            None => fields.push(("client_id", &self.id)),
        }
        let res = req.form(&fields).send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// PAR with `params` (response_type, client, redirect and PKCE added): the request_uri.
    async fn push(&self, challenge: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = vec![
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-1"),
        ];
        form.extend_from_slice(params);
        self.post_form("/oauth2/pushed_authorize", &form).await
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
    }

    async fn shown(&mut self, res: reqwest::Response) -> Shown {
        let status = res.status();
        let headers = res.headers().clone();
        self.keep_cookies(&headers);
        Shown {
            status,
            body: res.text().await.unwrap(),
            headers,
        }
    }

    async fn open_page(&mut self, request_uri: &str) -> Shown {
        let res = self
            .http
            .get(self.url("/oauth2/authorize"))
            .query(&[
                ("client_id", self.id.as_str()),
                ("request_uri", request_uri),
            ])
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.shown(res).await
    }

    async fn submit(&mut self, page: &Shown, fields: &[(&str, &str)]) -> Shown {
        let (csrf, ix) = (page.hidden("csrf"), page.hidden("ix"));
        let mut form = vec![("csrf", csrf.as_str()), ("ix", ix.as_str())];
        form.extend_from_slice(fields);
        let res = self
            .http
            .post(self.url("/oauth2/authorize"))
            .header(COOKIE, self.cookie_header())
            .form(&form)
            .send()
            .await
            .unwrap();
        self.shown(res).await
    }

    async fn token(&self, code: &str, verifier: &str, redirect: &str) -> (StatusCode, Value) {
        self.post_form(
            "/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// PAR → page → sign in: a `service` code and its verifier.
    async fn service_code(&mut self, user: &TestUser) -> (String, String) {
        let (verifier, challenge) = pkce();
        let (status, par) = self.push(&challenge, &[("scope", "service")]).await;
        assert_eq!(status, StatusCode::CREATED, "{par}");
        let page = self.open_page(par["request_uri"].as_str().unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let done = self
            .submit(
                &page,
                &[
                    ("action", "login"),
                    ("user_id", &user.user_id),
                    ("password", &user.password),
                ],
            )
            .await;
        let query = done.redirected();
        assert_eq!(query["state"], "st-1");
        assert_eq!(query["iss"], self.app.public);
        (query["code"].clone(), verifier)
    }

    /// PAR for a credential (signed in already) → the consent page and the verifier.
    async fn credential_page(&mut self, params: &[(&str, &str)]) -> (Shown, String) {
        let (verifier, challenge) = pkce();
        let (status, par) = self.push(&challenge, params).await;
        assert_eq!(status, StatusCode::CREATED, "{par}");
        let page = self.open_page(par["request_uri"].as_str().unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("name=\"pin\""), "{}", page.body);
        (page, verifier)
    }

    /// "Send me an SMS", then PIN and the SMS code: the page's answer.
    async fn approve(&mut self, page: &Shown, pin: &str) -> Shown {
        let sent = self.submit(page, &[("action", "sms")]).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
        let otp = self.app.last_sms_code();
        self.submit(
            &sent,
            &[("action", "authorize"), ("pin", pin), ("otp", &otp)],
        )
        .await
    }
}

fn scoped(credential: &str, hashes: &[Vec<u8>]) -> Vec<(&'static str, String)> {
    vec![
        ("scope", "credential".into()),
        ("credentialID", credential.into()),
        ("numSignatures", hashes.len().to_string()),
        (
            "hashes",
            hashes
                .iter()
                .map(|h| URL_SAFE_NO_PAD.encode(h))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("hashAlgorithmOID", OID_SHA256.into()),
    ]
}

fn refs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn sign_no_sad(
    app: &TestApp,
    token: &str,
    credential: &str,
    hashes: &[Vec<u8>],
) -> (StatusCode, Value) {
    app.post(
        "/csc/v2/signatures/signHash",
        Some(token),
        json!({
            "credentialID": credential,
            "hashes": hashes.iter().map(|h| b64(h)).collect::<Vec<_>>(),
            "hashAlgorithmOID": OID_SHA256,
            "signAlgo": ES256,
        }),
    )
    .await
}

fn assert_signed(leaf: &openssl::x509::X509, hashes: &[Vec<u8>], body: &Value) {
    let key = leaf.public_key().unwrap().ec_key().unwrap();
    let signatures = body["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), hashes.len());
    for (hash, signature) in hashes.iter().zip(signatures) {
        let der = STANDARD.decode(signature.as_str().unwrap()).unwrap();
        assert!(EcdsaSig::from_der(&der)
            .unwrap()
            .verify(hash, &key)
            .unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_names_every_endpoint_and_only_s256() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        app.public
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let meta: Value = res.json().await.unwrap();
    assert_eq!(meta["issuer"], app.public.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        (
            "pushed_authorization_request_endpoint",
            "/oauth2/pushed_authorize",
        ),
        ("revocation_endpoint", "/oauth2/revoke"),
    ] {
        assert_eq!(meta[field], format!("{}{path}", app.public), "{field}");
    }
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["scopes_supported"], json!(["service", "credential"]));
    assert_eq!(
        meta["authorization_details_types_supported"],
        json!([
            "credential",
            "https://cloudsignatureconsortium.org/2025/credential"
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_registered_listed_and_removed_by_the_operator() {
    let app = TestApp::spawn().await;
    let client = Client::register(&app, true).await;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/v1/oauth2/clients", app.admin);
    let listed: Value = http
        .get(&url)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let found = &listed["clients"][0];
    assert_eq!(found["client_id"], client.id.as_str());
    assert_eq!(found["client_type"], "confidential");
    assert!(
        found.get("client_secret").is_none(),
        "never listed: {found}"
    );
    // The secret is stored only hashed.
    let row = sigillo::db::repo::oauth2_clients::find(&app.services().db, &client.id)
        .await
        .unwrap()
        .unwrap();
    let secret = client.secret.clone().unwrap();
    assert_ne!(row.secret_sha256.as_deref(), Some(secret.as_bytes()));
    let twice = app
        .admin_post(
            "/admin/v1/oauth2/clients",
            json!({ "client_id": client.id, "client_type": "public",
                    "redirect_uris": [REDIRECT], "scopes": ["service"] }),
        )
        .await;
    assert_error(&twice, StatusCode::CONFLICT, "invalid_request");
    let plain_http = app
        .admin_post(
            "/admin/v1/oauth2/clients",
            json!({ "client_id": "x", "client_type": "public",
                    "redirect_uris": ["http://app.example/cb"], "scopes": ["service"] }),
        )
        .await;
    assert_error(&plain_http, StatusCode::BAD_REQUEST, "invalid_request");
    // A wrong secret is invalid_client.
    let wrong = Client {
        secret: Some("wrong".into()),
        http: reqwest::Client::new(),
        cookies: HashMap::new(),
        id: client.id.clone(),
        app: &app,
    };
    let (_, challenge) = pkce();
    let refused = wrong.push(&challenge, &[("scope", "service")]).await;
    assert_error(&refused, StatusCode::UNAUTHORIZED, "invalid_client");
    let res = http
        .delete(format!("{url}/{}", client.id))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let gone = client.push(&challenge, &[("scope", "service")]).await;
    assert_error(&gone, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_and_credential_tokens_list_and_sign_with_no_sad() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let mut client = Client::register(&app, true).await;

    let (code, verifier) = client.service_code(&user).await;
    let (status, token) = client.token(&code, &verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(
        (token["token_type"].as_str(), token["scope"].as_str()),
        (Some("Bearer"), Some("service"))
    );
    let service = token["access_token"].as_str().unwrap().to_owned();
    let (status, list) = app
        .post("/csc/v2/credentials/list", Some(&service), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["credentialIDs"], json!([credential]));
    let leaf = app.leaf_certificate(Csc::V2, &service, &credential).await;

    // scope=credential: the page knows the subscriber from the service sign-in.
    let hashes = digests(2, 32);
    let params = scoped(&credential, &hashes);
    let (page, verifier) = client.credential_page(&refs(&params)).await;
    assert!(page.body.contains(&credential), "{}", page.body);
    let done = client.approve(&page, &pin).await;
    let query = done.redirected();
    let (status, token) = client.token(&query["code"], &verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["scope"], "credential");
    assert_eq!(token["credentialID"], credential.as_str());
    let signer = token["access_token"].as_str().unwrap().to_owned();

    // Nothing but signHash.
    let listed = app
        .post("/csc/v2/credentials/list", Some(&signer), json!({}))
        .await;
    assert_error(&listed, StatusCode::FORBIDDEN, "access_denied");
    // Other hashes, another credential: refused, nothing consumed.
    let other = sign_no_sad(&app, &signer, &credential, &digests(2, 32)).await;
    assert_error(&other, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, _, elsewhere, _) = app.active_credential("ec-p256", "signing").await;
    let wrong = sign_no_sad(&app, &signer, &elsewhere, &hashes).await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "invalid_request");
    // More than authorised: three hashes for two.
    let mut three = hashes.clone();
    three.extend(digests(1, 32));
    let more = sign_no_sad(&app, &signer, &credential, &three).await;
    assert_error(&more, StatusCode::BAD_REQUEST, "invalid_request");

    let (status, signed) = sign_no_sad(&app, &signer, &credential, &hashes).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_signed(&leaf, &hashes, &signed);
    // Spent: the same hashes do not sign twice.
    let again = sign_no_sad(&app, &signer, &credential, &hashes[..1]).await;
    assert_error(&again, StatusCode::BAD_REQUEST, "invalid_request");
    // Audited like any signHash: one ok row with the SAD's id, refusals too.
    let db = app.services().db.get().await.unwrap();
    let rows = db
        .query(
            "SELECT outcome, detail->>'sad' FROM audit_log \
             WHERE action = 'signatures.signHash' AND credential_id = $1 ORDER BY id",
            &[&uuid::Uuid::parse_str(&credential).unwrap()],
        )
        .await
        .unwrap();
    let outcomes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        outcomes,
        ["refused", "refused", "ok", "refused"],
        "{outcomes:?}"
    );
    assert!(rows.iter().all(|r| r.get::<_, Option<String>>(1).is_some()));

    // RFC 7009: revoked, the service token stops working.
    let (status, _) = client
        .post_form("/oauth2/revoke", &[("token", &service)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let revoked = app
        .post("/csc/v2/credentials/list", Some(&service), json!({}))
        .await;
    assert_error(&revoked, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_authorization_details_of_both_types_show_labels_and_are_echoed() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let mut client = Client::register(&app, false).await;
    let (code, verifier) = client.service_code(&user).await;
    let (status, token) = client.token(&code, &verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let leaf = app
        .leaf_certificate(
            Csc::V2,
            token["access_token"].as_str().unwrap(),
            &credential,
        )
        .await;
    for kind in [
        "credential",
        "https://cloudsignatureconsortium.org/2025/credential",
    ] {
        let hashes = digests(2, 32);
        let details = json!([{
            "type": kind,
            "credentialID": credential,
            "numSignatures": 2,
            "hashAlgorithmOID": OID_SHA256,
            "documentDigests": [
                { "hash": b64(&hashes[0]), "label": "Contratto <firmato>.pdf" },
                { "hash": b64(&hashes[1]), "label": "Allegato A.pdf" },
            ],
        }]);
        let text = details.to_string();
        let (page, verifier) = client
            .credential_page(&[("authorization_details", &text)])
            .await;
        // The labels, escaped: the page shows what is authorised, and runs nothing.
        assert!(
            page.body.contains("Contratto &lt;firmato&gt;.pdf"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Allegato A.pdf"));
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'none'")
                && csp.contains("form-action 'self' http://127.0.0.1:9"),
            "{csp}"
        );
        let done = client.approve(&page, &pin).await;
        let query = done.redirected();
        let (status, token) = client.token(&query["code"], &verifier, REDIRECT).await;
        assert_eq!(status, StatusCode::OK, "{token}");
        assert_eq!(token["authorization_details"], details, "echoed");
        let signer = token["access_token"].as_str().unwrap();
        let (status, signed) = sign_no_sad(&app, signer, &credential, &hashes).await;
        assert_eq!(status, StatusCode::OK, "{signed}");
        assert_signed(&leaf, &hashes, &signed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_need_their_verifier_and_redirect_uri_and_work_once() {
    let app = TestApp::spawn().await;
    let (user, _, _, _) = app.active_credential("ec-p256", "signing").await;
    let mut client = Client::register(&app, true).await;

    // A wrong verifier: invalid_grant, and the code is spent with it.
    let (code, verifier) = client.service_code(&user).await;
    let (other, _) = pkce();
    let got = client.token(&code, &other, REDIRECT).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_grant");
    let got = client.token(&code, &verifier, REDIRECT).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_grant");

    // Another redirect URI than the request's.
    let (code, verifier) = client.service_code(&user).await;
    let got = client
        .token(&code, &verifier, "http://127.0.0.1:9/callback/other")
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_grant");

    // A code works once.
    let (code, verifier) = client.service_code(&user).await;
    let (status, _) = client.token(&code, &verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK);
    let got = client.token(&code, &verifier, REDIRECT).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_grant");

    // ... even when ten requests race for it.
    let (code, verifier) = client.service_code(&user).await;
    let results =
        futures_util::future::join_all((0..10).map(|_| client.token(&code, &verifier, REDIRECT)))
            .await;
    let granted = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(granted, 1, "{results:?}");

    // The PAR refuses an unregistered redirect URI, plain PKCE and unknown scopes.
    let (_, challenge) = pkce();
    let mut form = vec![
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", "service"),
    ];
    let got = client.post_form("/oauth2/pushed_authorize", &form).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    form[1].1 = REDIRECT;
    form[3].1 = "plain";
    let got = client.post_form("/oauth2/pushed_authorize", &form).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    form[3].1 = "S256";
    form[4].1 = "everything";
    let got = client.post_form("/oauth2/pushed_authorize", &form).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_scope");
    let got = client
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "password"),
                ("code", "x"),
                ("code_verifier", "y"),
            ],
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "unsupported_grant_type");

    // The page: an unknown client or redirect URI is shown, never redirected to.
    let res = client
        .http
        .get(client.url("/oauth2/authorize"))
        .query(&[
            ("client_id", client.id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(LOCATION).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_refuses_wrong_logins_pins_otps_and_forged_forms_readably() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let mut client = Client::register(&app, true).await;
    let (_, challenge) = pkce();
    let (_, par) = client.push(&challenge, &[("scope", "service")]).await;
    let page = client.open_page(par["request_uri"].as_str().unwrap()).await;
    assert!(
        page.body.contains("<html lang=\"it\">"),
        "Italian by default"
    );
    assert!(page.body.contains("<label for=\"user_id\">"));
    // The same words for a wrong password and for a user id that does not exist.
    let wrong = client
        .submit(
            &page,
            &[
                ("action", "login"),
                ("user_id", &user.user_id),
                ("password", "nope"),
            ],
        )
        .await;
    let unknown = client
        .submit(
            &page,
            &[
                ("action", "login"),
                ("user_id", "nobody-at-all"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let message = |s: &Shown| {
        let at = s.body.find("role=\"alert\"").unwrap();
        s.body[at..at + 80].to_owned()
    };
    assert_eq!(message(&wrong), message(&unknown));
    assert!(wrong.body.contains("Codice utente o password non corretti"));
    // A form without its CSRF cookie (another site's) is refused before anything runs.
    let forged = client
        .http
        .post(client.url("/oauth2/authorize"))
        .form(&[
            ("csrf", page.hidden("csrf").as_str()),
            ("ix", page.hidden("ix").as_str()),
            ("action", "login"),
            ("user_id", user.user_id.as_str()),
            ("password", user.password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // English on request.
    let english = client
        .submit(
            &page,
            &[
                ("lang", "en"),
                ("action", "login"),
                ("user_id", "x"),
                ("password", "y"),
            ],
        )
        .await;
    assert!(
        english.body.contains("<html lang=\"en\">")
            && english.body.contains("Wrong user ID or password")
    );
    let done = client
        .submit(
            &page,
            &[
                ("action", "login"),
                ("user_id", &user.user_id),
                ("password", &user.password),
            ],
        )
        .await;
    done.redirected();

    // Wrong PIN, wrong OTP: shown on the page, counted as by credentials/authorize.
    let hashes = digests(1, 32);
    let params = scoped(&credential, &hashes);
    let (page, _) = client.credential_page(&refs(&params)).await;
    let sent = client.submit(&page, &[("action", "sms")]).await;
    assert!(
        sent.body.contains("Ti abbiamo inviato un SMS"),
        "{}",
        sent.body
    );
    let otp = app.last_sms_code();
    let bad_pin = format!("{:08}", (pin.parse::<u32>().unwrap() + 1) % 100_000_000);
    let refused = client
        .submit(
            &sent,
            &[("action", "authorize"), ("pin", &bad_pin), ("otp", &otp)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .body
            .contains("PIN non corretto. Tentativi rimasti: 2"),
        "{}",
        refused.body
    );
    let sent = client.submit(&refused, &[("action", "sms")]).await;
    let refused = client
        .submit(
            &sent,
            &[("action", "authorize"), ("pin", &pin), ("otp", "000000")],
        )
        .await;
    assert!(
        refused.body.contains("Codice OTP non corretto o scaduto"),
        "{}",
        refused.body
    );
    let db = app.services().db.get().await.unwrap();
    let outcomes: Vec<String> = db
        .query(
            "SELECT outcome FROM audit_log WHERE action = 'credential.authorize' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[0], "wrong_pin");
    // "Not you?" shows the sign-in form again.
    assert!(
        refused.body.contains("value=\"switch\""),
        "{}",
        refused.body
    );
    let switched = client.submit(&refused, &[("action", "switch")]).await;
    assert!(
        switched.body.contains("name=\"password\""),
        "{}",
        switched.body
    );
    // Cancel: access_denied back at the client.
    let cancelled = client.submit(&refused, &[("action", "cancel")]).await;
    assert_eq!(cancelled.redirected()["error"], "access_denied");
}

/// The whole flow in Debian's Chromium, driven by Playwright (tests/e2e/oauth2_browser.js):
/// discovery, PAR, the pages, tokens, list, info, signHash with no SAD, openssl verification;
/// then the same with rich authorization details. Screenshots of every page land in the
/// test's temporary directory (kept with SIGILLO_KEEP_TMP=1) and are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_runs_the_oauth2_flow_and_openssl_verifies_the_signatures() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let modules = crate::support::env("SIGILLO_TEST_NODE_MODULES");
    assert!(
        std::path::Path::new(&modules)
            .join("playwright-core")
            .is_dir(),
        "playwright-core missing from {modules}: run scripts/test (npm ci in tests/e2e)"
    );
    let dir = std::path::PathBuf::from(crate::support::env("SIGILLO_TEST_TMP")).join(format!(
        "oauth2-browser-{}",
        crate::support::random_suffix()
    ));
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["120", "node", "tests/e2e/oauth2_browser.js"])
        .args(["--base-url", &app.public, "--admin-url", &app.admin])
        .args(["--admin-token", &app.admin_token])
        .args(["--user", &user.user_id, "--password", &user.password])
        .args(["--pin", &pin, "--credential-id", &credential])
        .arg("--outbox")
        .arg(&app.config.otp.outbox_path)
        .arg("--out-dir")
        .arg(&dir);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs (apt package nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser flow failed:\n{stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(summary["signed"], 4, "{summary}");
    assert_eq!(summary["verified"], 4, "{summary}");
    let shots = summary["screenshots"].as_array().unwrap();
    assert_eq!(shots.len(), 7, "{summary}");
    for shot in shots {
        let shot = shot.as_str().unwrap();
        assert!(std::fs::metadata(shot).unwrap().len() > 1000, "{shot}");
        println!("screenshot: {shot}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_sign_hashes_with_one_credential_token_sign_only_what_was_authorised() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let mut client = Client::register(&app, false).await;
    client.service_code(&user).await;
    let hashes = digests(2, 32);
    let params = scoped(&credential, &hashes);
    let (page, verifier) = client.credential_page(&refs(&params)).await;
    let query = client.approve(&page, &pin).await.redirected();
    let (_, token) = client.token(&query["code"], &verifier, REDIRECT).await;
    let signer = token["access_token"].as_str().unwrap();
    // Sixteen requests, eight for each authorised hash, at once: two signatures in all.
    let (app, credential) = (&app, credential.as_str());
    let results = futures_util::future::join_all((0..16).map(|i| {
        let one = [hashes[i % 2].clone()];
        async move { sign_no_sad(app, signer, credential, &one).await }
    }))
    .await;
    let signed = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(signed, 2, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_error(
            &(*status, body.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }
}
