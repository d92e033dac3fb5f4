//! TLS on all three legs: the gateway serves HTTPS on both listeners (the admin one requires a
//! client certificate of the configured CA), talks to PostgreSQL with `sslmode=verify-full`
//! and to Redis over `rediss://`, and a subscriber logs in and signs through all of it. A
//! certificate from another CA is refused on every leg.

use std::path::PathBuf;

use openssl::ecdsa::EcdsaSig;
use reqwest::StatusCode;
use serde_json::json;
use sigillo::config::{Config, Secret};

use crate::support::{digests, env, test_config, unb64, Csc, TestApp, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env("SIGILLO_TEST_TLS_DIR")).join(name)
}

/// `config` with TLS on every leg, all certificates from the throwaway CA of scripts/test.
fn with_tls(c: &mut Config) {
    c.tls.cert_file = tls_file("server.pem");
    c.tls.key_file = tls_file("server.key");
    c.tls.admin_client_ca_file = tls_file("ca.pem");
    c.database.url = Secret::new(env("SIGILLO_TEST_DATABASE_TLS_URL"));
    c.database.ca_file = tls_file("ca.pem");
    c.redis.url = Secret::new(env("SIGILLO_TEST_REDIS_TLS_URL"));
    c.redis.ca_file = tls_file("ca.pem");
}

/// An HTTPS client that trusts only the test CA; with `identity`, it presents the operator's
/// client certificate.
fn https_client(identity: bool, tls_1_2_only: bool) -> reqwest::Client {
    let ca = std::fs::read(tls_file("ca.pem")).unwrap();
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
    if identity {
        let mut pem = std::fs::read(tls_file("client.pem")).unwrap();
        pem.extend(std::fs::read(tls_file("client.key")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    if tls_1_2_only {
        builder = builder.max_tls_version(reqwest::tls::Version::TLS_1_2);
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_signs_over_tls_on_every_leg_and_the_admin_api_wants_a_client_certificate() {
    let mut app = TestApp::spawn_with(with_tls).await;
    let (public, admin) = (app.running.public_addr, app.running.admin_addr);
    app.public = format!("https://{public}");
    app.admin = format!("https://{admin}");
    app.client = https_client(true, false);

    // The gateway's own connections: PostgreSQL over TLS, Redis on its TLS port. (The
    // runtime pool's role cannot see pg_stat_ssl rows, so the owner's connection, built by the
    // same code with the same settings, is asked.)
    let owner = sigillo::db::connect_owner(&app.config.database)
        .await
        .unwrap();
    let db = owner.get().await.unwrap();
    let row = db
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the PostgreSQL connection is TLS");
    let version: String = row.get(1);
    assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");
    drop(db);
    let mut kv = app.services().kv.conn();
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut kv)
        .await
        .unwrap();
    let tls_port = env("SIGILLO_TEST_REDIS_TLS_URL")
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        info.contains(&format!("laddr=127.0.0.1:{tls_port} ")),
        "the Redis connection reached the TLS port {tls_port}: {info}"
    );

    // Plain HTTP on the TLS listeners gets no answer.
    let plain = reqwest::Client::new();
    for addr in [public, admin] {
        let res = plain.get(format!("http://{addr}/healthz")).send().await;
        assert!(res.is_err(), "plain HTTP to {addr}: {res:?}");
    }

    // The admin listener: without a client certificate the handshake is refused, so the
    // admin token alone (a bearer a thief may hold) does not reach the API.
    let anonymous = https_client(false, false);
    let res = anonymous
        .post(format!("{}/admin/v1/users", app.admin))
        .bearer_auth(&app.admin_token)
        .json(&TestApp::user_json("nobody-tls", "sms"))
        .send()
        .await;
    assert!(
        res.is_err(),
        "admin API without a client certificate: {res:?}"
    );
    // The public listener asks for none.
    let res = anonymous
        .get(format!("{}/healthz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // TLS 1.2 is still served (and 1.3, which the other clients negotiate).
    let res = https_client(true, true)
        .get(format!("{}/healthz", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("strict-transport-security").is_none());

    // With the operator's certificate: a subscriber, a credential, a login (HSTS on the
    // public listener), an activation, a SAD and a signature, verified with openssl.
    let user = app.create_user("sms").await;
    let res = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&user.user_id, Some(&user.password))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    let (_, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let hashes = digests(1, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
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
    let signature = unb64(body["signatures"][0].as_str().unwrap());
    let key = app
        .leaf_certificate(Csc::V2, &token, &credential)
        .await
        .public_key()
        .unwrap();
    let sig = EcdsaSig::from_der(&signature).unwrap();
    assert!(sig.verify(&hashes[0], &key.ec_key().unwrap()).unwrap());
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused_by_postgresql_and_redis_connections() {
    // The client certificate is signed by the CA but is no CA itself: trusting it alone,
    // neither the PostgreSQL nor the Redis server certificate verifies.
    let mut config = test_config(&crate::support::random_suffix());
    with_tls(&mut config);
    config.database.ca_file = tls_file("client.pem");
    let Err(err) = sigillo::db::connect_owner(&config.database).await else {
        panic!("PostgreSQL with an untrusted server certificate is refused");
    };
    assert!(err.to_string().contains("TLS handshake"), "{err}");

    config.redis.ca_file = tls_file("client.pem");
    let Err(err) = sigillo::kv::Kv::connect(&config.redis).await else {
        panic!("Redis with an untrusted server certificate is refused");
    };
    assert!(err.to_string().contains("certificate"), "{err}");

    // A wrong key for the listeners' certificate stops the gateway at start-up.
    let mut config = test_config(&crate::support::random_suffix());
    with_tls(&mut config);
    config.tls.key_file = tls_file("client.key");
    let Err(err) = sigillo::app::start(config).await else {
        panic!("a key that does not match the certificate is refused");
    };
    assert!(err.to_string().contains("tls.key_file"), "{err}");
}
