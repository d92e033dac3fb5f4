//! The CSC API's descriptive methods and sessions: info, list, credential info, login with
//! rememberMe and refresh tokens, revocation of refresh tokens; and the OpenAPI contract.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, Csc, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_in_both_versions_by_get_and_post() {
    let app = TestApp::spawn().await;
    for (v, specs) in [(Csc::V2, "2.0.0.2"), (Csc::V1, "1.0.4.0")] {
        let get: Value = app
            .client
            .get(format!("{}{}", app.public, v.path("info")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (status, post) = app
            .post(&v.path("info"), None, json!({ "lang": "en-US" }))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(get, post);
        assert_eq!(get["specs"], specs);
        assert_eq!(get["region"], "IT");
        // The authorization server is always on; its issuer defaults to the public listener.
        assert_eq!(get["authType"], json!(["basic", "oauth2code"]));
        let methods: Vec<&str> = get["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        for m in [
            "auth/login",
            "credentials/authorize",
            "signatures/signHash",
            "credentials/sendOTP",
        ] {
            assert!(methods.contains(&m), "{m}");
        }
        assert!(
            !methods.contains(&"signatures/signDoc"),
            "only what is implemented"
        );
    }
    let (_, v2) = app.post("/csc/v2/info", None, json!({})).await;
    let algos = v2["signAlgorithms"]["algos"].as_array().unwrap();
    assert!(
        algos.contains(&json!("1.2.840.10045.4.3.2"))
            && algos.contains(&json!("1.2.840.113549.1.1.10"))
    );
    assert_eq!(v2["asynchronousOperationMode"], false);
    // A wrong method is a CSC error too.
    let res = app
        .client
        .delete(format!("{}/csc/v2/info", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    // RFC 9110: a 405 names the methods the path has.
    assert_eq!(
        res.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let res = app
        .client
        .get(format!("{}/csc/v2/signatures/signHash", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_info_describe_the_callers_credentials() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, token, active, _) = app.active_credential("ec-p384", "signing").await;
    let inactive = app
        .create_credential(&user, "rsa-2048", "authentication")
        .await;

    let (status, body) = app
        .post(
            "/csc/v2/credentials/list",
            Some(&token),
            json!({ "credentialInfo": true, "certificates": "chain", "certInfo": true, "authInfo": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["credentialIDs"], json!([active, inactive.id]));
    let infos = body["credentialInfos"].as_array().unwrap();
    assert_eq!(infos.len(), 2);
    let first = &infos[0];
    assert_eq!(first["credentialID"], active);
    assert_eq!(first["key"]["status"], "enabled");
    assert_eq!(first["key"]["len"], 384);
    assert_eq!(first["key"]["curve"], "1.3.132.0.34");
    assert_eq!(first["cert"]["status"], "valid");
    assert_eq!(first["cert"]["certificates"].as_array().unwrap().len(), 3);
    assert_eq!(first["SCAL"], "2");
    assert_eq!(first["signatureQualifier"], "eu_eidas_qes");
    assert_eq!(first["auth"]["mode"], "explicit");
    assert_eq!(first["auth"]["objects"][0]["id"], "PIN");
    assert_eq!(first["auth"]["objects"][1]["id"], "OTP");
    let subject = first["cert"]["subjectDN"].as_str().unwrap();
    assert!(
        subject.contains("serialNumber=TINIT-RSSMRA80A01H501U")
            && subject.starts_with("CN=Mario Rossi"),
        "{subject}"
    );
    assert!(first["cert"]["issuerDN"]
        .as_str()
        .unwrap()
        .contains("CN=sigillo Qualified Signing CA"));
    let valid_to = first["cert"]["validTo"].as_str().unwrap();
    assert!(
        valid_to.len() == 15 && valid_to.ends_with('Z'),
        "{valid_to}"
    );
    assert_eq!(infos[1]["key"]["status"], "disabled");
    assert!(infos[1].get("signatureQualifier").is_none());

    // onlyValid keeps what can sign now.
    let (_, body) = app
        .post(
            "/csc/v2/credentials/list",
            Some(&token),
            json!({ "onlyValid": true }),
        )
        .await;
    assert_eq!(body["credentialIDs"], json!([active]));
    assert_eq!(body["onlyValid"], true);
    // userID: never in v2 (CSC v2 §11.4), the caller's own only in v1.
    for user_id in ["someone-else", user.user_id.as_str()] {
        let got = app
            .post(
                "/csc/v2/credentials/list",
                Some(&token),
                json!({ "userID": user_id }),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let got = app
        .post(
            "/csc/v1/credentials/list",
            Some(&token),
            json!({ "userID": "someone-else" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, _) = app
        .post(
            "/csc/v1/credentials/list",
            Some(&token),
            json!({ "userID": user.user_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // v1 paging.
    let (_, page) = app
        .post(
            "/csc/v1/credentials/list",
            Some(&token),
            json!({ "maxResults": 1 }),
        )
        .await;
    assert_eq!(page["credentialIDs"], json!([active]));
    let next = page["nextPageToken"].as_str().unwrap().to_owned();
    let (_, page) = app
        .post(
            "/csc/v1/credentials/list",
            Some(&token),
            json!({ "maxResults": 1, "pageToken": next }),
        )
        .await;
    assert_eq!(page["credentialIDs"], json!([inactive.id]));
    assert!(page.get("nextPageToken").is_none());
    for bad in [json!({ "maxResults": 0 }), json!({ "pageToken": "x" })] {
        let got = app
            .post("/csc/v1/credentials/list", Some(&token), bad)
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }

    // v1 info: descriptors and certificate modes.
    let (_, info) = app
        .post(
            "/csc/v1/credentials/info",
            Some(&token),
            json!({ "credentialID": active, "authInfo": true }),
        )
        .await;
    assert_eq!(info["authMode"], "explicit");
    assert_eq!(info["PIN"]["presence"], "true");
    assert_eq!(info["OTP"]["type"], "online");
    assert_eq!(
        info["cert"]["certificates"].as_array().unwrap().len(),
        1,
        "single by default"
    );
    assert!(
        info["cert"].get("subjectDN").is_none(),
        "certInfo defaults to false"
    );
    assert!(info["multisign"].as_u64().unwrap() >= 100);
    let (_, none) = app
        .post(
            "/csc/v1/credentials/info",
            Some(&token),
            json!({ "credentialID": active, "certificates": "none" }),
        )
        .await;
    assert!(none["cert"].get("certificates").is_none());
    let got = app
        .post(
            "/csc/v2/credentials/info",
            Some(&token),
            json!({ "credentialID": active, "certificates": "all" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remember_me_refresh_tokens_rotate_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let login = |body: Value, basic: bool| {
        let mut req = app
            .client
            .post(format!("{}/csc/v1/auth/login", app.public))
            .json(&body);
        if basic {
            req = req.basic_auth(&user.user_id, Some(&user.password));
        }
        req.send()
    };
    let plain: Value = login(json!({}), true).await.unwrap().json().await.unwrap();
    assert!(plain.get("refresh_token").is_none());
    let remembered: Value = login(json!({ "rememberMe": true }), true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = remembered["refresh_token"].as_str().unwrap().to_owned();

    let res = login(json!({ "refresh_token": refresh }), false)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    let next = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, refresh);
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post("/csc/v2/credentials/list", Some(&access), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The used refresh token is gone.
    let res = login(json!({ "refresh_token": refresh }), false)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "access_denied");
    // That replay ended the family (tests/it/sessions.rs): log in again.
    let again: Value = login(json!({ "rememberMe": true }), true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = again["refresh_token"].as_str().unwrap().to_owned();
    let access = again["access_token"].as_str().unwrap().to_owned();
    // Revoking the new one kills it.
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/revoke", app.public))
        .bearer_auth(&access)
        .json(&json!({ "token": next, "token_type_hint": "refresh_token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = login(json!({ "refresh_token": next }), false)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Malformed bodies and foreign tokens.
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&user.user_id, Some(&user.password))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let got = app
        .post(
            "/csc/v2/auth/revoke",
            Some(&access),
            json!({ "token": "not-a-token" }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

/// (METHOD, path) pairs of the `paths:` section of our OpenAPI document.
fn openapi_operations(listener_prefix: impl Fn(&str) -> bool) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    let mut in_paths = false;
    let mut path = String::new();
    for line in sigillo::app::OPENAPI.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = format!("/{}", p.trim_end().trim_end_matches(':'));
        } else if let Some(op) = line.strip_prefix("    ") {
            let op = op.trim_end().trim_end_matches(':');
            if ["get", "post", "put", "delete", "patch"].contains(&op) && listener_prefix(&path) {
                ops.insert((op.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn every_route_is_in_the_openapi_document_and_vice_versa() {
    let routes: BTreeSet<(String, String)> = sigillo::app::public_endpoints()
        .iter()
        .chain(sigillo::app::admin_endpoints().iter())
        .map(|e| (e.method.to_string(), e.path.to_owned()))
        .collect();
    let documented = openapi_operations(|_| true);
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi/sigillo.yaml: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
}
