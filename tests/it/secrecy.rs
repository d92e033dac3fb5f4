//! The PIN and the PUK appear nowhere in clear: not in PostgreSQL, not in Redis, not in logs.

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
