//! CSC v2 as a strict client reads it: every field v2.0.0.2 marks required in `info`,
//! `credentials/list` (with every flag) and `credentials/info`; `credentials/getChallenge`
//! for the SMS OTP; `credentials/extendTransaction` binding the next hashes under SCAL2 (a
//! document signed hash by hash under one authorisation, never more than authorised, also
//! under parallel requests); and v2's error codes per method, v1 keeping its own.

use openssl::ecdsa::EcdsaSig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, b64, digests, unb64, Csc, TestApp, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";

fn string(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string: {v}"))
        .to_owned()
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} is an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("strings").to_owned())
        .collect()
}

/// Every field of a v2.0.0.2 `info` response a strict client parses (RSSPMetadata).
fn assert_required_info(info: &Value) {
    assert_eq!(info["specs"], "2.0.0.2", "{info}");
    for field in ["name", "logo", "region", "lang", "description"] {
        assert!(!string(info, field).is_empty(), "{field}: {info}");
    }
    assert!(strings(info, "authType").contains(&"basic".to_owned()));
    assert!(!strings(info, "methods").is_empty());
    assert!(!strings(&info["signAlgorithms"], "algos").is_empty());
    // signHash only: no AdES format, no conformance level — but both fields are required.
    assert_eq!(info["signature_formats"]["formats"], json!([]), "{info}");
    assert!(info["signature_formats"]["envelope_properties"].is_array());
    assert_eq!(info["conformance_levels"], json!([]), "{info}");
    assert_eq!(info["asynchronousOperationMode"], false);
    assert_eq!(info["validationInfo"], false);
    assert_eq!(
        strings(info, "supportedHashTypes"),
        [
            "2.16.840.1.101.3.4.2.1",
            "2.16.840.1.101.3.4.2.2",
            "2.16.840.1.101.3.4.2.3"
        ]
    );
}

