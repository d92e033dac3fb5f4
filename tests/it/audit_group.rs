//! Concurrent audit records share one commit: the writer holds a commit for the records that
//! requests in flight announced ([`Audit::expect`]), as long as the HSM's backlog lasts and at
//! most its linger; a record with nobody announced beside it commits at once, and a drain
//! ends every wait.

use std::time::Duration;

use serde_json::json;
use sigillo::audit::{Audit, Linger};
use sigillo::metrics::Metrics;

use crate::support::{random_suffix, TestApp};

const LONG: Duration = Duration::from_secs(60);

/// A second writer on `app`'s database, waiting at most `max`, with an HSM whose queued work
/// always lasts `backlog`.
fn writer(app: &TestApp, max: Duration, backlog: Duration) -> Audit {
    let metrics = Metrics::new().unwrap();
    Audit::start(
        app.services().db.clone(),
        &metrics,
        app.services().audit_chain.clone(),
        Linger {
            max,
            backlog: Box::new(move || backlog),
        },
    )
}

/// Records one row as `actor`, in the background.
fn record(audit: &Audit, actor: &str) -> tokio::task::JoinHandle<()> {
    let (audit, actor) = (audit.clone(), actor.to_owned());
    tokio::spawn(async move {
        audit
            .record(&actor, "test.audit_group", None, "ok", json!({}))
            .await
            .unwrap();
    })
}

/// (rows, commits) of `actor`: rows of one commit share its time.
async fn rows_and_commits(app: &TestApp, actor: &str) -> (i64, i64) {
    let client = app.services().db.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT at) FROM audit_log WHERE actor = $1",
            &[&actor],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Within a bound that no linger of these tests reaches by itself.
async fn soon(task: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the record should have committed without waiting out the linger")
        .unwrap();
}

#[actix_web::test]
async fn a_record_waits_for_the_one_announced_beside_it_and_they_share_a_commit() {
    let app = TestApp::spawn().await;
    let audit = writer(&app, LONG, LONG);
    let actor = format!("group-{}", random_suffix());
    let in_flight = audit.expect();
    let mut first = record(&audit, &actor);
    // The announced request has not said it is done: the commit waits for it, and takes in
    // the rows that arrive meanwhile.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut first)
            .await
            .is_err(),
        "the commit left while a record was announced"
    );
    let mut second = record(&audit, &actor);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut second)
            .await
            .is_err(),
        "the commit left while a record was announced"
    );
    assert_eq!(rows_and_commits(&app, &actor).await, (0, 0));
    in_flight.settle();
    soon(first).await;
    soon(second).await;
    assert_eq!(rows_and_commits(&app, &actor).await, (2, 1));
    assert_eq!(audit.outstanding(), 0);
}

#[actix_web::test]
async fn a_record_with_nobody_announced_commits_at_once() {
    let app = TestApp::spawn().await;
    let audit = writer(&app, LONG, LONG);
    let actor = format!("alone-{}", random_suffix());
    soon(record(&audit, &actor)).await;
    // A request that returns without its row (it failed before) waits for nothing either.
    drop(audit.expect());
    assert_eq!(audit.outstanding(), 0);
    soon(record(&audit, &actor)).await;
    assert_eq!(rows_and_commits(&app, &actor).await, (2, 2));
}

#[actix_web::test]
async fn the_wait_ends_when_the_hsm_backlog_or_the_linger_does() {
    let app = TestApp::spawn().await;
    let actor = format!("bounded-{}", random_suffix());
    // An idle HSM: holding the answer back would only delay it.
    let idle = writer(&app, LONG, Duration::ZERO);
    let _in_flight = idle.expect();
    soon(record(&idle, &actor)).await;
    // A busy HSM, but the linger is short.
    let short = writer(&app, Duration::from_millis(200), LONG);
    let _in_flight = short.expect();
    soon(record(&short, &actor)).await;
    assert_eq!(rows_and_commits(&app, &actor).await, (2, 2));
}

#[actix_web::test]
async fn a_drain_commits_a_waiting_record_at_once() {
    let app = TestApp::spawn().await;
    let audit = writer(&app, LONG, LONG);
    let actor = format!("drain-{}", random_suffix());
    let _in_flight = audit.expect();
    let waiting = record(&audit, &actor);
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(10), audit.drain())
        .await
        .expect("the drain waited out the linger");
    soon(waiting).await;
    assert_eq!(rows_and_commits(&app, &actor).await, (1, 1));
}
