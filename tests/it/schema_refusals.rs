//! Requests the OpenAPI document forbids are refused (found by scripts/schemathesis): an
//! optional CSC field sent as `null` is a wrong type, a 400 `invalid_request` ("invalid JSON
//! body"), not the same as leaving it out — and a refused request changes nothing. (The
//! admin API's `validity_days` is documented as nullable and stays so.)

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, b64, digests, Csc, TestApp, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";

/// A refusal of the body itself (the wire layer), not of a value the domain checked.
fn assert_body_refused(what: &str, got: &(StatusCode, Value)) {
    assert_error(got, StatusCode::BAD_REQUEST, "invalid_request");
    let description = got.1["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("invalid JSON body"),
        "{what}: {}",
        got.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_for_an_optional_field_is_refused() {
    let app = TestApp::spawn().await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;

    // auth/login reads its raw body: `refresh_token` is a string or absent.
    for v in [Csc::V2, Csc::V1] {
        let res = app
            .client
            .post(format!("{}{}", app.public, v.path("auth/login")))
            .basic_auth(&user.user_id, Some(&user.password))
            .json(&json!({ "refresh_token": null }))
            .send()
            .await
            .unwrap();
        let got = (res.status(), res.json().await.unwrap_or(Value::Null));
        assert_body_refused("auth/login refresh_token", &got);
    }

    let cases = [
        (Csc::V2, "credentials/list", json!({ "userID": null })),
        (Csc::V1, "credentials/list", json!({ "userID": null })),
        (Csc::V1, "credentials/list", json!({ "maxResults": null })),
        (
            Csc::V2,
            "credentials/info",
            json!({ "credentialID": credential, "certificates": null }),
        ),
        (
            Csc::V2,
            "credentials/authorize",
            json!({ "credentialID": credential, "numSignatures": 1, "hashes": null,
                    "authData": [{ "id": "PIN", "value": pin }] }),
        ),
    ];
    for (v, method, body) in cases {
        let got = app.post(&v.path(method), Some(&token), body.clone()).await;
        assert_body_refused(&format!("{v:?} {method} {body}"), &got);
    }

    // signHash: a null `signAlgoParams` signs nothing and spends nothing of the SAD.
    let hashes = digests(1, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
    let body = json!({
        "credentialID": credential, "SAD": sad, "hashes": [b64(&hashes[0])],
        "hashAlgorithmOID": OID_SHA256, "signAlgo": ES256, "signAlgoParams": null,
    });
    let got = app
        .post(&Csc::V2.path("signatures/signHash"), Some(&token), body)
        .await;
    assert_body_refused("signHash signAlgoParams", &got);
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &hashes,
            Some(OID_SHA256),
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["signatures"].as_array().map(Vec::len), Some(1));
}
