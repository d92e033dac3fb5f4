//! The PIN and the PUK appear nowhere in clear: not in PostgreSQL, not in Redis, not in logs;
//! TOTP seeds are sealed with a key that only the HSM holds.

use redis::AsyncCommands;
use reqwest::StatusCode;
use tokio_postgres::NoTls;

use crate::support::{captured_logs, env, TestApp};

/// Every row of every table of `schema`, as text (bytea as hex, so digests are searchable too).
async fn dump_schema(schema: &str) -> String {
    let (client, connection) = tokio_postgres::connect(&env("SIGILLO_TEST_DATABASE_URL"), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tables = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap();
    assert!(
        tables.len() >= 4,
        "users, credentials, ca_certificates, audit_log"
    );
    let mut dump = String::new();
    for table in tables {
        let name: String = table.get(0);
        for row in client
            .query(&format!("SELECT t::text FROM {schema}.{name} t"), &[])
            .await
            .unwrap()
        {
            dump.push_str(&row.get::<_, String>(0));
            dump.push('\n');
        }
    }
    dump
}

/// Every value under `prefix` in Redis.
async fn dump_redis(prefix: &str) -> String {
    let client = redis::Client::open(env("SIGILLO_TEST_REDIS_URL")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap();
    let mut dump = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let value = match kind.as_str() {
            "string" => conn.get::<_, String>(&key).await.unwrap(),
            "hash" => format!(
                "{:?}",
                conn.hgetall::<_, Vec<(String, String)>>(&key)
                    .await
                    .unwrap()
            ),
            other => format!("<{other}>"),
        };
        dump.push_str(&format!("{key} {value}\n"));
    }
    dump
}

fn assert_absent(haystack: &str, secret: &str, what: &str, place: &str) {
    assert!(
        !haystack.contains(secret),
        "{what} found in clear in {place}"
    );
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !haystack.contains(&hex),
        "{what} found hex-encoded in {place}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_and_puks_are_stored_nowhere_in_clear() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let pending = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let pin = "90817263";
    let otp = app.sms_otp(&token, &credential.id).await;
    let (status, _) = app
        .activate(&token, &credential.id, &credential.puk, pin, &otp)
        .await;
    assert_eq!(status, StatusCode::OK);
    // A failed attempt with a wrong PUK and another PIN must not leak either.
    let other_pin = "55443322";
    let otp = app.sms_otp(&token, &pending.id).await;
    let (status, _) = app
        .activate(&token, &pending.id, "13572468", other_pin, &otp)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A pending OTP sits in Redis.
    app.sms_otp(&token, &pending.id).await;

    let pg = dump_schema(&app.config.database.schema).await;
    assert!(
        pg.contains(&credential.id),
        "the dump covers the credentials table"
    );
    let kv = dump_redis(&app.config.redis.key_prefix).await;
    assert!(kv.contains("otp:sms"), "the dump covers the OTP keys: {kv}");
    let pending_otp = app.last_sms_code();
    assert_absent(&kv, &pending_otp, "the OTP", "Redis");
    let logs = captured_logs();
    assert!(!logs.is_empty(), "logs were captured");
    for (secret, what) in [
        (pin, "the PIN"),
        (other_pin, "a tried PIN"),
        (credential.puk.as_str(), "the PUK"),
        (pending.puk.as_str(), "the pending PUK"),
        ("13572468", "a tried PUK"),
    ] {
        assert_absent(&pg, secret, what, "PostgreSQL");
        assert_absent(&kv, secret, what, "Redis");
        assert_absent(&logs, secret, what, "the logs");
    }
    assert_absent(&pg, &user.password, "the password", "PostgreSQL");
    assert_absent(&logs, &user.password, "the password", "the logs");
}

/// The key the gateway derived from `token_secret` to seal TOTP seeds before the HSM held it
/// (computed here, independently of the gateway's code): HMAC-SHA256(token_secret,
/// "sigillo-v1" 0x00 "seal").
fn token_secret_seal_key(token_secret: &str) -> Vec<u8> {
    let key = openssl::pkey::PKey::hmac(token_secret.as_bytes()).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(b"sigillo-v1\0seal").unwrap();
    signer.sign_to_vec().unwrap()
}

/// Opens `sealed` as the old format (`nonce || tag || ciphertext`) with only that key.
fn open_with_environment(token_secret: &str, user_id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let key = token_secret_seal_key(token_secret);
    // Both layouts an attacker could try: the whole value, and the value after a prefix.
    [sealed, sealed.get(2..).unwrap_or_default()]
        .into_iter()
        .filter(|s| s.len() > 28)
        .find_map(|s| {
            openssl::symm::decrypt_aead(
                openssl::symm::Cipher::aes_256_gcm(),
                &key,
                Some(&s[..12]),
                user_id.as_bytes(),
                &s[28..],
                &s[12..28],
            )
            .ok()
        })
}

/// A seed sealed in the old format, as a gateway before this change stored it.
fn seal_old_format(token_secret: &str, user_id: &str, seed: &[u8]) -> Vec<u8> {
    let key = token_secret_seal_key(token_secret);
    let nonce: [u8; 12] = rand::random();
    let mut tag = [0u8; 16];
    let ct = openssl::symm::encrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        &key,
        Some(&nonce),
        user_id.as_bytes(),
        seed,
        &mut tag,
    )
    .unwrap();
    [&nonce[..], &tag[..], &ct[..]].concat()
}

