//! Expiry notices over a simulated calendar: exactly the scheduled dates, once each (SMS and
//! the e-mail queued in the mail outbox), even with two nodes running the scheduler; visible
//! to the subscriber.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sigillo::notices;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use crate::support::{random_suffix, test_config, TestApp};

fn outbox_notices(app: &TestApp, serial: &str) -> usize {
    std::fs::read_to_string(&app.config.otp.outbox_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(serial) && l.contains("expires on"))
        .count()
}

/// Expiry e-mails queued in the mail outbox for `serial`, to the test subscriber's address
/// (tests/it/mail.rs follows them to the SMTP server).
async fn mailed(app: &TestApp, serial: &str) -> i64 {
    let client = app.services().db.get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM mail_outbox WHERE kind = 'expiry_notice' \
             AND recipient LIKE '%@example.org' AND strpos(body, $1) > 0",
            &[&serial],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_year_sends_exactly_the_scheduled_notices_once() {
    let config = test_config(&random_suffix());
    let a = TestApp::spawn_node(config.clone()).await;
    let b = TestApp::spawn_node(config).await;
    let user = a.create_user("sms").await;
    // Valid 200 days: its first notice (6 months before expiry) is inside the simulated year.
    let (status, body) = a
        .admin_post(
            &format!("/admin/v1/users/{}/credentials", user.user_id),
            json!({ "key_algo": "ec-p256", "purpose": "signing", "validity_days": 200 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = Uuid::parse_str(body["credential_id"].as_str().unwrap()).unwrap();
    let serial = body["serial_number"].as_str().unwrap().to_owned();
    let stored = sigillo::db::repo::credentials::find(&a.services().db, id)
        .await
        .unwrap()
        .unwrap();
    let expiry: Date = stored.valid_to.date();

    let today = OffsetDateTime::now_utc().date();
    let mut sent_on = BTreeSet::new();
    for day in 0..366 {
        let date = today + Duration::days(day);
        // Both nodes run the scheduler every simulated day.
        let (x, y) = tokio::join!(
            notices::run_once(a.services(), date),
            notices::run_once(b.services(), date)
        );
        if x.unwrap() + y.unwrap() > 0 {
            sent_on.insert(date);
        }
    }
    let expected: BTreeSet<Date> = notices::schedule(expiry)
        .into_iter()
        .filter(|d| *d >= today)
        .collect();
    assert_eq!(
        expected.len(),
        9,
        "all nine notices fall inside 200 days: {expected:?}"
    );
    // Other tests' credentials share the database only through their own schema: the days
    // with a notice are exactly this credential's schedule.
    assert_eq!(sent_on, expected);
    assert_eq!(
        outbox_notices(&a, &serial),
        9,
        "each notice texted once, by one node"
    );
    assert_eq!(
        mailed(&a, &serial).await,
        9,
        "each notice e-mailed once, to the subscriber's address"
    );

    let token = a.login(&user).await;
    let res = a
        .client
        .get(format!("{}/api/v1/notifications", a.public))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    let items = list["notifications"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    let dates: BTreeSet<String> = items
        .iter()
        .map(|n| n["due_date"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(dates, expected.iter().map(|d| d.to_string()).collect());
    let text = items[0]["text"].as_str().unwrap();
    assert!(
        text.contains(&expiry.to_string()) && text.contains(&format!("{id}/renew")),
        "{text}"
    );
    // Another subscriber sees none of them.
    let other = a.create_user("sms").await;
    let other_token = a.login(&other).await;
    let list: Value = a
        .client
        .get(format!("{}/api/v1/notifications", a.public))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["notifications"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_enrolment_gets_only_the_latest_notice_and_a_revoked_one_none() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let path = format!("/admin/v1/users/{}/credentials", user.user_id);
    let create = |days: u32| {
        app.admin_post(
            &path,
            json!({ "key_algo": "ec-p256", "purpose": "signing", "validity_days": days }),
        )
    };
    let (_, late) = create(40).await;
    let (_, revoked) = create(40).await;
    let revoked_id = revoked["credential_id"].as_str().unwrap();
    let (status, _) = app
        .admin_post(
            &format!("/admin/v1/credentials/{revoked_id}/revoke"),
            json!({ "reason": "test" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(
        notices::run_once(app.services(), today).await.unwrap(),
        1,
        "one notice, not six"
    );
    assert_eq!(
        notices::run_once(app.services(), today).await.unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(
        outbox_notices(&app, late["serial_number"].as_str().unwrap()),
        1
    );
    assert_eq!(
        outbox_notices(&app, revoked["serial_number"].as_str().unwrap()),
        0
    );
    assert_eq!(
        mailed(&app, late["serial_number"].as_str().unwrap()).await,
        1
    );
    assert_eq!(
        mailed(&app, revoked["serial_number"].as_str().unwrap()).await,
        0
    );
}
