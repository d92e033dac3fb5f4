//! Every refusal of the CSC API, one by one, with its CSC error code.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sigillo::db::repo;
use uuid::Uuid;

use crate::support::{assert_error, b64, digests, Csc, TestApp, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";
const RS256: &str = "1.2.840.113549.1.1.11";

fn other_pin(pin: &str) -> String {
    format!("{:08}", (pin.parse::<u32>().unwrap() + 1) % 100_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_count_and_the_third_blocks() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let hashes = digests(1, 32);
    for v in [Csc::V2, Csc::V1] {
        let got = app
            .authorize(
                v,
                &token,
                &credential,
                "1234",
                1,
                Some(&hashes),
                Some(OID_SHA256),
            )
            .await;
        // CSC v2 §11.6 names wrong authentication data one way; v1 keeps invalid_pin.
        let code = match v {
            Csc::V2 => "invalid_authentication_data",
            Csc::V1 => "invalid_pin",
        };
        assert_error(&got, StatusCode::BAD_REQUEST, code);
    }
    let got = app
        .authorize(
            Csc::V2,
            &token,
            &credential,
            &other_pin(&pin),
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("PIN-blocked"),
        "{}",
        got.1
    );
    // Blocked: even the right PIN is refused now, naming the state.
    let got = app
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
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "the credential is pin_blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_pin_resets_the_count() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let hashes = digests(1, 32);
    for _ in 0..2 {
        for bad in [other_pin(&pin)] {
            let got = app
                .authorize(
                    Csc::V2,
                    &token,
                    &credential,
                    &bad,
                    1,
                    Some(&hashes),
                    Some(OID_SHA256),
                )
                .await;
            assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
        }
        app.sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expired_and_reused_otps() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.otp.ttl_secs = 1;
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let hashes = digests(1, 32);
    let otp = app.sms_otp(&token, &credential).await;
    let wrong = format!("{:06}", (otp.parse::<u32>().unwrap() + 1) % 1_000_000);
    let got = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential,
            &pin,
            &wrong,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    let (status, _) = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential,
            &pin,
            &otp,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = app
        .authorize_with(
            Csc::V1,
            &token,
            &credential,
            &pin,
            &otp,
            1,
            Some(&hashes),
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_otp");
    let otp = app.sms_otp(&token, &credential).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let got = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential,
            &pin,
            &otp,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_authentication_data");
    // A missing factor is an invalid request.
    let got = app
        .post(
            "/csc/v2/credentials/authorize",
            Some(&token),
            json!({ "credentialID": credential, "numSignatures": 1, "hashes": [b64(&hashes[0])],
                    "hashAlgorithmOID": OID_SHA256, "authData": [{ "id": "PIN", "value": pin }] }),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sad_signs_no_more_than_authorised_and_not_after_expiry() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
        c.csc.sad_ttl_secs = 2;
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (status, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 3, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(4, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("3 signatures left"),
        "{}",
        got.1
    );
    let (status, _) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(2, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a refused request consumed nothing");
    let (status, _) = app
        .sign_hash(
            Csc::V1,
            &token,
            &credential,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    let (_, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    let sad = body["SAD"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(got.1["error_description"]
        .as_str()
        .unwrap()
        .contains("unknown or expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scal2_signs_exactly_the_authorised_hashes() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    // SCAL2: no hashes, no SAD.
    let got = app
        .authorize(Csc::V2, &token, &credential, &pin, 1, None, None)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let authorised = digests(3, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &authorised, OID_SHA256)
        .await;
    let stranger = digests(1, 32);
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &stranger,
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("not authorised"),
        "{}",
        got.1
    );
    // Twice the same authorised hash in one request is not two authorisations.
    let twice = vec![authorised[0].clone(), authorised[0].clone()];
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &twice,
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    // A mix is refused whole, and consumes nothing.
    let mixed = vec![authorised[0].clone(), stranger[0].clone()];
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &mixed,
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &authorised[..2],
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A signed hash cannot be signed again with the same SAD.
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &authorised[..1],
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, _) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &authorised[2..],
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Authorize itself refuses duplicates and counts that do not match.
    let dup = vec![authorised[0].clone(), authorised[0].clone()];
    let got = app
        .authorize(
            Csc::V2,
            &token,
            &credential,
            &pin,
            2,
            Some(&dup),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    // v2: fewer signatures than hashes is refused (more are the later hashes of a document,
    // bound by extendTransaction: tests/it/csc_v2_strict.rs); v1: the counts must match.
    for (v, n) in [(Csc::V2, 1), (Csc::V1, 3)] {
        let got = app
            .authorize(
                v,
                &token,
                &credential,
                &pin,
                n,
                Some(&authorised[..2]),
                Some(OID_SHA256),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_credentials_and_unusable_states() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (_, intruder_token, intruder_credential, intruder_pin) =
        app.active_credential("ec-p256", "signing").await;
    let hashes = digests(1, 32);
    for v in [Csc::V1, Csc::V2] {
        let got = app
            .post(
                &v.path("credentials/info"),
                Some(&intruder_token),
                json!({ "credentialID": credential }),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(got.1["error_description"], "Invalid parameter credentialID");
    }
    // The intruder's own SAD cannot sign with the victim's credential.
    let sad = app
        .sad_for(
            Csc::V2,
            &intruder_token,
            &intruder_credential,
            &intruder_pin,
            &hashes,
            OID_SHA256,
        )
        .await;
    let got = app
        .sign_hash(
            Csc::V2,
            &intruder_token,
            &credential,
            &sad,
            &hashes,
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    // Nor can the victim's SAD be used with the intruder's token.
    let victim_sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
    let got = app
        .sign_hash(
            Csc::V2,
            &intruder_token,
            &credential,
            &victim_sad,
            &hashes,
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .sign_hash(
            Csc::V2,
            &intruder_token,
            &intruder_credential,
            &victim_sad,
            &hashes,
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");

    // Inactive: not yet activated.
    let user = app.create_user("sms").await;
    let inactive = app.create_credential(&user, "ec-p256", "signing").await;
    let user_token = app.login(&user).await;
    let got = app
        .authorize(
            Csc::V2,
            &user_token,
            &inactive.id,
            "12345678",
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "the credential is inactive");
    // Revoked (set by the operator; the admin endpoint comes with the lifecycle issue).
    let id = Uuid::parse_str(&credential).unwrap();
    let client = app.services().db.get().await.unwrap();
    client
        .execute(
            "UPDATE credentials SET status = 'revoked' WHERE credential_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let got = app
        .authorize_with(
            Csc::V2,
            &token,
            &credential,
            &pin,
            "123456",
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(got.1["error_description"], "the credential is revoked");
    let (_, info) = app
        .post(
            "/csc/v2/credentials/info",
            Some(&token),
            json!({ "credentialID": credential }),
        )
        .await;
    assert_eq!(
        (
            info["cert"]["status"].as_str(),
            info["key"]["status"].as_str()
        ),
        (Some("revoked"), Some("disabled"))
    );
    let stored = repo::credentials::find(&app.services().db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status.as_str(), "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authentication_certificate_cannot_sign_documents() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "authentication").await;
    let hashes = digests(1, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
    let got = app
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
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("not a signing certificate"),
        "{}",
        got.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_everywhere() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let hashes = digests(1, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/revoke", app.public))
        .bearer_auth(&token)
        .json(&json!({ "token": token, "token_type_hint": "access_token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let got = app
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
    assert_error(&got, StatusCode::UNAUTHORIZED, "invalid_token");
    for path in ["/csc/v2/credentials/list", "/csc/v1/credentials/list"] {
        let got = app.post(path, Some(&token), json!({})).await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sign_hash_requests() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.max_hashes = 10;
        c.csc.scal = "1".into();
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (_, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 5, None, None)
        .await;
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let sign =
        |body: serde_json::Value| app.post("/csc/v2/signatures/signHash", Some(&token), body);
    let base = |hashes: serde_json::Value, sign_algo: &str| json!({ "credentialID": credential, "SAD": sad, "hashes": hashes, "signAlgo": sign_algo });
    let ok_hash = b64(&digests(1, 32)[0]);
    let cases = [
        ("malformed base64", base(json!(["not*base64"]), ES256)),
        ("wrong hash length", base(json!([b64(&[1u8; 20])]), ES256)),
        (
            "hash length of another algorithm",
            base(json!([b64(&[1u8; 48])]), ES256),
        ),
        ("unknown signAlgo", base(json!([ok_hash]), "1.2.3.4")),
        ("SHA-1 RSA", base(json!([ok_hash]), "1.2.840.113549.1.1.5")),
        ("key/algorithm mismatch", base(json!([ok_hash]), RS256)),
        (
            "ecPublicKey without hash",
            base(json!([ok_hash]), "1.2.840.10045.2.1"),
        ),
        (
            "too many hashes",
            base(json!(vec![ok_hash.clone(); 11]), ES256),
        ),
        ("no hashes", base(json!([]), ES256)),
        (
            "bad credentialID",
            json!({ "credentialID": "x", "SAD": sad, "hashes": [ok_hash], "signAlgo": ES256 }),
        ),
        (
            "missing SAD",
            json!({ "credentialID": credential, "hashes": [ok_hash], "signAlgo": ES256 }),
        ),
        ("hash OID contradicts signAlgo", {
            let mut b = base(json!([ok_hash]), ES256);
            b["hashAlgorithmOID"] = json!("2.16.840.1.101.3.4.2.3");
            b
        }),
        ("asynchronous mode", {
            let mut b = base(json!([ok_hash]), ES256);
            b["operationMode"] = json!("A");
            b
        }),
    ];
    for (what, body) in cases {
        let got = sign(body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            !got.1["error_description"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }
    // None of these consumed the SAD.
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &digests(5, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_sign_more_than_a_sad_authorised() {
    let isolation = crate::support::random_suffix();
    let config = {
        let mut c = crate::support::test_config(&isolation);
        c.csc.scal = "1".into();
        c.otp.send_limit = 100;
        c
    };
    let a = TestApp::spawn_node(config.clone()).await;
    let b = TestApp::spawn_node(config).await;
    let (_, token, credential, pin) = a.active_credential("ec-p256", "signing").await;
    let (status, body) = b
        .authorize(Csc::V2, &token, &credential, &pin, 10, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let requests = (0..30).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let (token, credential, sad) = (token.clone(), credential.clone(), sad.clone());
        async move {
            node.sign_hash(
                Csc::V2,
                &token,
                &credential,
                &sad,
                &digests(1, 32),
                None,
                ES256,
                None,
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!((ok, refused), (10, 20), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_transaction_replaces_the_sad() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.csc.scal = "1".into();
    })
    .await;
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (_, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 3, None, None)
        .await;
    let old = body["SAD"].as_str().unwrap().to_owned();
    let (status, _) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &old,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for v in [Csc::V2, Csc::V1] {
        let (_, other_credential) = (0, uuid::Uuid::new_v4().to_string());
        let got = app
            .post(
                &v.path("credentials/extendTransaction"),
                Some(&token),
                json!({ "credentialID": other_credential, "SAD": old }),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (status, body) = app
        .post(
            "/csc/v1/credentials/extendTransaction",
            Some(&token),
            json!({ "credentialID": credential, "SAD": old }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["SAD"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &old,
            &digests(1, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &new,
            &digests(3, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, _) = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &new,
            &digests(2, 32),
            None,
            ES256,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the remaining 2 carried over");
}