async fn stored_totp_secret(app: &TestApp, user_id: &str) -> Vec<u8> {
    let client = app.services().db.get().await.unwrap();
    client
        .query_one(
            "SELECT totp_secret FROM users WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_seeds_are_sealed_in_the_hsm_and_old_seals_still_open() {
    use crate::support::totp_codes;
    let app = TestApp::spawn().await;
    let token_secret = app.config.security.token_secret.expose().to_owned();
    let user = app.create_user("totp").await;
    let uri = user.totp_uri.clone().unwrap();
    let seed = totp_rs::TOTP::from_url_unchecked(&uri).unwrap().secret;

    // Sealed now: the gateway's environment (token_secret) alone does not open it.
    let stored = stored_totp_secret(&app, &user.user_id).await;
    assert!(
        open_with_environment(&token_secret, &user.user_id, &stored).is_none(),
        "a TOTP seed sealed now opens with the token_secret-derived key alone"
    );
    assert!(!stored.windows(seed.len()).any(|w| w == seed.as_slice()));
    // The HSM opens it, for that user only, and refuses a tampered copy.
    let secrets = &app.services().secrets;
    assert_eq!(
        secrets.open(&user.user_id, &stored).await.unwrap().to_vec(),
        seed
    );
    let other = secrets.open("someone-else", &stored).await;
    assert!(matches!(
        other,
        Err(sigillo::secrets::SecretsError::BadSeal)
    ));
    let mut tampered = stored.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(matches!(
        secrets.open(&user.user_id, &tampered).await,
        Err(sigillo::secrets::SecretsError::BadSeal)
    ));

    // A seed sealed in the old format still opens, end to end: the subscriber activates a
    // credential with a code of it.
    let old = seal_old_format(&token_secret, &user.user_id, &seed);
    assert_eq!(
        open_with_environment(&token_secret, &user.user_id, &old).as_deref(),
        Some(seed.as_slice())
    );
    let client = app.services().db.get().await.unwrap();
    client
        .execute(
            "UPDATE users SET totp_secret = $2 WHERE user_id = $1",
            &[&user.user_id, &old],
        )
        .await
        .unwrap();
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let token = app.login(&user).await;
    let (code, _) = totp_codes(&uri);
    let (status, body) = app
        .activate(&token, &credential.id, &credential.puk, "24681357", &code)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an old-format seed must still open: {body}"
    );

    // The next gateway start seals it again in the HSM, once; it is still the same seed.
    let _node = TestApp::spawn_node(app.config.clone()).await;
    let resealed = stored_totp_secret(&app, &user.user_id).await;
    assert_ne!(
        resealed, old,
        "the old-format seed was not resealed at start-up"
    );
    assert!(open_with_environment(&token_secret, &user.user_id, &resealed).is_none());
    // ... and the resealed seed still gives the subscriber's codes.
    let second = app.create_credential(&user, "ec-p256", "signing").await;
    let (_, next) = totp_codes(&uri);
    if next != code {
        let (status, body) = app
            .activate(&token, &second.id, &second.puk, "24681357", &next)
            .await;
        assert_eq!(status, StatusCode::OK, "the resealed seed: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_otp_digest_key_comes_from_the_hsm_not_from_the_environment() {
    let a = TestApp::spawn().await;
    // Same environment (token_secret), another HSM key: other digests.
    let mut config = crate::support::test_config(&crate::support::random_suffix());
    config.security.token_secret = a.config.security.token_secret.clone();
    let b = TestApp::spawn_node(config).await;
    let digest = |app: &TestApp| {
        app.services()
            .secrets
            .otp_digest("alice", "123456")
            .unwrap()
    };
    assert_ne!(
        digest(&a),
        digest(&b),
        "the OTP digest key is a function of token_secret alone"
    );
    // Another node of the same gateway (same token and objects) agrees with the first.
    let a2 = TestApp::spawn_node(a.config.clone()).await;
    assert_eq!(digest(&a), digest(&a2));
    assert_eq!(
        a.services().secrets.token_key(),
        b.services().secrets.token_key(),
        "the access-token key is still derived from token_secret"
    );
}