/// Every field of one v2 credential description a strict client parses.
fn assert_credential_info(c: &Value, certificates: usize, cert_info: bool) {
    let key = &c["key"];
    assert_eq!(key["status"], "enabled", "{c}");
    assert!(strings(key, "algo").contains(&ES256.to_owned()));
    assert_eq!(key["len"], 256);
    assert_eq!(key["curve"], "1.2.840.10045.3.1.7");
    let cert = &c["cert"];
    assert_eq!(cert["status"], "valid");
    assert_eq!(strings(cert, "certificates").len(), certificates, "{c}");
    for field in [
        "issuerDN",
        "serialNumber",
        "subjectDN",
        "validFrom",
        "validTo",
    ] {
        assert_eq!(cert[field].is_string(), cert_info, "{field}: {c}");
    }
    if cert_info {
        assert!(string(cert, "serialNumber")
            .chars()
            .all(|ch| ch.is_ascii_hexdigit()));
        for field in ["validFrom", "validTo"] {
            let t = string(cert, field);
            assert!(t.len() == 15 && t.ends_with('Z'), "GeneralizedTime: {t}");
        }
    }
    // `auth` and its `mode` are required whatever the flags; explicit → its objects.
    let auth = &c["auth"];
    assert_eq!(auth["mode"], "explicit", "{c}");
    assert_eq!(auth["expression"], "PIN AND OTP");
    let objects = auth["objects"].as_array().expect("auth.objects");
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["PIN", "OTP"]);
    for o in objects {
        assert_eq!(o["type"], "Password");
        assert_eq!(o["format"], "N");
    }
    assert_eq!(c["SCAL"], "2");
    assert!(c["multisign"].as_u64().is_some_and(|m| m >= 1), "{c}");
    assert!(c["lang"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_v2_client_finds_every_field_it_parses() {
    let app = TestApp::spawn().await;
    // info, by GET and by POST.
    let info: Value = app
        .client
        .get(format!("{}/csc/v2/info", app.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_required_info(&info);
    let (status, posted) = app.post("/csc/v2/info", None, json!({})).await;
    assert_eq!((status, &posted), (StatusCode::OK, &info));
    // No OAuth2 issuer configured: the public listener is the issuer, advertised both ways.
    assert!(strings(&info, "authType").contains(&"oauth2code".to_owned()));
    assert_eq!(info["oauth2Issuer"], app.public.as_str());
    assert_eq!(info["oauth2"], app.public.as_str());
    // `methods` names exactly what is served: each listed method answers (not 501), and a
    // v2 method not served answers 501.
    let methods = strings(&info, "methods");
    for m in [
        "info",
        "auth/login",
        "credentials/list",
        "credentials/info",
        "credentials/getChallenge",
        "credentials/authorize",
        "credentials/extendTransaction",
        "signatures/signHash",
    ] {
        assert!(methods.contains(&m.to_owned()), "{m}: {methods:?}");
    }
    for m in &methods {
        // The oauth2/* methods live at the OAuth2 base URL (`oauth2`), the others under /csc/v2.
        let path = match m.starts_with("oauth2/") {
            true => format!("/{m}"),
            false => format!("/csc/v2/{m}"),
        };
        let (status, body) = app.post(&path, None, json!({})).await;
        assert_ne!(status, StatusCode::NOT_IMPLEMENTED, "{m}: {body}");
        assert_ne!(status, StatusCode::NOT_FOUND, "{m}: {body}");
    }
    assert!(!methods.contains(&"signatures/signDoc".to_owned()));

    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    // credentials/list with every flag.
    let (status, list) = app
        .post(
            "/csc/v2/credentials/list",
            Some(&token),
            json!({ "credentialInfo": true, "certificates": "chain", "certInfo": true,
                    "authInfo": true, "onlyValid": true, "lang": "it-IT", "clientData": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        strings(&list, "credentialIDs"),
        std::slice::from_ref(&credential)
    );
    assert_eq!(list["onlyValid"], true);
    let infos = list["credentialInfos"].as_array().expect("credentialInfos");
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0]["credentialID"], credential.as_str());
    assert_credential_info(&infos[0], 3, true);
    // Without authInfo and certInfo, `auth` (with its mode) is still there.
    let (_, list) = app
        .post(
            "/csc/v2/credentials/list",
            Some(&token),
            json!({ "credentialInfo": true }),
        )
        .await;
    assert_credential_info(&list["credentialInfos"][0], 1, false);
    let (_, bare) = app
        .post("/csc/v2/credentials/list", Some(&token), json!({}))
        .await;
    assert!(bare.get("credentialInfos").is_none() && bare.get("onlyValid").is_none());

    // credentials/info: the same object, without credentialID.
    let (status, described) = app
        .post(
            "/csc/v2/credentials/info",
            Some(&token),
            json!({ "credentialID": credential, "certificates": "chain", "certInfo": true,
                    "authInfo": true, "lang": "en-US", "clientData": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{described}");
    assert!(described.get("credentialID").is_none());
    assert_credential_info(&described, 3, true);
    let (_, plain) = app
        .post(
            "/csc/v2/credentials/info",
            Some(&token),
            json!({ "credentialID": credential }),
        )
        .await;
    assert_credential_info(&plain, 1, false);
    let leaf = openssl::x509::X509::from_der(&unb64(
        described["cert"]["certificates"][0].as_str().unwrap(),
    ))
    .unwrap();

    // getChallenge (OTP by SMS) → authorize → signHash, verified with the certificate.
    let (status, body) = app
        .post(
            "/csc/v2/credentials/getChallenge",
            Some(&token),
            json!({ "credentialID": credential, "authObjectID": "OTP", "clientData": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let otp = app.last_sms_code();
    let hashes = digests(2, 32);
    let (status, body) = app
        .post(
            "/csc/v2/credentials/authorize",
            Some(&token),
            json!({ "credentialID": credential, "numSignatures": 2,
                    "hashes": [b64(&hashes[0]), b64(&hashes[1])],
                    "hashAlgorithmOID": OID_SHA256,
                    "authData": [{ "id": "PIN", "value": pin }, { "id": "OTP", "value": otp }],
                    "description": "two documents", "clientData": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = string(&body, "SAD");
    assert!(body["expiresIn"].as_u64().is_some_and(|e| e > 0));
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &hashes,
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signatures = strings(&body, "signatures");
    assert_eq!(signatures.len(), 2);
    let key = leaf.public_key().unwrap().ec_key().unwrap();
    for (hash, signature) in hashes.iter().zip(&signatures) {
        let sig = EcdsaSig::from_der(&unb64(signature)).expect("DER ECDSA");
        assert!(sig.verify(hash, &key).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_advertises_the_oauth2_issuer_both_ways() {
    let issuer = "https://sign.example.it";
    let app = TestApp::spawn_with(|c| c.oauth2.issuer = issuer.into()).await;
    let (status, info) = app.post("/csc/v2/info", None, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_required_info(&info);
    assert_eq!(
        strings(&info, "authType"),
        ["basic".to_owned(), "oauth2code".to_owned()]
    );
    assert_eq!(info["oauth2Issuer"], issuer);
    assert_eq!(info["oauth2"], issuer);
    let (_, v1) = app.post("/csc/v1/info", None, json!({})).await;
    assert_eq!(v1["specs"], "1.0.4.0");
    assert_eq!(v1["oauth2"], issuer);
    assert!(strings(&v1, "methods").contains(&"credentials/sendOTP".to_owned()));
    assert!(!strings(&v1, "methods").contains(&"credentials/getChallenge".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_challenge_sends_the_sms_otp_and_refuses_other_objects() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let before = std::fs::read_to_string(&app.config.otp.outbox_path)
        .unwrap_or_default()
        .lines()
        .count();
    let path = "/csc/v2/credentials/getChallenge";
    let (status, body) = app
        .post(
            path,
            Some(&token),
            json!({ "credentialID": credential, "authObjectID": "OTP" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let outbox = std::fs::read_to_string(&app.config.otp.outbox_path).unwrap();
    assert_eq!(outbox.lines().count(), before + 1, "one SMS sent");
    // The code it sent authorises.
    let otp = app.last_sms_code();
    let (status, body) = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential,
            &pin,
            &otp,
            1,
            Some(&digests(1, 32)),
            Some(OID_SHA256),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let got = app
        .post(
            path,
            Some(&token),
            json!({ "credentialID": credential, "authObjectID": "PIN" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "Invalid parameter authObjectID");
    let got = app
        .post(path, Some(&token), json!({ "credentialID": credential }))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .post(
            path,
            Some(&token),
            json!({ "credentialID": uuid::Uuid::new_v4().to_string(), "authObjectID": "OTP" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "Invalid parameter credentialID");
    let got = app
        .post(
            path,
            None,
            json!({ "credentialID": credential, "authObjectID": "OTP" }),
        )
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(
        std::fs::read_to_string(&app.config.otp.outbox_path)
            .unwrap()
            .lines()
            .count(),
        before + 1,
        "no SMS for a refused request"
    );
    // sendOTP stays under v1.
    let (status, _) = app
        .post(
            "/csc/v1/credentials/sendOTP",
            Some(&token),
            json!({ "credentialID": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// SCAL2, authorised for `n` signatures with the first hash only: (token, credential, SAD).
async fn partly_bound(app: &TestApp, n: usize, first: &[u8]) -> (String, String, String) {
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (status, body) = app
        .authorize(
            Csc::V2,
            &token,
            &credential,
            &pin,
            n,
            Some(&[first.to_vec()][..]),
            Some(OID_SHA256),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (token, credential, string(&body, "SAD"))
}

async fn extend(
    app: &TestApp,
    token: &str,
    credential: &str,
    sad: &str,
    hashes: &[Vec<u8>],
    oid: &str,
) -> (StatusCode, Value) {
    let encoded: Vec<String> = hashes.iter().map(|h| b64(h)).collect();
    app.post(
        "/csc/v2/credentials/extendTransaction",
        Some(token),
        json!({ "credentialID": credential, "SAD": sad, "hashes": encoded,
                "hashAlgorithmOID": oid, "clientData": "x" }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_transaction_binds_the_next_hash_of_a_document() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let h = digests(4, 32);
    // A PDF with two signatures: the second hash exists only once the first signature does.
    let (token, credential, sad1) = partly_bound(&app, 2, &h[0]).await;
    let sign = |sad: String, hash: Vec<u8>| {
        let (app, token, credential) = (&app, token.clone(), credential.clone());
        async move {
            app.sign_hash(
                Csc::V2,
                &token,
                &credential,
                &sad,
                &[hash],
                None,
                ES256,
                None,
            )
            .await
        }
    };
    let got = sign(sad1.clone(), h[1].clone()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = sign(sad1.clone(), h[0].clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Another algorithm than the SAD's, or more hashes than signatures left: refused.
    let got = extend(
        &app,
        &token,
        &credential,
        &sad1,
        &digests(1, 48),
        OID_SHA384,
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = extend(&app, &token, &credential, &sad1, &h[1..3], OID_SHA256).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("1 signatures left, 2 asked"),
        "{}",
        got.1
    );
    let (status, body) = extend(&app, &token, &credential, &sad1, &h[1..2], OID_SHA256).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad2 = string(&body, "SAD");
    assert!(body["expiresIn"].as_u64().is_some_and(|e| e > 0));
    // The old SAD is gone; the new one signs exactly the hash it was bound to.
    let got = sign(sad1.clone(), h[1].clone()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = sign(sad2.clone(), h[2].clone()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("not authorised"),
        "{}",
        got.1
    );
    let (status, body) = sign(sad2.clone(), h[1].clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Both signatures spent: nothing more to bind.
    let got = extend(&app, &token, &credential, &sad2, &h[3..4], OID_SHA256).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = sign(sad2.clone(), h[3].clone()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_transaction_never_authorises_more_under_parallel_requests() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let first = digests(1, 32).remove(0);
    let (token, credential, sad1) = partly_bound(&app, 2, &first).await;
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad1,
            std::slice::from_ref(&first),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Ten clients race to bind a hash of their own to the one signature left: one wins.
    let candidates = digests(10, 32);
    let races = candidates.iter().map(|h| {
        let (app, token, credential, sad1) = (&app, &token, &credential, &sad1);
        async move {
            extend(
                app,
                token,
                credential,
                sad1,
                std::slice::from_ref(h),
                OID_SHA256,
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(races).await;
    let won: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].0 == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for (i, got) in answers.iter().enumerate() {
        if !won.contains(&i) {
            assert_error(got, StatusCode::BAD_REQUEST, "invalid_request");
        }
    }
    let sad2 = string(&answers[won[0]].1, "SAD");
    // Every candidate signed in parallel with the winning SAD: only the bound one, once.
    let mut requests: Vec<Vec<u8>> = candidates.clone();
    requests.extend(std::iter::repeat_n(candidates[won[0]].clone(), 5));
    let signs = requests.iter().map(|h| {
        let (app, token, credential, sad2) = (&app, &token, &credential, &sad2);
        async move {
            app.sign_hash(
                Csc::V2,
                token,
                credential,
                sad2,
                std::slice::from_ref(h),
                None,
                ES256,
                None,
            )
            .await
        }
    });
    let signed = futures_util::future::join_all(signs).await;
    let ok = signed.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{signed:?}");
    // Nothing left: neither the old nor the new SAD binds another hash.
    for sad in [&sad1, &sad2] {
        let got = extend(&app, &token, &credential, sad, &digests(1, 32), OID_SHA256).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_method_answers_with_the_error_codes_of_its_version() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let login = |v: Csc, password: Option<&str>, body: Value| {
        let mut req = app
            .client
            .post(format!("{}{}", app.public, v.path("auth/login")))
            .json(&body);
        if let Some(p) = password {
            req = req.basic_auth(&user.user_id, Some(p));
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    // auth/login: wrong password, no credentials, a bad refresh token.
    let got = login(Csc::V2, Some("Wrong-Password-1"), json!({})).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "authentication_error");
    let got = login(Csc::V1, Some("Wrong-Password-1"), json!({})).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "access_denied");
    let got = login(Csc::V2, None, json!({})).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "invalid_request");
    let got = login(Csc::V1, None, json!({})).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "access_denied");
    let got = login(
        Csc::V2,
        None,
        json!({ "refresh_token": "not-a-refresh-token" }),
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    // credentials/authorize: a wrong PIN, a wrong OTP.
    let hashes = digests(1, 32);
    let got = app
        .authorize(
            Csc::V2,
            &token,
            &credential,
            "00000000",
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    assert!(got.1["error_description"]
        .as_str()
        .unwrap()
        .contains("wrong PIN"));
    let got = app
        .authorize(
            Csc::V1,
            &token,
            &credential,
            "00000000",
            1,
            Some(&hashes),
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_pin");
    let _ = app.sms_otp(&token, &credential).await;
    let got = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential,
            &pin,
            "000000",
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    let got = app
        .authorize_with(
            Csc::V1,
            &token,
            &credential,
            &pin,
            "000000",
            1,
            Some(&hashes),
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    // Still the right PIN after two wrong ones: authorised.
    let (status, body) = app
        .authorize(
            Csc::V2,
            &token,
            &credential,
            &pin,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // credentials/list and info: a bad `certificates`.
    for path in ["/csc/v2/credentials/list", "/csc/v2/credentials/info"] {
        let got = app
            .post(
                path,
                Some(&token),
                json!({ "credentialID": credential, "credentialInfo": true,
                        "certificates": "all" }),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }

    // credentials/list: userID SHALL NOT be given, not even the caller's own.
    let got = app
        .post(
            "/csc/v2/credentials/list",
            Some(&token),
            json!({ "userID": user.user_id }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "userID parameter MUST be null");

    // Methods not implemented: 501 with a CSC error, on both versions.
    for path in [
        "/csc/v2/signatures/signDoc",
        "/csc/v2/credentials/authorizeCheck",
        "/csc/v2/no/such/method",
        "/csc/v1/credentials/getChallenge",
    ] {
        let got = app.post(path, Some(&token), json!({})).await;
        assert_error(&got, StatusCode::NOT_IMPLEMENTED, "invalid_request");
    }
    // A known method with the wrong HTTP method stays 405.
    let res = app
        .client
        .get(format!("{}/csc/v2/credentials/list", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}
